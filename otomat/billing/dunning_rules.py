"""What the dunning engine's paths share (``dunning`` one subscription at a time,
``dunning_bulk`` many at once): the run's context and report, an automatic action record, and
the schedule rules — which reminder is due, and when a subscription needs looking at again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from otomat.billing.models import (
    BillingAction,
    BillingSettings,
    DunningPolicy,
    Invoice,
    Subscription,
)

SS = Subscription.Status
DAY = timedelta(days=1)
ACTOR = "system:billing"


@dataclass
class RunReport:
    processed: int = 0
    failed: int = 0
    actions: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.actions[kind] = self.actions.get(kind, 0) + 1


class Context:
    """What one evaluation needs besides the subscription: the time, the report, and caches."""

    def __init__(self, now: datetime, report: RunReport) -> None:
        self.now = now
        self.report = report
        self._default_policy: DunningPolicy | None = None
        self._settings: BillingSettings | None = None
        self.with_credit: set[tuple[int, str]] = set()  # (account, currency) with credit > 0

    def policy(self, sub: Subscription) -> DunningPolicy:
        if sub.plan.dunning_policy_id:
            return sub.plan.dunning_policy
        if self._default_policy is None:
            self._default_policy = DunningPolicy.default()
        return self._default_policy

    @property
    def settings(self) -> BillingSettings:
        if self._settings is None:
            from otomat.billing.invoicing import ensure_series

            self._settings = ensure_series()
        return self._settings


def new_action(ctx, sub, kind, key, reason, invoice, data=None) -> BillingAction:
    """An automatic action, not yet saved (``_act`` saves one, the bulk paths many at once)."""
    return BillingAction(
        at=ctx.now,
        kind=kind,
        key=key,
        account_id=sub.account_id,
        subscription=sub,
        invoice=invoice,
        reason=reason[:300],
        actor_label=ACTOR,
        data=data or {},
    )


# -- the schedule -------------------------------------------------------------------------------


def reminder_times(invoice: Invoice, policy: DunningPolicy, now: datetime) -> list[datetime]:
    return [invoice.due_at + day * DAY for day in policy.reminder_days or []]


def due_reminder(invoice: Invoice, policy: DunningPolicy, now: datetime) -> tuple[int, str] | None:
    """(day, reason) of the latest reminder whose moment has come, or None. Reminders whose
    moment passed before the invoice existed, or while the engine was not running, are skipped
    — never sent late in a burst."""
    passed = [
        day
        for day in sorted(policy.reminder_days or [])
        if invoice.issued_at < invoice.due_at + day * DAY <= now
    ]
    if not passed:
        return None
    day = passed[-1]
    when = "before" if day < 0 else "after"
    reason = (
        f"reminder for {invoice.number}, due {invoice.due_at:%Y-%m-%d}"
        if day == 0
        else f"reminder for {invoice.number}, {abs(day)} days {when} its due date"
    )
    return day, reason


def suspension_reason(invoice: Invoice, late: int) -> str:
    return f"invoice {invoice.number} unpaid {late} days after its due date"


def earliest_after(candidates: list[datetime], now: datetime) -> datetime | None:
    future = [c for c in candidates if c > now]
    return min(future) if future else None


def next_run(
    sub: Subscription, ctx: Context, policy: DunningPolicy, open_invoices: list[Invoice]
) -> datetime | None:
    candidates = [sub.current_period_end]
    if not sub.cancel_at_period_end:
        candidates.append(sub.current_period_end - policy.invoice_days_before * DAY)
    for invoice in open_invoices:
        if invoice.status != Invoice.Status.OPEN:
            continue
        candidates += reminder_times(invoice, policy, ctx.now)
        for days in (
            policy.suspend_after_days,
            policy.terminate_after_days,
            policy.terminate_after_days - policy.export_notice_days,
        ):
            candidates.append(invoice.due_at + days * DAY)
        if policy.late_fee_percent:
            candidates.append(invoice.due_at + policy.late_fee_after_days * DAY)
        candidates.append(invoice.due_at + timedelta(seconds=1))  # past due from then
    return earliest_after(candidates, ctx.now)
