"""Contracts: the accepted offer becomes the annex of a contract rendered from the owner's
template (in the client's language), which the client signs online with a simple electronic
signature.

Decisions (docs/projects-offers.md):
* The contract is signed when the client signs. The contractor's consent is the offer it sent
  and the contract it issued on acceptance; there is no countersignature step.
* The contract's text is the template rendered when the offer is accepted and never changes;
  a template edited later reaches only later contracts.
* The signed PDF is the contract PDF with the certificate of completion as its last page, kept
  in the database with its SHA-256 (as billing keeps issued invoices). ``verify`` recomputes
  the digest: a stored file that no longer matches is refused for download.
* Signing issues the schedule's "on signing" invoices in the same transaction, once per step
  (each step's idempotency key), so a retried signature issues nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from otomat.accounts.models import User
from otomat.accounts.services import record_audit
from otomat.billing.documents import seller_snapshot
from otomat.billing.models import BillingSettings
from otomat.billing.money import Money
from otomat.projects.models import Lead
from otomat.projects.offers import notices, schedule
from otomat.projects.offers import pdf as contract_pdf
from otomat.projects.offers.models import Contract, ContractTemplate, Offer, Signature
from otomat.projects.offers.services import LANGUAGES, OfferError, accepted_content

PLACEHOLDERS = (
    "client_name",
    "client_company",
    "client_email",
    "seller_name",
    "contract_number",
    "offer_number",
    "offer_version",
    "offer_title",
    "price",
    "weeks",
    "revision_rounds",
    "accepted_date",
)
_FIELD = re.compile(r"\{([^{}]*)\}")

DEFAULT_TEMPLATES = {
    "en": (
        "Contract for software development",
        "This contract is made between {seller_name} (the Contractor) and {client_name} "
        "{client_company} (the Client) on {accepted_date}.\n\n"
        "1. Subject. The Contractor builds for the Client what offer {offer_number} (version "
        '{offer_version}), "{offer_title}", describes; the offer is Annex 1 and part of this '
        "contract.\n\n"
        "2. Price and payments. The price is {price}, paid according to the payment schedule "
        "of Annex 1; each payment is invoiced when it falls due.\n\n"
        "3. Time. The work takes {weeks} weeks from signing, following the milestones of "
        "Annex 1.\n\n"
        "4. Revisions. {revision_rounds} rounds of revisions are included; further changes are "
        "quoted separately before any work on them starts.\n\n"
        "5. Acceptance. The Client reviews each delivery on the staging site and accepts it or "
        "lists what to change; the production release date is agreed together.\n\n"
        "6. Signature. The parties agree that this contract is signed electronically; the "
        "certificate of completion records the evidence.",
    ),
    "id": (
        "Kontrak pengembangan perangkat lunak",
        "Kontrak ini dibuat antara {seller_name} (Pelaksana) dan {client_name} "
        "{client_company} (Klien) pada {accepted_date}.\n\n"
        "1. Pokok kontrak. Pelaksana membangun untuk Klien apa yang diuraikan dalam penawaran "
        '{offer_number} (versi {offer_version}), "{offer_title}"; penawaran tersebut adalah '
        "Lampiran 1 dan bagian dari kontrak ini.\n\n"
        "2. Harga dan pembayaran. Harganya {price}, dibayar sesuai jadwal pembayaran di "
        "Lampiran 1; setiap pembayaran ditagih saat jatuh tempo.\n\n"
        "3. Waktu. Pekerjaan berlangsung {weeks} minggu sejak penandatanganan, mengikuti "
        "tahapan di Lampiran 1.\n\n"
        "4. Revisi. Termasuk {revision_rounds} putaran revisi; perubahan lebih lanjut diberi "
        "penawaran tersendiri sebelum dikerjakan.\n\n"
        "5. Penerimaan. Klien memeriksa setiap hasil di situs staging lalu menerimanya atau "
        "menyebutkan apa yang perlu diubah; tanggal rilis produksi disepakati bersama.\n\n"
        "6. Tanda tangan. Para pihak sepakat bahwa kontrak ini ditandatangani secara "
        "elektronik; sertifikat penyelesaian mencatat buktinya.",
    ),
    "pl": (
        "Umowa o wykonanie oprogramowania",
        "Umowa zawarta w dniu {accepted_date} między {seller_name} (Wykonawcą) a "
        "{client_name} {client_company} (Zamawiającym).\n\n"
        "1. Przedmiot umowy. Wykonawca wykona dla Zamawiającego to, co opisuje oferta "
        "{offer_number} (wersja {offer_version}) „{offer_title}”; oferta stanowi Załącznik nr 1 "
        "i jest częścią umowy.\n\n"
        "2. Cena i płatności. Cena wynosi {price} i jest płatna według harmonogramu płatności "
        "z Załącznika nr 1; każda płatność jest fakturowana w terminie jej wymagalności.\n\n"
        "3. Termin. Prace trwają {weeks} tygodni od podpisania umowy, zgodnie z etapami z "
        "Załącznika nr 1.\n\n"
        "4. Poprawki. W cenie są {revision_rounds} rundy poprawek; dalsze zmiany są wyceniane "
        "osobno przed rozpoczęciem prac.\n\n"
        "5. Odbiór. Zamawiający sprawdza każdą dostawę na serwerze testowym (staging) i "
        "akceptuje ją lub wskazuje, co zmienić; termin wdrożenia produkcyjnego strony "
        "ustalają wspólnie.\n\n"
        "6. Podpis. Strony zgadzają się na podpisanie umowy w formie elektronicznej; "
        "certyfikat zakończenia zawiera dowody podpisu.",
    ),
}


def consent_text(language: str) -> str:
    """The consent the client ticks, in their language; stored exactly as shown."""
    with translation.override(language):
        return _(
            "I have read the contract and its annex (the offer). I agree to sign it "
            "electronically by typing my name, and I accept that my typed name, the time, my "
            "IP address and browser are recorded as evidence of my signature."
        )


def check_placeholders(text: str) -> None:
    """Raise ValidationError naming every unknown ``{placeholder}`` (or an unclosed brace);
    return None when all are known."""
    unknown = sorted({name for name in _FIELD.findall(text or "") if name not in PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            _("Unknown placeholders: %(names)s. Use only: %(known)s.")
            % {
                "names": ", ".join("{" + n + "}" for n in unknown),
                "known": " ".join("{" + n + "}" for n in PLACEHOLDERS),
            }
        )
    rest = _FIELD.sub("", text or "")
    if "{" in rest or "}" in rest:
        raise ValidationError(_("A brace is not closed: write placeholders as {name}."))


def template_for(language: str) -> tuple[str, str]:
    """(title, body) of the contract template in ``language`` (the built-in one if the owner
    has not written one)."""
    row = ContractTemplate.objects.filter(language=language).first()
    if row is not None:
        return row.title, row.body
    return DEFAULT_TEMPLATES.get(language, DEFAULT_TEMPLATES["en"])


def save_template(*, language: str, title: str, body: str, actor: User) -> ContractTemplate:
    """Save the owner's template for ``language``. Raises ValidationError (nothing saved)."""
    if not actor.is_superuser:
        raise ValidationError(_("Only the owner edits contract templates."))
    if language not in LANGUAGES:
        raise ValidationError(_("Unknown language."))
    title, body = (title or "").strip(), (body or "").strip()
    if not title or len(title) > 200:
        raise ValidationError(_("The title is required (200 characters at most)."))
    if not body or len(body) > 50000:
        raise ValidationError(_("The text is required (50,000 characters at most)."))
    check_placeholders(title)
    check_placeholders(body)
    with transaction.atomic():
        row, _created = ContractTemplate.objects.update_or_create(
            language=language, defaults={"title": title, "body": body, "updated_by": actor}
        )
        record_audit(
            "contract_template.saved", actor=actor, target=row, data={"language": language}
        )
    return row


def _fill(text: str, values: dict[str, str]) -> str:
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _values(offer: Offer, frozen: dict, number: str, now: dt.datetime) -> dict[str, str]:
    language = offer.language
    cur = frozen["currency"]
    if frozen["low_minor"] == frozen["high_minor"]:
        price = Money(frozen["high_minor"], cur).format(language)
    elif frozen.get("agreed_total_minor") is not None:
        price = Money(frozen["agreed_total_minor"], cur).format(language)
    else:
        price = (
            f"{Money(frozen['low_minor'], cur).format(language)} – "
            f"{Money(frozen['high_minor'], cur).format(language)}"
        )
    weeks = (
        contract_pdf._num(frozen["weeks_max"])
        if frozen["weeks_min"] == frozen["weeks_max"]
        else f"{contract_pdf._num(frozen['weeks_min'])}–{contract_pdf._num(frozen['weeks_max'])}"
    )
    name, email, company = _client(offer)
    return {
        "client_name": name,
        "client_company": f"({company})" if company and company != name else "",
        "client_email": email,
        "seller_name": BillingSettings.get().seller_name or "",
        "contract_number": number,
        "offer_number": offer.number,
        "offer_version": str(frozen["version"]),
        "offer_title": frozen["title"],
        "price": price,
        "weeks": weeks,
        "revision_rounds": str(frozen["revision_rounds"]),
        "accepted_date": contract_pdf._date(now.astimezone(dt.UTC).date(), language),
    }


def _client(offer: Offer) -> tuple[str, str, str]:
    """(name, email, company) of the client as printed."""
    if offer.lead is not None:
        return offer.lead.name, offer.lead.email, offer.lead.company
    person = offer.account.responsible if offer.account else None
    name = person.get_full_name() if person else ""
    return name or offer.account.name, person.email if person else "", offer.account.name


def _document(contract: Contract, evidence: contract_pdf.Evidence | None = None) -> bytes:
    offer = contract.offer
    version = offer.versions.get(accepted=True)
    seller, client = contract.seller, contract.client
    name, email, company = (
        client.get("name", ""),
        client.get("email", ""),
        client.get("company", ""),
    )
    return contract_pdf.render_contract(
        contract_pdf.ContractPdf(
            number=contract.number,
            title=contract.title,
            language=contract.language,
            date=contract.created_at.astimezone(dt.UTC).date(),
            seller_name=seller.get("name", ""),
            seller_lines=list(seller.get("lines") or []),
            client_name=name,
            client_lines=[line for line in (company if company != name else "", email) if line],
            body=contract.body,
            offer=version.content,
            offer_sha256=version.sha256,
            accepted_at=offer.accepted_at,
            evidence=evidence,
        )
    )


def create_contract(offer: Offer, *, now: dt.datetime | None = None) -> Contract:
    """The contract of the accepted ``offer`` (created once; a second call returns it): the
    template in the offer's language filled from the accepted version, and its PDF."""
    now = now or timezone.now()
    existing = Contract.objects.filter(offer=offer).first()
    if existing is not None:
        return existing
    frozen = accepted_content(offer)
    number = offer.number.replace("OF-", "CT-", 1)
    title, body = template_for(offer.language)
    values = _values(offer, frozen, number, now)
    contract = Contract(
        offer=offer,
        account=offer.account,
        number=number,
        language=offer.language,
        title=_fill(title, values),
        body=_fill(body, values),
        created_at=now,
    )
    name, email, company = _client(offer)
    contract.seller = seller_snapshot(BillingSettings.get())
    contract.client = {"name": name, "email": email, "company": company}
    content = _document(contract)
    contract.document = content
    contract.document_sha256 = hashlib.sha256(content).hexdigest()
    contract.save()
    record_audit(
        "contract.created",
        actor_label="system:offers",
        account=offer.account,
        target=contract,
        data={"sha256": contract.document_sha256},
    )
    return contract


def verify(contract: Contract) -> bool:
    """Whether the stored PDFs still match their recorded SHA-256 (the signed one against the
    signature's evidence too)."""
    if hashlib.sha256(bytes(contract.document)).hexdigest() != contract.document_sha256:
        return False
    if contract.status == Contract.Status.SIGNED:
        signed = bytes(contract.signed_document or b"")
        digest = hashlib.sha256(signed).hexdigest()
        signature = Signature.objects.filter(contract=contract).first()
        if signature is None or digest != contract.signed_sha256:
            return False
        if digest != signature.signed_sha256:
            return False
    return True


def sign_contract(
    contract: Contract,
    *,
    name: str,
    consent: bool,
    consent_shown: str,
    document_sha256: str,
    user: User | None = None,
    lead: Lead | None = None,
    ip: str | None = None,
    user_agent: str = "",
    now: dt.datetime | None = None,
) -> Contract:
    """The client signs: typed ``name``, ``consent`` ticked for ``consent_shown`` (which must be
    the consent text of the contract's language), for the document whose SHA-256 they were
    shown. Stores the evidence, the signed PDF with its certificate page and its digest, marks
    the contract signed and issues the "on signing" invoices. Signing again returns the signed
    contract and issues nothing new. Raises OfferError (nothing changed)."""
    now = now or timezone.now()
    if user is not None and user.is_authenticated and user.is_staff:
        raise OfferError(_("Only the client signs the contract."))
    name = " ".join((name or "").split())
    if len(name) < 2 or len(name) > 200:
        raise OfferError(_("Type your full name to sign."))
    if consent is not True:
        raise OfferError(_("Tick the consent to sign electronically."))
    expected = consent_text(contract.language)
    with transaction.atomic():
        locked = (
            Contract.objects.select_for_update(of=("self",))
            .select_related("offer__lead")
            .get(pk=contract.pk)
        )
        if locked.status == Contract.Status.SIGNED:
            schedule.issue_on_signing(locked, now=now)
            return locked
        if consent_shown != expected:
            raise OfferError(_("The consent text has changed; please read it again."))
        if document_sha256 != locked.document_sha256:
            raise OfferError(
                _("The contract has changed since you opened it; please read it again.")
            )
        if not verify(locked):
            raise OfferError(
                _(
                    "The stored contract does not match its fingerprint; it cannot "
                    "be signed. We have been told."
                )
            )
        offer = locked.offer
        email = (user.email if user is not None and user.is_authenticated else "") or (
            offer.lead.email if offer.lead else ""
        )
        user_agent = (user_agent or "")[:500]
        evidence = contract_pdf.Evidence(
            name=name,
            email=email,
            signed_at=now,
            ip=ip or "",
            user_agent=user_agent,
            consent_text=expected,
            document_sha256=locked.document_sha256,
        )
        signed = _document(locked, evidence)
        digest = hashlib.sha256(signed).hexdigest()
        Signature.objects.create(
            contract=locked,
            user=user if user is not None and user.is_authenticated else None,
            lead=offer.lead if lead is None else lead,
            name=name,
            email=email,
            signed_at=now,
            ip=ip or None,
            user_agent=user_agent,
            consent_text=expected,
            document_sha256=locked.document_sha256,
            signed_sha256=digest,
        )
        locked.status = Contract.Status.SIGNED
        locked.signed_document, locked.signed_sha256, locked.signed_at = signed, digest, now
        locked.save(update_fields=["status", "signed_document", "signed_sha256", "signed_at"])
        record_audit(
            "contract.signed",
            actor=user,
            account=locked.account,
            target=locked,
            ip=ip,
            actor_label="" if user else f"lead:{email}",
            data={"before": locked.document_sha256, "after": digest, "name": name},
        )
        schedule.issue_on_signing(locked, now=now)
        notices.contract_signed(locked)
    return locked
