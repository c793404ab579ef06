"""What a customer is entitled to for an instance, from what they bought: a free support window
after the purchase, a revision quota, and included support time. Shown on every ticket to both
sides; a request beyond it is answered with a paid quote.

Rules (``classify``):
* something that does not work (a defect) is always in scope — it is the seller's to fix;
* a change request uses one revision while the quota lasts, then it is out of scope;
* a question is in scope inside the free window or while included time is left;
* a ticket about no instance (a general question) is in scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from otomat.billing.models import Subscription
from otomat.billing.money import Money
from otomat.instances.models import Instance


@dataclass(frozen=True)
class Entitlement:
    support_until: datetime
    revision_quota: int
    revisions_used: int
    included_minutes: int
    minutes_used: int
    hourly_rate: Money | None  # the default price of an hour of paid work, if the plan sets one

    @property
    def revisions_left(self) -> int:
        return max(self.revision_quota - self.revisions_used, 0)

    @property
    def minutes_left(self) -> int:
        return max(self.included_minutes - self.minutes_used, 0)

    def in_window(self, now: datetime | None = None) -> bool:
        return (now or timezone.now()) <= self.support_until


def for_instance(instance: Instance) -> Entitlement:
    """The instance's entitlement now (counts the tickets and time used so far)."""
    from otomat.support.models import SupportTerms, Ticket, TimeEntry

    sub = Subscription.objects.filter(instance=instance).select_related("plan").first()
    terms = SupportTerms.objects.filter(plan_id=sub.plan_id).first() if sub else None
    started = (sub.activated_at if sub and sub.activated_at else None) or instance.created_at
    free_days = terms.free_support_days if terms else settings.SUPPORT_DEFAULT_FREE_DAYS
    quota = terms.revision_quota if terms else settings.SUPPORT_DEFAULT_REVISIONS
    included = terms.included_minutes if terms else 0
    rate = Money(terms.hourly_rate_minor, sub.plan.currency) if terms and sub else None
    used = Ticket.objects.filter(instance=instance, counts_as_revision=True).count()
    minutes = (
        TimeEntry.objects.filter(ticket__instance=instance, quote__isnull=True).aggregate(
            total=Sum("minutes")
        )["total"]
        or 0
    )
    return Entitlement(
        support_until=started + timedelta(days=free_days),
        revision_quota=quota,
        revisions_used=used,
        included_minutes=included,
        minutes_used=minutes,
        hourly_rate=rate if rate and rate.amount_minor else None,
    )


def classify(*, instance: Instance | None, kind: str, now: datetime | None = None) -> dict:
    """``{"counts_as_revision": bool, "out_of_scope": bool, "reason": str}`` for a new ticket."""
    from otomat.support.models import Ticket

    if instance is None or kind == Ticket.Kind.PROBLEM:
        return {"counts_as_revision": False, "out_of_scope": False, "reason": ""}
    ent = for_instance(instance)
    if kind == Ticket.Kind.CHANGE:
        if ent.revisions_left:
            return {"counts_as_revision": True, "out_of_scope": False, "reason": ""}
        return {
            "counts_as_revision": False,
            "out_of_scope": True,
            "reason": f"all {ent.revision_quota} revisions used",
        }
    if ent.in_window(now) or ent.minutes_left:
        return {"counts_as_revision": False, "out_of_scope": False, "reason": ""}
    return {
        "counts_as_revision": False,
        "out_of_scope": True,
        "reason": f"free support ended on {ent.support_until:%Y-%m-%d} and no included time is left",
    }
