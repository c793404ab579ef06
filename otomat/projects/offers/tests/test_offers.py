"""Offers: from an estimate (ranges), validation that changes nothing, versions, sending,
acceptance (the lead becomes a customer), declining and expiry."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from otomat.accounts.models import AuditEvent, User
from otomat.projects.models import Lead
from otomat.projects.offers import services
from otomat.projects.offers.models import Contract, Offer, OfferVersion
from otomat.projects.offers.services import LineIn, OfferError, StepIn

from .conftest import NOW, exact_data


def test_it_copies_an_estimate_as_ranges(cast, estimate):
    offer = services.from_estimate(estimate, actor=cast.owner, now=NOW)
    assert offer.status == Offer.Status.DRAFT
    assert offer.number == f"OF-2026-{offer.pk:04d}"
    assert (offer.lead, offer.estimate, offer.currency, offer.language) == (
        estimate.lead,
        estimate,
        "PLN",
        "pl",
    )
    lines = list(offer.lines.all())
    assert [line.kind for line in lines] == ["range"] * 3
    # The estimate's base range (what no option explains) becomes the first line.
    assert lines[0].title == "Przygotowanie projektu, projekt graficzny i uruchomienie"
    assert (lines[0].cost_min_minor, lines[0].cost_max_minor) == (800_000, 1_500_000)
    assert lines[2].title == "Wersje językowe × 2"
    t = services.totals(offer)
    assert (t["low"].amount_minor, t["high"].amount_minor) == (1_800_000, 3_100_000)
    assert (t["weeks_min"], t["weeks_max"]) == (Decimal(4), Decimal(7))
    assert t["is_range"] and t["base"] is None
    assert AuditEvent.objects.filter(action="offer.created", target_id=str(offer.pk)).exists()


def test_a_range_schedule_needs_the_agreed_price_within_the_range(cast, lead):
    ranged = (LineIn("Sklep", kind="range", cost_min_minor=1_000_000, cost_max_minor=2_000_000),)
    steps = (
        StepIn("Zaliczka", "signing", percent=Decimal(30)),
        StepIn("Reszta", "release", percent=Decimal(70)),
    )
    with pytest.raises(OfferError, match="agreed price"):
        services.create_offer(
            exact_data(lines=ranged, steps=steps, milestones=()),
            actor=cast.owner,
            lead=lead,
            now=NOW,
        )
    with pytest.raises(OfferError, match="within"):
        services.create_offer(
            exact_data(lines=ranged, steps=steps, milestones=(), agreed_total_minor=2_500_000),
            actor=cast.owner,
            lead=lead,
            now=NOW,
        )
    offer = services.create_offer(
        exact_data(lines=ranged, steps=steps, milestones=(), agreed_total_minor=1_500_001),
        actor=cast.owner,
        lead=lead,
        now=NOW,
    )
    amounts = [m.amount_minor for _s, m in services.schedule_amounts(offer)]
    assert amounts == [450_000, 1_050_001]  # the last percentage takes the rounding remainder
    assert sum(amounts) == offer.agreed_total_minor


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"title": "  "}, "title is required"),
        ({"title": "x" * 201}, "too long"),
        ({"currency": "XXX"}, "Unknown currency"),
        ({"language": "de"}, "Unknown language"),
        ({"valid_until": dt.date(2026, 11, 30)}, "today or later"),
        ({"valid_until": dt.date(2028, 1, 1)}, "a year at most"),
        ({"revision_rounds": -1}, "from 0 to 50"),
        ({"revision_rounds": "3"}, "whole number"),
        ({"lines": ()}, "at least one line"),
        ({"lines": (LineIn("A", quantity=0, unit_price_minor=5),)}, "quantity"),
        ({"lines": (LineIn("A", unit_price_minor=-5),)}, "amount from 0"),
        ({"lines": (LineIn("A", unit_price_minor=10**14),)}, "amount from 0"),
        ({"lines": (LineIn("A", kind="range", cost_min_minor=9, cost_max_minor=1),)}, "start"),
        ({"lines": (LineIn("A", kind="bogus"),)}, "unknown kind"),
        ({"lines": (LineIn("A", weeks_max="many"),)}, "number of weeks"),
        ({"lines": (LineIn("A", weeks_max=Decimal("NaN")),)}, "0 to 520"),
        ({"steps": (StepIn("Zaliczka", "signing", percent=Decimal(30)),)}, "add up to"),
        ({"steps": (StepIn("X", "signing", percent=Decimal(50), amount_minor=5),)}, "either"),
        ({"steps": (StepIn("X", "milestone", percent=Decimal(100), milestone=7),)}, "milestone"),
        ({"steps": (StepIn("X", "whenever", percent=Decimal(100)),)}, "unknown trigger"),
        ({"steps": (StepIn("X", "signing", percent=Decimal(101)),)}, "at most 100"),
    ],
)
def test_bad_input_is_refused_and_saves_nothing(cast, lead, changes, message):
    with pytest.raises(OfferError, match=message):
        services.create_offer(exact_data(**changes), actor=cast.owner, lead=lead, now=NOW)
    assert not Offer.objects.exists()


def test_only_staff_write_offers_for_someone(cast, lead):
    with pytest.raises(OfferError):
        services.create_offer(exact_data(), actor=cast.alice, lead=lead, now=NOW)
    with pytest.raises(OfferError, match="lead or the customer"):
        services.create_offer(exact_data(), actor=cast.owner, now=NOW)


def test_sending_mails_the_private_link_and_marks_the_lead(
    cast, lead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        offer = services.create_offer(exact_data(), actor=cast.owner, lead=lead, now=NOW)
        offer = services.send_offer(offer, actor=cast.owner, now=NOW)
    assert offer.status == Offer.Status.SENT
    assert Lead.objects.get(pk=lead.pk).status == Lead.Status.OFFER
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["jan@example.pl"]
    assert offer.token in mail.outbox[0].body
    assert mail.outbox[0].subject.startswith("Oferta")  # in the lead's language


def test_editing_a_sent_offer_makes_a_new_version(cast, offer):
    assert offer.version == 1
    changed = exact_data(revision_rounds=5, title="Sklep z rezerwacjami i płatnościami")
    offer = services.update_offer(offer, changed, actor=cast.owner, now=NOW)
    assert offer.version == 2 and offer.status == Offer.Status.SENT
    old = OfferVersion.objects.get(offer=offer, number=1)
    assert old.content["revision_rounds"] == 3 and old.content["title"] == "Sklep z rezerwacjami"
    assert old.sha256 == services.digest(old.content)
    # A draft edit does not make versions.
    draft = services.create_offer(
        exact_data(), actor=cast.owner, account=cast.alice.account, now=NOW
    )
    draft = services.update_offer(draft, changed, actor=cast.owner, now=NOW)
    assert draft.version == 1 and not draft.versions.exists()


def test_a_stale_version_cannot_be_accepted(cast, offer):
    services.update_offer(offer, exact_data(revision_rounds=1), actor=cast.owner, now=NOW)
    with pytest.raises(OfferError, match="version 2"):
        services.accept_offer(offer, version=1, now=NOW)
    assert Offer.objects.get(pk=offer.pk).status == Offer.Status.SENT


def test_accepting_makes_the_lead_a_customer_and_freezes_the_version(
    cast, offer, lead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        contract = services.accept_offer(offer, version=1, ip="203.0.113.7", now=NOW)
    offer.refresh_from_db()
    assert offer.status == Offer.Status.ACCEPTED and offer.accepted_version == 1
    user = User.objects.get(email="jan@example.pl")
    assert not user.has_usable_password() and user.timezone == "Europe/Warsaw"
    assert user.language == "pl"
    assert offer.account == user.account and user.account.name == "Domki nad Jeziorem"
    lead.refresh_from_db()
    assert lead.status == Lead.Status.WON and lead.account == user.account
    frozen = offer.versions.get(accepted=True)
    assert frozen.number == 1 and frozen.content["lines"][0]["title"] == "Projekt graficzny"
    assert isinstance(contract, Contract) and contract.account == user.account
    assert contract.language == "pl" and contract.status == Contract.Status.AWAITING_SIGNATURE
    # The person is mailed a link to choose a password.
    assert any("jan@example.pl" in m.to for m in mail.outbox)
    event = AuditEvent.objects.get(action="offer.accepted")
    assert event.ip == "203.0.113.7" and event.data["version"] == 1
    # Accepting again is harmless and changes nothing.
    assert services.accept_offer(offer, version=1, now=NOW) == contract
    assert User.objects.filter(email="jan@example.pl").count() == 1
    # An accepted offer is frozen.
    with pytest.raises(OfferError, match="can no longer change"):
        services.update_offer(offer, exact_data(), actor=cast.owner, now=NOW)


def test_an_existing_customer_accepts_into_their_own_account(cast):
    offer = services.create_offer(
        exact_data(language="en"), actor=cast.owner, account=cast.alice.account, now=NOW
    )
    services.send_offer(offer, actor=cast.owner, now=NOW)
    contract = services.accept_offer(offer, version=1, actor=cast.alice, now=NOW)
    assert contract.account == cast.alice.account
    assert User.objects.count() == 5  # nobody new


def test_staff_cannot_accept_for_the_client(cast, offer):
    with pytest.raises(OfferError, match="Only the client"):
        services.accept_offer(offer, version=1, actor=cast.staff, now=NOW)


def test_an_expired_offer_cannot_be_accepted(cast, offer):
    later = NOW + dt.timedelta(days=31)  # valid until 31 December; this is 1 January
    with pytest.raises(OfferError, match="expired"):
        services.accept_offer(offer, version=1, now=later)
    offer.refresh_from_db()
    assert offer.status == Offer.Status.EXPIRED and offer.accepted_at is None
    assert not Contract.objects.exists()
    assert not User.objects.filter(email="jan@example.pl").exists()
    # On its last day it still could have been.
    other = services.create_offer(
        exact_data(), actor=cast.owner, account=cast.alice.account, now=NOW
    )
    services.send_offer(other, actor=cast.owner, now=NOW)
    services.accept_offer(other, version=1, now=dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.UTC))


def test_expire_offers_is_idempotent(cast, offer):
    later = NOW + dt.timedelta(days=40)
    assert services.expire_offers(now=later) == 1
    assert services.expire_offers(now=later) == 0


def test_declining_needs_a_reason(cast, offer):
    with pytest.raises(OfferError, match="reason"):
        services.decline_offer(offer, version=1, reason="  ", now=NOW)
    assert Offer.objects.get(pk=offer.pk).status == Offer.Status.SENT
    services.decline_offer(offer, version=1, reason="Za drogo", now=NOW)
    offer.refresh_from_db()
    assert offer.status == Offer.Status.DECLINED and offer.decline_reason == "Za drogo"
    with pytest.raises(OfferError):
        services.accept_offer(offer, version=1, now=NOW)


def test_a_withdrawn_offer_cannot_be_sent_or_accepted(cast, offer):
    services.withdraw_offer(offer, actor=cast.owner)
    with pytest.raises(OfferError):
        services.send_offer(offer, actor=cast.owner, now=NOW)
    with pytest.raises(OfferError):
        services.accept_offer(offer, version=1, now=NOW)


def test_the_board_finds_the_signed_offer_of_an_account(cast):
    assert services.signed_offer_for_account(cast.alice.account) is None


def test_content_is_plain_json(cast, offer):
    data = services.content(offer)
    assert data["schedule"][0]["amount_minor"] == 540_000  # 30 % of 18,000 zł
    assert data["schedule"][1]["milestone"] == "Wdrożenie"
    assert dataclasses.is_dataclass(exact_data())


def test_an_expired_offer_is_renewed_by_editing_it(cast, offer):
    later = NOW + dt.timedelta(days=40)
    services.expire_offers(now=later)
    renewed = exact_data(valid_until=dt.date(2027, 1, 31))
    offer = services.update_offer(
        Offer.objects.get(pk=offer.pk), renewed, actor=cast.owner, now=later
    )
    assert (offer.status, offer.version) == (Offer.Status.SENT, 2)
    assert services.accept_offer(offer, version=2, now=later).offer == offer


@pytest.mark.parametrize(
    "language, title",
    [
        ("en", "Contract for software development"),
        ("id", "Kontrak pengembangan perangkat lunak"),
        ("pl", "Umowa o wykonanie oprogramowania"),
    ],
)
def test_the_contract_is_in_the_offers_language(cast, lead, language, title):
    import io

    from pypdf import PdfReader

    offer = services.create_offer(
        exact_data(language=language), actor=cast.owner, lead=lead, now=NOW
    )
    services.send_offer(offer, actor=cast.owner, now=NOW)
    contract = services.accept_offer(offer, version=1, now=NOW)
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(bytes(contract.document))).pages)
    assert contract.title == title and title in text and "Integracja z Allegro" in text
