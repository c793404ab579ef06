"""The owner hears of every decision a client takes: an offer accepted or declined, a contract
signed (by email, and by Telegram when linked). Queued inside the decision's transaction, once
per decision (dedupe keys)."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from otomat.accounts.models import User
from otomat.notify.services import notify_user
from otomat.projects.offers.models import Contract, Offer


def _owners():
    return User.objects.filter(is_superuser=True, is_active=True)


def _url(offer: Offer) -> str:
    return settings.BASE_URL + reverse("offers:detail", args=[offer.pk])


def _client(offer: Offer) -> str:
    if offer.lead is not None:
        return offer.lead.name
    return offer.account.name if offer.account else ""


def offer_decided(offer: Offer) -> None:
    """``offers/accepted`` or ``offers/declined`` to every owner."""
    kind = "offers/accepted" if offer.status == Offer.Status.ACCEPTED else "offers/declined"
    for owner in _owners():
        notify_user(
            owner,
            kind,
            {"offer": offer, "client": _client(offer), "url": _url(offer)},
            dedupe_key=f"{kind}:{offer.pk}",
        )


def contract_signed(contract: Contract) -> None:
    offer = contract.offer
    for owner in _owners():
        notify_user(
            owner,
            "offers/signed",
            {"contract": contract, "signer": contract.signature.name, "url": _url(offer)},
            dedupe_key=f"offers/signed:{contract.pk}",
        )
