"""Contracts: the PDF from the template in the client's language with the offer as its annex,
the simple electronic signature with its evidence and hashes, tampering detected, and the
deposit invoice issued exactly once."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.exceptions import ValidationError
from pypdf import PdfReader

from otomat.accounts.models import AuditEvent
from otomat.billing.models import Invoice
from otomat.projects.offers import contracts, schedule, services
from otomat.projects.offers.models import Contract, ContractTemplate, Signature
from otomat.projects.offers.services import OfferError

from .conftest import NOW, exact_data


def pdf_text(content: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


@pytest.fixture
def contract(offer):
    return services.accept_offer(offer, version=1, now=NOW)


def sign(contract, **changes):
    kwargs = {
        "name": "Jan Kowalski",
        "consent": True,
        "consent_shown": contracts.consent_text(contract.language),
        "document_sha256": contract.document_sha256,
        "lead": contract.offer.lead,
        "ip": "198.51.100.4",
        "user_agent": "Mozilla/5.0 (test)",
        "now": NOW,
    }
    kwargs.update(changes)
    return contracts.sign_contract(contract, **kwargs)


def test_the_contract_pdf_is_in_the_clients_language_with_the_offer_lines(contract):
    content = bytes(contract.document)
    assert content.startswith(b"%PDF")
    assert hashlib.sha256(content).hexdigest() == contract.document_sha256
    pages = pdf_text(content)
    text = "\n".join(pages)
    assert "Umowa o wykonanie oprogramowania" in text  # the Polish template
    assert "Zamawiającym" in text and "Jan Kowalski" in text
    assert "Załącznik nr 1: oferta" in text
    assert "Projekt graficzny" in text and "Integracja z Allegro" in text
    assert "18 000,00 zł" in text.replace("\u00a0", " ")
    assert "Zaliczka" in text and "Harmonogram płatności" in text
    assert "Rundy poprawek w cenie: 3" in text
    assert contract.body.count("{") == 0  # every placeholder filled


def test_the_owners_template_is_used_and_validated(cast, lead):
    with pytest.raises(ValidationError, match="Unknown placeholders"):
        contracts.save_template(language="en", title="Deal", body="Hi {nobody}", actor=cast.owner)
    with pytest.raises(ValidationError, match="brace"):
        contracts.save_template(
            language="en", title="Deal", body="Hi {client_name", actor=cast.owner
        )
    with pytest.raises(ValidationError):
        contracts.save_template(language="en", title="Deal", body="x", actor=cast.staff)
    with pytest.raises(ValidationError):
        contracts.save_template(language="xx", title="Deal", body="x", actor=cast.owner)
    assert not ContractTemplate.objects.exists()
    contracts.save_template(
        language="en",
        title="Deal {offer_number}",
        body="Between {seller_name} and {client_name}: {price} in {weeks} weeks.",
        actor=cast.owner,
    )
    offer = services.create_offer(exact_data(language="en"), actor=cast.owner, lead=lead, now=NOW)
    services.send_offer(offer, actor=cast.owner, now=NOW)
    contract = services.accept_offer(offer, version=1, now=NOW)
    assert contract.title == f"Deal {offer.number}"
    assert contract.body == "Between Otomat seller and Jan Kowalski: PLN18,000.00 in 5 weeks."
    text = "\n".join(pdf_text(bytes(contract.document)))
    assert "Annex 1: offer" in text and "Payment schedule" in text


def test_signing_stores_the_evidence_and_both_hashes(contract):
    signed = sign(contract)
    assert signed.status == Contract.Status.SIGNED
    signature = Signature.objects.get(contract=contract)
    assert (signature.name, signature.email, signature.ip) == (
        "Jan Kowalski",
        "jan@example.pl",
        "198.51.100.4",
    )
    assert signature.user_agent == "Mozilla/5.0 (test)" and signature.signed_at == NOW
    assert signature.consent_text == contracts.consent_text("pl")
    assert "podpis" in signature.consent_text  # as shown, in Polish
    assert signature.document_sha256 == contract.document_sha256
    content = bytes(signed.signed_document)
    assert hashlib.sha256(content).hexdigest() == signature.signed_sha256 == signed.signed_sha256
    assert signature.signed_sha256 != signature.document_sha256
    pages = pdf_text(content)
    assert len(pages) == len(pdf_text(bytes(contract.document))) + 1
    certificate = pages[-1]
    assert "Certyfikat zakończenia" in certificate
    assert contract.document_sha256 in certificate.replace("\n", "")
    assert "198.51.100.4" in certificate and "Jan Kowalski" in certificate
    assert contracts.verify(signed)
    event = AuditEvent.objects.get(action="contract.signed")
    assert event.data["before"] == contract.document_sha256
    assert event.data["after"] == signature.signed_sha256


def test_tampering_with_the_stored_file_is_detected(contract):
    signed = sign(contract)
    Contract.objects.filter(pk=signed.pk).update(
        signed_document=bytes(signed.signed_document) + b"%"
    )
    signed.refresh_from_db()
    assert not contracts.verify(signed)
    Contract.objects.filter(pk=signed.pk).update(document=b"%PDF-forged")
    contract.refresh_from_db()
    assert not contracts.verify(contract)


def test_a_tampered_document_cannot_be_signed(contract):
    Contract.objects.filter(pk=contract.pk).update(document=b"%PDF-forged")
    with pytest.raises(OfferError, match="fingerprint"):
        sign(contract)
    assert not Signature.objects.exists()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"name": " "}, "full name"),
        ({"name": "x" * 201}, "full name"),
        ({"consent": False}, "consent"),
        ({"consent": "yes"}, "consent"),
        ({"consent_shown": "I agree to anything"}, "consent text"),
        ({"document_sha256": "0" * 64}, "changed"),
    ],
)
def test_bad_signatures_are_refused_and_change_nothing(contract, changes, message):
    with pytest.raises(OfferError, match=message):
        sign(contract, **changes)
    contract.refresh_from_db()
    assert contract.status == Contract.Status.AWAITING_SIGNATURE
    assert not Signature.objects.exists() and not Invoice.objects.exists()


def test_staff_cannot_sign_for_the_client(cast, contract):
    with pytest.raises(OfferError, match="Only the client"):
        sign(contract, user=cast.staff)


def test_signing_issues_the_deposit_once(contract):
    signed = sign(contract)
    invoices = list(Invoice.objects.all())
    assert len(invoices) == 1
    deposit = invoices[0]
    assert deposit.account == contract.account and deposit.currency == "PLN"
    assert deposit.total_minor == 540_000  # 30 % of 18,000 zł
    assert deposit.idempotency_key.startswith("offer-step:")
    assert deposit.language == "pl"
    assert "Zaliczka" in deposit.lines.get().description
    # Retried signing (a double click, a retry after a timeout) changes nothing.
    again = sign(contract, name="Someone Else")
    assert again.signed_sha256 == signed.signed_sha256
    assert Signature.objects.get().name == "Jan Kowalski"
    assert Invoice.objects.count() == 1
    assert schedule.issue_on_signing(signed) == [deposit]
    assert Invoice.objects.count() == 1


def test_milestone_invoices_follow_the_schedule_once(cast, contract):
    launch = contract.offer.milestones.get(title="Wdrożenie")
    with pytest.raises(OfferError, match="not signed"):
        schedule.complete_milestone(launch, actor=cast.owner, now=NOW)
    assert not Invoice.objects.exists()
    sign(contract)
    with pytest.raises(OfferError):
        schedule.complete_milestone(launch, actor=cast.alice, now=NOW)
    first = schedule.complete_milestone(launch, actor=cast.owner, now=NOW)
    assert [i.total_minor for i in first] == [1_260_000]
    assert schedule.complete_milestone(launch, actor=cast.owner, now=NOW) == first
    assert Invoice.objects.count() == 2
    assert sum(Invoice.objects.values_list("total_minor", flat=True)) == 1_800_000
    # Nothing is billed on release in this schedule.
    assert schedule.invoice_release(contract.offer, actor=cast.owner, now=NOW) == []


def test_the_board_finds_the_signed_offer(contract):
    assert services.signed_offer_for_account(contract.account) is None
    sign(contract)
    found = services.signed_offer_for_account(contract.account)
    assert found == contract.offer
    assert found.revision_rounds == 3 and found.currency == "PLN"
    assert [m.title for m in found.milestones.all()] == ["Makiety", "Wdrożenie"]


def test_the_owner_hears_of_each_decision(cast, contract):
    from otomat.notify.models import Notification

    sign(contract)
    kinds = set(Notification.objects.filter(user=cast.owner).values_list("kind", flat=True))
    assert {"offers/accepted", "offers/signed"} <= kinds
    signed = Notification.objects.filter(user=cast.owner, kind="offers/signed").first()
    assert contract.number in signed.subject and "Jan Kowalski" in signed.body
    sign(contract)  # a retried signature tells nobody twice
    assert Notification.objects.filter(user=cast.owner, kind="offers/signed").count() == 1
