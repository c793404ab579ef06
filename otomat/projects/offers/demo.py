"""Demo data of offers and contracts. ``seed_demo()`` is idempotent:

* the contract templates in English, Indonesian and Polish (the built-in texts, saved so the
  owner sees them in the template editor; an existing template is left as the owner wrote it);
* a Polish lead ("Domki nad Jeziorem") with a sent range offer (a booking calendar synced with
  Booking, online payments, a marketplace integration) that they can open by its link;
* with ``account``: a signed contract for that customer account (an exact offer, a 30 %
  deposit on signing, the rest per milestone), so the board has a signed offer to start from.

Needs the owner (the first superuser); without one it seeds only the templates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from otomat.accounts.models import Account, User
from otomat.projects.models import Lead
from otomat.projects.offers import contracts, services
from otomat.projects.offers.models import ContractTemplate, Offer
from otomat.projects.offers.services import LineIn, MilestoneIn, OfferIn, StepIn

LEAD_EMAIL = "domki@example.pl"


def _range_offer(today: dt.date) -> OfferIn:
    return OfferIn(
        title="Kalendarz rezerwacji z Bookingiem i płatności online",
        currency="PLN",
        language="pl",
        valid_until=today + dt.timedelta(days=30),
        revision_rounds=3,
        summary="Podsumowanie rozmowy z widełkami czasowymi i kosztowymi.",
        agreed_total_minor=2_400_000,
        lines=(
            LineIn(
                "Kalendarz rezerwacji zsynchronizowany z Bookingiem",
                kind="range",
                cost_min_minor=800_000,
                cost_max_minor=1_200_000,
                weeks_min=Decimal(2),
                weeks_max=Decimal(3),
            ),
            LineIn(
                "Płatności online",
                kind="range",
                cost_min_minor=400_000,
                cost_max_minor=600_000,
                weeks_min=Decimal(1),
                weeks_max=Decimal(2),
            ),
            LineIn(
                "Dedykowana integracja z Allegro",
                kind="range",
                cost_min_minor=900_000,
                cost_max_minor=1_300_000,
                weeks_min=Decimal(3),
                weeks_max=Decimal(4),
            ),
        ),
        milestones=(
            MilestoneIn("Kalendarz na stagingu", weeks=Decimal(3)),
            MilestoneIn("Wdrożenie produkcyjne", weeks=Decimal(8)),
        ),
        steps=(
            StepIn("Zaliczka", "signing", percent=Decimal(30)),
            StepIn("Po kalendarzu", "milestone", percent=Decimal(30), milestone=0),
            StepIn("Po wdrożeniu", "milestone", percent=Decimal(40), milestone=1),
        ),
    )


def _exact_offer(today: dt.date, language: str, currency: str) -> OfferIn:
    return OfferIn(
        title="Online shop with bookings",
        currency=currency,
        language=language,
        valid_until=today + dt.timedelta(days=30),
        revision_rounds=2,
        lines=(
            LineIn("Design", unit_price_minor=300_000, weeks_max=Decimal(2)),
            LineIn("Shop and booking calendar", unit_price_minor=900_000, weeks_max=Decimal(4)),
        ),
        milestones=(
            MilestoneIn("Design approved", weeks=Decimal(2)),
            MilestoneIn("Production release", weeks=Decimal(6)),
        ),
        steps=(
            StepIn("Deposit", "signing", percent=Decimal(30)),
            StepIn("Design", "milestone", percent=Decimal(20), milestone=0),
            StepIn("Release", "milestone", percent=Decimal(50), milestone=1),
        ),
    )


@transaction.atomic
def seed_demo(account: Account | None = None) -> list[Offer]:
    owner = User.objects.filter(is_superuser=True).order_by("pk").first()
    for language, (title, body) in contracts.DEFAULT_TEMPLATES.items():
        if owner is not None and not ContractTemplate.objects.filter(language=language).exists():
            contracts.save_template(language=language, title=title, body=body, actor=owner)
    if owner is None:
        return []
    today = timezone.now().date()
    seeded = []
    lead, _created = Lead.objects.get_or_create(
        email=LEAD_EMAIL,
        defaults={
            "name": "Dominik Nowak",
            "company": "Domki nad Jeziorem",
            "language": "pl",
            "timezone": "Europe/Warsaw",
            "source": Lead.Source.MANUAL,
        },
    )
    offer = Offer.objects.filter(lead=lead).first()
    if offer is None:
        offer = services.create_offer(_range_offer(today), actor=owner, lead=lead)
        offer = services.send_offer(offer, actor=owner)
    seeded.append(offer)
    if account is not None:
        signed = services.signed_offer_for_account(account)
        if signed is None:
            person = account.responsible
            language = person.language if person else "en"
            data = _exact_offer(today, language, account.currency)
            signed = services.create_offer(data, actor=owner, account=account)
            services.send_offer(signed, actor=owner)
            contract = services.accept_offer(signed, version=1, actor=person)
            contracts.sign_contract(
                contract,
                name=(person.get_full_name() if person else "") or account.name,
                consent=True,
                consent_shown=contracts.consent_text(contract.language),
                document_sha256=contract.document_sha256,
                user=person,
                ip="127.0.0.1",
                user_agent="Otomat demo",
            )
            signed.refresh_from_db()
        seeded.append(signed)
    return seeded
