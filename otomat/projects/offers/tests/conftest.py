"""The offers' cast: a Polish lead (Jan) with an estimate, the owner who writes the offers, and
alice / charlie from the shared cast as existing customers who must see nothing of Jan's."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def lead(db):
    from otomat.projects.models import Lead

    return Lead.objects.create(
        name="Jan Kowalski",
        email="jan@example.pl",
        company="Domki nad Jeziorem",
        language="pl",
        timezone="Europe/Warsaw",
        source=Lead.Source.ESTIMATOR,
    )


@pytest.fixture
def estimate(lead):
    from otomat.projects.models import Estimate

    return Estimate.objects.create(
        lead=lead,
        currency="PLN",
        language="pl",
        selections=[{"key": "shop", "quantity": 1}, {"key": "languages", "quantity": 2}],
        lines=[
            {
                "key": "shop",
                "title": "Sklep internetowy",
                "quantity": 1,
                "weeks_min": "2",
                "weeks_max": "3",
                "cost_min_minor": 800_000,
                "cost_max_minor": 1_200_000,
            },
            {
                "key": "languages",
                "title": "Wersje językowe",
                "quantity": 2,
                "weeks_min": "1",
                "weeks_max": "2",
                "cost_min_minor": 200_000,
                "cost_max_minor": 400_000,
            },
        ],
        weeks_min=Decimal("4"),
        weeks_max=Decimal("7"),
        cost_min_minor=1_800_000,
        cost_max_minor=3_100_000,
    )


def exact_data(**changes):
    """An exact PLN offer: 2 × 5,000 + 8,000 = 18,000 zł, a 30 % deposit and the rest on
    the milestone "Launch"."""
    from otomat.projects.offers.services import LineIn, MilestoneIn, OfferIn, StepIn

    data = {
        "title": "Sklep z rezerwacjami",
        "currency": "PLN",
        "language": "pl",
        "valid_until": dt.date(2026, 12, 31),
        "revision_rounds": 3,
        "lines": (
            LineIn(
                "Projekt graficzny",
                quantity=2,
                unit_price_minor=500_000,
                weeks_min=Decimal(2),
                weeks_max=Decimal(2),
            ),
            LineIn("Integracja z Allegro", unit_price_minor=800_000, weeks_max=Decimal(3)),
        ),
        "milestones": (
            MilestoneIn("Makiety", weeks=Decimal(2)),
            MilestoneIn("Wdrożenie", weeks=Decimal(5)),
        ),
        "steps": (
            StepIn("Zaliczka", "signing", percent=Decimal(30)),
            StepIn("Po wdrożeniu", "milestone", percent=Decimal(70), milestone=1),
        ),
    }
    data.update(changes)
    return OfferIn(**data)


@pytest.fixture
def offer(cast, lead):
    """Jan's exact offer, sent."""
    from otomat.projects.offers import services

    offer = services.create_offer(exact_data(), actor=cast.owner, lead=lead, now=NOW)
    return services.send_offer(offer, actor=cast.owner, now=NOW)
