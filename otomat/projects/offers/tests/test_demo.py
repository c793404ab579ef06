"""The demo's offers: templates, a Polish lead's range offer and a signed contract for a
customer, seeded twice without duplicates."""

from __future__ import annotations

from otomat.billing.models import Invoice
from otomat.projects.offers import contracts, demo, services
from otomat.projects.offers.models import ContractTemplate, Offer


def test_seed_demo_is_idempotent(cast):
    first = demo.seed_demo(account=cast.alice.account)
    again = demo.seed_demo(account=cast.alice.account)
    assert [o.pk for o in first] == [o.pk for o in again]
    assert ContractTemplate.objects.count() == 3 and Offer.objects.count() == 2
    ranged, signed = first
    assert ranged.status == Offer.Status.SENT and services.totals(ranged)["is_range"]
    assert services.signed_offer_for_account(cast.alice.account) == signed
    assert contracts.verify(signed.contract)
    assert Invoice.objects.filter(account=cast.alice.account).count() == 1  # the deposit
