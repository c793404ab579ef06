"""The dunning engine: renews, invoices, reminds, charges late fees, suspends, unsuspends and
terminates subscriptions, each step idempotent and logged with its reason.

One function decides everything for one subscription, ``evaluate``: it looks at the
subscription, its plan's policy and its open invoices at ``now``, does what is due, and sets
``next_run_at`` to the next moment something will be due. ``run_billing`` (the scheduler's
periodic task) takes the subscriptions whose ``next_run_at`` has come, in keyset-paginated
batches of a bounded size, each batch in one transaction and each subscription in a savepoint:
one failing subscription is rolled back alone, logged, and retried later with backoff, while
the run goes on. ``run_subscription`` runs one subscription at once (after a payment).

Why this cannot bill twice: a renewal invoice has the unique key ``renewal:<sub>:<period
start>``; a period advances with the subscription row locked and only from the period end it
read; every notice and action has a unique key. Whoever triggers it — the scheduler, a payment
callback, a person, or two of them at once — the second attempt finds the work done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from otomat.accounts.models import Account
from otomat.billing import notices
from otomat.billing.invoicing import days_overdue, issue_invoice, void_invoice
from otomat.billing.models import (
    BillingAction,
    BillingSettings,
    CreditBalance,
    DunningPolicy,
    Invoice,
    Plan,
    Subscription,
)
from otomat.billing.money import percentage
from otomat.billing.subscriptions import _use_coupon_period, period_bounds, plan_lines
from otomat.instances.models import Instance
from otomat.instances.services import (
    SUSPENDABLE,
    InstanceError,
    SuspensionSource,
    provision_instance,
    remove_instance,
    suspend_instance,
    suspend_instances,
    unsuspend_instance,
)
from otomat.lib.failpoints import failpoint

log = logging.getLogger("otomat.billing.dunning")
SS = Subscription.Status
DAY = timedelta(days=1)
ACTOR = "system:billing"
# Subscriptions per batch (one transaction). Larger batches cost fewer statements per row; on
# SQLite a batch holds the write lock for about half a second at this size.
BATCH_SIZE = 1000


@dataclass
class RunReport:
    processed: int = 0
    failed: int = 0
    actions: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.actions[kind] = self.actions.get(kind, 0) + 1


class _Context:
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


def _act(
    ctx: _Context,
    kind: str,
    sub: Subscription,
    reason: str,
    *,
    key: str | None,
    invoice: Invoice | None = None,
    data: dict | None = None,
) -> bool:
    """Record an automatic action once; returns False when ``key`` was already recorded."""
    try:
        with transaction.atomic():
            _bulk_action(ctx, sub, kind, key, reason, invoice, data).save(force_insert=True)
    except IntegrityError:
        return False
    ctx.report.count(kind)
    return True


# -- the decisions for one subscription ---------------------------------------------------------


def evaluate(sub: Subscription, ctx: _Context, open_invoices: list[Invoice] | None = None) -> None:
    """Do everything due for ``sub`` at ``ctx.now`` and set its ``next_run_at``. Call inside a
    transaction with the subscription row locked; idempotent."""
    if open_invoices is None:
        open_invoices = list(sub.invoices.filter(status=Invoice.Status.OPEN).order_by("due_at"))
    for invoice in open_invoices:  # share the loaded objects (and the preloaded responsible)
        invoice.subscription, invoice.account = sub, sub.account
    if sub.status in (SS.CANCELED, SS.TERMINATED):
        _save(sub, next_run_at=None)
        return
    if sub.instance.state == Instance.State.TERMINATED:
        _end_removed(sub, ctx, open_invoices)
        return
    if sub.status == SS.PENDING:
        _evaluate_order(sub, ctx, open_invoices)
        return
    policy = ctx.policy(sub)

    # 1. Periods that have ended: renew (or end a cancelled subscription).
    while sub.current_period_end <= ctx.now:
        if sub.cancel_at_period_end:
            _end_cancelled(sub, ctx, open_invoices)
            return
        invoice = _ensure_renewal_invoice(sub, ctx, policy)
        if invoice.status == Invoice.Status.OPEN and invoice not in open_invoices:
            open_invoices.append(invoice)
        _advance_period(sub, ctx)

    # 2. The next renewal's invoice, N days ahead.
    if (
        not sub.cancel_at_period_end
        and ctx.now >= sub.current_period_end - policy.invoice_days_before * DAY
    ):
        invoice = _ensure_renewal_invoice(sub, ctx, policy)
        if invoice.status == Invoice.Status.OPEN and invoice not in open_invoices:
            open_invoices.append(invoice)

    # 3. Open invoices: reminders, late fees; the oldest overdue one decides the rest.
    for invoice in list(open_invoices):
        _remind(sub, invoice, ctx, policy)
        late_fee = _charge_late_fee(sub, invoice, ctx, policy)
        if late_fee is not None and late_fee.status == Invoice.Status.OPEN:
            open_invoices.append(late_fee)
    overdue = [inv for inv in open_invoices if inv.due_at < ctx.now]
    if overdue:
        oldest = min(overdue, key=lambda inv: inv.due_at)
        late = days_overdue(oldest, ctx.now)
        if late >= policy.terminate_after_days:
            _terminate(sub, ctx, oldest, late)
            return
        if late >= policy.terminate_after_days - policy.export_notice_days:
            terminate_at = oldest.due_at + policy.terminate_after_days * DAY
            if _act(
                ctx,
                BillingAction.Kind.EXPORT_OFFERED,
                sub,
                f"{oldest.number} unpaid {late} days; data export offered before termination "
                f"on {terminate_at:%Y-%m-%d}",
                key=f"export:{sub.pk}:{oldest.pk}",
                invoice=oldest,
            ):
                notices.export_offered(sub, oldest, terminate_at=terminate_at)
        if late >= policy.suspend_after_days:
            if sub.status != SS.SUSPENDED:
                _suspend(sub, ctx, oldest, late)
        elif sub.status == SS.ACTIVE:
            sub.status = SS.PAST_DUE
    elif sub.status == SS.SUSPENDED:
        _unsuspend(sub, ctx)
    elif sub.status == SS.PAST_DUE:
        sub.status = SS.ACTIVE
    _save(sub, next_run_at=_next_run(sub, ctx, policy, open_invoices))


def _save(sub: Subscription, **fields) -> None:
    for name, value in fields.items():
        setattr(sub, name, value)
    sub.failures, sub.last_error = 0, ""
    sub.save()


def _evaluate_order(sub: Subscription, ctx: _Context, open_invoices: list[Invoice]) -> None:
    """A subscription waiting for its first payment: activate when the order invoice is paid,
    remind while it is open, cancel the order when it stays unpaid too long."""
    order = sub.invoices.filter(kind=Invoice.Kind.ORDER).first()
    if order is None or order.status == Invoice.Status.PAID:
        _activate(sub, ctx)
        return
    if order.status == Invoice.Status.VOID or sub.cancel_at_period_end:
        _cancel_order(sub, ctx, order, "order cancelled")
        return
    policy = ctx.policy(sub)
    _remind(sub, order, ctx, policy)
    late = days_overdue(order, ctx.now)
    if late >= policy.suspend_after_days:
        _cancel_order(sub, ctx, order, f"order {order.number} unpaid {late} days after due date")
        return
    candidates = [order.due_at + policy.suspend_after_days * DAY]
    candidates += _reminder_times(order, policy, ctx.now)
    _save(sub, next_run_at=_earliest_after(candidates, ctx.now))


def _activate(sub: Subscription, ctx: _Context) -> None:
    months = sub.plan.period_months
    sub.anchor_at, sub.period_index = ctx.now, 0
    sub.current_period_start, sub.current_period_end = period_bounds(ctx.now, months, 0)
    sub.status, sub.activated_at = SS.ACTIVE, ctx.now
    provision_instance(sub.instance, actor_label=ACTOR, cause="order paid")
    _act(
        ctx,
        BillingAction.Kind.ACTIVATED,
        sub,
        f"order paid; {sub.instance.name} started",
        key=f"activated:{sub.pk}",
    )
    notices.activated(sub)
    _save(sub, next_run_at=_next_run(sub, ctx, ctx.policy(sub), []))


def _cancel_order(sub: Subscription, ctx: _Context, order: Invoice, reason: str) -> None:
    if order.status == Invoice.Status.OPEN and not order.amount_paid_minor:
        void_invoice(order, reason=reason[:200], actor_label=ACTOR)
    if sub.instance.state != Instance.State.TERMINATED:
        remove_instance(sub.instance, actor=None, actor_label=ACTOR, cause=reason[:300])
    _act(ctx, BillingAction.Kind.CANCELED, sub, reason, key=f"canceled:{sub.pk}", invoice=order)
    _save(sub, status=SS.CANCELED, ended_at=ctx.now, next_run_at=None)


def _ensure_renewal_invoice(sub: Subscription, ctx: _Context, policy: DunningPolicy) -> Invoice:
    """The invoice for the period after the current one, issued once (unique key)."""
    plan = sub.plan
    next_index = sub.period_index + 1
    start, end = period_bounds(sub.anchor_at, plan.period_months, next_index)
    key = f"renewal:{sub.pk}:{start.isoformat()}"
    existing = Invoice.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    with_setup = not sub.setup_fee_charged
    invoice, created = issue_invoice(
        account=sub.account,
        currency=plan.currency,
        lines=plan_lines(sub, plan, period=(start, end), with_setup_fee=with_setup),
        kind=Invoice.Kind.RENEWAL,
        due_at=start,
        tax_rate=plan.tax_rate,
        subscription=sub,
        period=(start, end),
        idempotency_key=key,
        now=ctx.now,
        reason=f"Renewal of {sub.instance.name} for {start:%Y-%m-%d} – {end:%Y-%m-%d}",
    )
    if created:
        ctx.report.count(BillingAction.Kind.INVOICED)
        _use_coupon_period(sub)
        sub.setup_fee_charged = True
    return invoice


def _advance_period(sub: Subscription, ctx: _Context) -> None:
    """Move to the next period (the subscription row is locked by the caller, and the period
    only moves from the end it read, so it can never advance twice)."""
    start = sub.current_period_end
    sub.period_index += 1
    sub.current_period_start, sub.current_period_end = period_bounds(
        sub.anchor_at, sub.plan.period_months, sub.period_index
    )
    if sub.current_period_start != start:  # pragma: no cover - guards the period arithmetic
        raise RuntimeError(f"period mismatch: {sub.current_period_start} != {start}")
    if sub.status == SS.TRIALING:
        sub.status = SS.ACTIVE
    _act(
        ctx,
        BillingAction.Kind.RENEWED,
        sub,
        f"renewed for {sub.current_period_start:%Y-%m-%d} – {sub.current_period_end:%Y-%m-%d}",
        key=f"renewed:{sub.pk}:{start.isoformat()}",
    )


def _reminder_times(invoice: Invoice, policy: DunningPolicy, now: datetime) -> list[datetime]:
    return [invoice.due_at + day * DAY for day in policy.reminder_days or []]


def _due_reminder(invoice: Invoice, policy: DunningPolicy, now: datetime) -> tuple[int, str] | None:
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


def _remind(sub: Subscription, invoice: Invoice, ctx: _Context, policy: DunningPolicy) -> None:
    """Send the reminder that is due for ``invoice`` (if any), once."""
    due = _due_reminder(invoice, policy, ctx.now)
    if due is None:
        return
    day, reason = due
    if _act(
        ctx,
        BillingAction.Kind.REMINDED,
        sub,
        reason,
        key=f"reminded:{invoice.pk}:{day}",
        invoice=invoice,
    ):
        notices.reminder(invoice, day=day)


def _charge_late_fee(
    sub: Subscription, invoice: Invoice, ctx: _Context, policy: DunningPolicy
) -> Invoice | None:
    if (
        not policy.late_fee_percent
        or invoice.kind == Invoice.Kind.LATE_FEE
        or days_overdue(invoice, ctx.now) < policy.late_fee_after_days
        or invoice.due_at > ctx.now
    ):
        return None
    fee = percentage(invoice.total, policy.late_fee_percent)
    if fee.is_zero:
        return None
    from otomat.billing.invoicing import LineSpec

    late_fee, created = issue_invoice(
        account=sub.account,
        currency=invoice.currency,
        lines=[LineSpec(description=f"Late fee for {invoice.number}", unit_price=fee)],
        kind=Invoice.Kind.LATE_FEE,
        due_at=ctx.now,
        subscription=sub,
        related_invoice=invoice,
        idempotency_key=f"late_fee:{invoice.pk}",
        now=ctx.now,
        reason=f"late fee of {policy.late_fee_percent}% for {invoice.number}",
    )
    if created:
        _act(
            ctx,
            BillingAction.Kind.LATE_FEE,
            sub,
            f"{fee} late fee: {invoice.number} unpaid {days_overdue(invoice, ctx.now)} days",
            key=f"late_fee:{invoice.pk}",
            invoice=late_fee,
        )
    return late_fee


def _suspension_reason(invoice: Invoice, late: int) -> str:
    return f"invoice {invoice.number} unpaid {late} days after its due date"


def _suspend(sub: Subscription, ctx: _Context, invoice: Invoice, late: int) -> None:
    reason = _suspension_reason(invoice, late)
    try:
        suspend_instance(
            sub.instance, source=SuspensionSource.BILLING, reason=reason, actor_label=ACTOR
        )
    except InstanceError as exc:
        # A pending or terminated instance has nothing to stop; billing's decision still holds.
        log.info("subscription %s: instance not suspended: %s", sub.pk, exc)
    sub.status = SS.SUSPENDED
    if _act(
        ctx,
        BillingAction.Kind.SUSPENDED,
        sub,
        reason,
        key=f"suspended:{sub.pk}:{invoice.pk}",
        invoice=invoice,
    ):
        notices.suspended(sub, invoice)


def _unsuspend(sub: Subscription, ctx: _Context) -> None:
    failpoint("billing.before_unsuspend")
    lifted = unsuspend_instance(
        sub.instance,
        source=SuspensionSource.BILLING,
        reason="all overdue invoices paid",
        actor_label=ACTOR,
    )
    sub.status = SS.ACTIVE
    key = f"unsuspended:{sub.pk}:{ctx.now.isoformat()}"
    reason = "all overdue invoices paid" + ("" if lifted else "; a staff suspension remains")
    _act(ctx, BillingAction.Kind.UNSUSPENDED, sub, reason, key=key)
    if lifted:
        notices.unsuspended(sub, key=key)


def _terminate(sub: Subscription, ctx: _Context, invoice: Invoice, late: int) -> None:
    reason = f"invoice {invoice.number} unpaid {late} days after its due date"
    if sub.instance.state != Instance.State.TERMINATED:
        remove_instance(sub.instance, actor=None, actor_label=ACTOR, cause=f"terminated: {reason}")
    for open_invoice in sub.invoices.filter(status=Invoice.Status.OPEN, amount_paid_minor=0):
        void_invoice(
            open_invoice, reason="subscription terminated for non-payment", actor_label=ACTOR
        )
    delete_at = ctx.now + settings.TERMINATED_DATA_GRACE_DAYS * DAY
    if _act(
        ctx,
        BillingAction.Kind.TERMINATED,
        sub,
        f"{reason}; data deleted after {delete_at:%Y-%m-%d}",
        key=f"terminated:{sub.pk}",
        invoice=invoice,
    ):
        notices.terminated(sub, invoice, delete_at=delete_at)
    _save(sub, status=SS.TERMINATED, ended_at=ctx.now, next_run_at=None)


def _end_cancelled(sub: Subscription, ctx: _Context, open_invoices: list[Invoice]) -> None:
    reason = (
        f"cancelled by the customer; ended with the period on {sub.current_period_end:%Y-%m-%d}"
    )
    if sub.instance.state != Instance.State.TERMINATED:
        remove_instance(sub.instance, actor=None, actor_label=ACTOR, cause=reason)
    for invoice in open_invoices:
        if invoice.period_start and invoice.period_start >= sub.current_period_end:
            void_invoice(invoice, reason="subscription cancelled", actor_label=ACTOR)
    _act(ctx, BillingAction.Kind.CANCELED, sub, reason, key=f"canceled:{sub.pk}")
    _save(sub, status=SS.CANCELED, ended_at=ctx.now, next_run_at=None)


def _end_removed(sub: Subscription, ctx: _Context, open_invoices: list[Invoice]) -> None:
    """The customer removed the instance: nothing more to bill; invoices for time not yet
    started are voided (time already used stays owed)."""
    for invoice in open_invoices:
        future = invoice.period_start and invoice.period_start >= ctx.now
        if (future or invoice.kind == Invoice.Kind.ORDER) and not invoice.amount_paid_minor:
            void_invoice(invoice, reason="instance removed", actor_label=ACTOR)
    _act(ctx, BillingAction.Kind.CANCELED, sub, "instance removed", key=f"canceled:{sub.pk}")
    _save(sub, status=SS.CANCELED, ended_at=ctx.now, next_run_at=None)


# -- when to look again -------------------------------------------------------------------------


def _earliest_after(candidates: list[datetime], now: datetime) -> datetime | None:
    future = [c for c in candidates if c > now]
    return min(future) if future else None


def _next_run(
    sub: Subscription, ctx: _Context, policy: DunningPolicy, open_invoices: list[Invoice]
) -> datetime | None:
    candidates = [sub.current_period_end]
    if not sub.cancel_at_period_end:
        candidates.append(sub.current_period_end - policy.invoice_days_before * DAY)
    for invoice in open_invoices:
        if invoice.status != Invoice.Status.OPEN:
            continue
        candidates += _reminder_times(invoice, policy, ctx.now)
        for days in (
            policy.suspend_after_days,
            policy.terminate_after_days,
            policy.terminate_after_days - policy.export_notice_days,
        ):
            candidates.append(invoice.due_at + days * DAY)
        if policy.late_fee_percent:
            candidates.append(invoice.due_at + policy.late_fee_after_days * DAY)
        candidates.append(invoice.due_at + timedelta(seconds=1))  # past due from then
    return _earliest_after(candidates, ctx.now)


# -- the bulk path -------------------------------------------------------------------------------


def _bulk_candidate(sub: Subscription, open_invoices: list[Invoice], ctx: _Context) -> bool:
    """True when the only thing due for ``sub`` is issuing its next renewal invoice ahead of
    time — the common case, e.g. every subscription that renews on the 1st — so ``evaluate``
    would do exactly what ``_issue_renewals_in_bulk`` does, row by row."""
    if sub.status not in (SS.ACTIVE, SS.TRIALING) or sub.cancel_at_period_end or open_invoices:
        return False
    if sub.instance.state == Instance.State.TERMINATED or sub.coupon_id:
        return False
    if (sub.account_id, sub.plan.currency) in ctx.with_credit:
        return False  # credit is applied under a row lock, one invoice at a time
    policy = ctx.policy(sub)
    due_from = sub.current_period_end - policy.invoice_days_before * DAY
    return due_from <= ctx.now < sub.current_period_end


def _issue_renewals_in_bulk(
    subs: list[Subscription], open_by_sub: dict[int, list[Invoice]], ctx: _Context
) -> set[int]:
    """Issue the renewal invoices of every bulk candidate with a constant number of queries:
    one block of numbers, one insert each for invoices, lines, actions and notices, one update
    of the subscriptions. Returns the ids handled; on any conflict (a concurrent run got there
    first) it handles none and the caller falls back to ``evaluate`` one by one."""
    from otomat.billing.invoicing import _build_lines, buyer_snapshot
    from otomat.billing.models import InvoiceLine
    from otomat.billing.numbering import take_numbers
    from otomat.notify.services import notify_many

    picks: list[Subscription] = []
    try:
        picks = [s for s in subs if _bulk_candidate(s, open_by_sub.get(s.pk, []), ctx)]
        if not picks:
            return set()
        config = ctx.settings
        with transaction.atomic():
            planned = []
            for sub in picks:
                plan = sub.plan
                start, end = period_bounds(sub.anchor_at, plan.period_months, sub.period_index + 1)
                lines = plan_lines(
                    sub, plan, period=(start, end), with_setup_fee=not sub.setup_fee_charged
                )
                rows = _build_lines(lines, plan.currency, plan.tax_rate)
                planned.append((sub, start, end, rows))
            numbers = take_numbers(config.invoice_series, len(planned), at=ctx.now)
            invoices = []
            for (sub, start, end, rows), number in zip(planned, numbers, strict=True):
                buyer = buyer_snapshot(sub.account)
                total = sum(r["gross_minor"] for r in rows)
                invoices.append(
                    Invoice(
                        account_id=sub.account_id,
                        subscription=sub,
                        kind=Invoice.Kind.RENEWAL,
                        number=number,
                        currency=sub.plan.currency,
                        subtotal_minor=sum(r["net_minor"] for r in rows),
                        discount_minor=sum(r["discount_minor"] for r in rows),
                        tax_minor=sum(r["tax_minor"] for r in rows),
                        total_minor=total,
                        amount_due_minor=total,
                        status=Invoice.Status.OPEN if total else Invoice.Status.PAID,
                        paid_at=None if total else ctx.now,
                        period_start=start,
                        period_end=end,
                        issued_at=ctx.now,
                        due_at=max(start, ctx.now),
                        language=buyer.pop("language"),
                        buyer=buyer,
                        idempotency_key=f"renewal:{sub.pk}:{start.isoformat()}",
                    )
                )
            Invoice.objects.bulk_create(invoices)
            if any(invoice.pk is None for invoice in invoices):  # no RETURNING (older MySQL)
                ids = dict(
                    Invoice.objects.filter(
                        idempotency_key__in=[i.idempotency_key for i in invoices]
                    ).values_list("idempotency_key", "id")
                )
                for invoice in invoices:
                    invoice.pk = invoice.id = ids[invoice.idempotency_key]
            InvoiceLine.objects.bulk_create(
                InvoiceLine(invoice=invoice, **row)
                for invoice, (_sub, _s, _e, rows) in zip(invoices, planned, strict=True)
                for row in rows
            )
            actions, notices = [], []
            for invoice, (sub, start, end, _rows) in zip(invoices, planned, strict=True):
                reason = f"Renewal of {sub.instance.name} for {start:%Y-%m-%d} – {end:%Y-%m-%d}"
                actions.append(
                    BillingAction(
                        at=ctx.now,
                        kind=BillingAction.Kind.INVOICED,
                        key=f"invoiced:{invoice.pk}",
                        account_id=sub.account_id,
                        subscription=sub,
                        invoice=invoice,
                        reason=reason[:300],
                        actor_label=ACTOR,
                        data={"total_minor": invoice.total_minor, "currency": invoice.currency},
                    )
                )
                person = sub.account.responsible
                if person is not None and invoice.amount_due_minor:
                    notices.append(
                        (
                            person,
                            "billing/invoice_issued",
                            {"invoice": invoice.pk},  # rendered at delivery
                            f"billing:issued:{invoice.pk}",
                        )
                    )
                sub.setup_fee_charged = True
                sub.failures, sub.last_error = 0, ""
                open_now = [invoice] if invoice.status == Invoice.Status.OPEN else []
                sub.next_run_at = _next_run(sub, ctx, ctx.policy(sub), open_now)
            BillingAction.objects.bulk_create(actions)
            notify_many(notices)
            # One UPDATE per distinct next run time (subscriptions renewing together share it);
            # cheaper than bulk_update's per-row CASE expressions.
            by_next_run: dict[datetime | None, list[int]] = {}
            for sub in picks:
                by_next_run.setdefault(sub.next_run_at, []).append(sub.pk)
            for next_run_at, ids in by_next_run.items():
                Subscription.objects.filter(pk__in=ids).update(
                    setup_fee_charged=True, failures=0, last_error="", next_run_at=next_run_at
                )
    except IntegrityError:
        log.info("bulk renewal conflicted with another run; falling back to one by one")
        return set()
    except Exception:  # one bad subscription must not stop the batch: evaluate isolates it
        log.exception("bulk renewal failed; falling back to one by one")
        return set()
    ctx.report.actions[BillingAction.Kind.INVOICED] = ctx.report.actions.get(
        BillingAction.Kind.INVOICED, 0
    ) + len(picks)
    ctx.report.processed += len(picks)
    return {sub.pk for sub in picks}


# -- the bulk dunning path ------------------------------------------------------------------------


def _dunning_plan(sub: Subscription, open_invoices: list[Invoice], ctx: _Context) -> dict | None:
    """What ``evaluate`` would do for ``sub`` if that is only reminders, becoming past due and
    a suspension — the daily work of dunning — else None (the subscription then goes through
    ``evaluate``). Pure: reads nothing from the database."""
    if sub.status not in (SS.ACTIVE, SS.PAST_DUE) or sub.cancel_at_period_end:
        return None
    if sub.instance.state not in SUSPENDABLE or not open_invoices:
        return None
    policy = ctx.policy(sub)
    if policy.late_fee_percent:
        return None  # late fees are issued one by one
    if ctx.now >= sub.current_period_end - policy.invoice_days_before * DAY:
        return None  # a renewal or its invoice is due as well
    reminders = []
    for invoice in open_invoices:
        due = _due_reminder(invoice, policy, ctx.now)
        if due is not None:
            reminders.append((invoice, *due))
    overdue = [inv for inv in open_invoices if inv.due_at < ctx.now]
    suspend = None
    if overdue:
        oldest = min(overdue, key=lambda inv: inv.due_at)
        late = days_overdue(oldest, ctx.now)
        if late >= policy.terminate_after_days - policy.export_notice_days:
            return None  # export offers and terminations are done one by one
        if late >= policy.suspend_after_days:
            suspend = (oldest, late)
    status = SS.SUSPENDED if suspend else (SS.PAST_DUE if overdue else SS.ACTIVE)
    return {"policy": policy, "reminders": reminders, "suspend": suspend, "status": status}


def _dunning_in_bulk(
    subs: list[Subscription], open_by_sub: dict[int, list[Invoice]], ctx: _Context
) -> set[int]:
    """Reminders and suspensions of many subscriptions with a constant number of statements
    per batch; the instances are suspended by ``instances.services.suspend_instances`` (what
    ``suspend_instance`` does one by one, in bulk). Returns the ids handled; on any error, none
    (``evaluate`` then handles them one by one)."""
    from otomat.notify.services import notify_many

    plans: dict[int, dict] = {}
    try:
        for sub in subs:
            plan = _dunning_plan(sub, open_by_sub.get(sub.pk, []), ctx)
            if plan is not None and (
                plan["reminders"] or plan["suspend"] or plan["status"] != sub.status
            ):
                plans[sub.pk] = plan
        if not plans:
            return set()
        by_id = {sub.pk: sub for sub in subs if sub.pk in plans}
        with transaction.atomic():
            wanted = [
                f"reminded:{inv.pk}:{day}"
                for plan in plans.values()
                for inv, day, _reason in plan["reminders"]
            ] + [
                f"suspended:{sub_id}:{plan['suspend'][0].pk}"
                for sub_id, plan in plans.items()
                if plan["suspend"]
            ]
            done_keys = set(
                BillingAction.objects.filter(key__in=wanted).values_list("key", flat=True)
            )
            actions, notices_ = [], []
            to_suspend = {}  # instance id → the reason its customer is shown
            for sub_id, plan in plans.items():
                sub = by_id[sub_id]
                person = sub.account.responsible
                for invoice, day, reason in plan["reminders"]:
                    key = f"reminded:{invoice.pk}:{day}"
                    if key in done_keys:
                        continue
                    actions.append(
                        _bulk_action(ctx, sub, BillingAction.Kind.REMINDED, key, reason, invoice)
                    )
                    if person is not None:
                        notices_.append(
                            (
                                person,
                                "billing/reminder",
                                {"invoice": invoice.pk, "day": day},
                                f"billing:reminder:{invoice.pk}:{day}",
                            )
                        )
                if plan["suspend"]:
                    invoice, late = plan["suspend"]
                    to_suspend[sub.instance_id] = _suspension_reason(invoice, late)
                    key = f"suspended:{sub.pk}:{invoice.pk}"
                    if key not in done_keys:
                        actions.append(
                            _bulk_action(
                                ctx,
                                sub,
                                BillingAction.Kind.SUSPENDED,
                                key,
                                to_suspend[sub.instance_id],
                                invoice,
                            )
                        )
                        if person is not None:
                            notices_.append(
                                (
                                    person,
                                    "billing/suspended",
                                    {"invoice": invoice.pk, "subscription": sub.pk},
                                    f"billing:suspended:{sub.pk}:{invoice.pk}",
                                )
                            )
                sub.status = plan["status"]
                sub.next_run_at = _next_run(sub, ctx, plan["policy"], open_by_sub.get(sub.pk, []))
            # An instance that is no longer suspendable (removed meanwhile) is skipped there;
            # billing's decision still holds, as in ``_suspend``.
            suspend_instances(to_suspend, source=SuspensionSource.BILLING, actor_label=ACTOR)
            BillingAction.objects.bulk_create(actions, ignore_conflicts=True)
            notify_many(notices_)
            groups: dict[tuple, list[int]] = {}
            for sub_id in plans:
                sub = by_id[sub_id]
                groups.setdefault((sub.status, sub.next_run_at), []).append(sub_id)
            for (status, next_run_at), ids in groups.items():
                Subscription.objects.filter(pk__in=ids).update(
                    status=status, next_run_at=next_run_at, failures=0, last_error=""
                )
    except Exception:
        log.exception("bulk dunning failed; falling back to one by one")
        for sub in subs:  # undo the in-memory changes: evaluate starts from the stored rows
            if sub.pk in plans:
                sub.refresh_from_db(fields=["status", "next_run_at"])
        return set()
    for action in actions:
        ctx.report.count(action.kind)
    ctx.report.processed += len(plans)
    return set(plans)


def _bulk_action(ctx, sub, kind, key, reason, invoice, data=None) -> BillingAction:
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


# -- running ------------------------------------------------------------------------------------


def _locked(qs):
    """Lock the rows we work on; concurrent runs skip them instead of waiting."""
    features = connection.features
    if features.has_select_for_update_skip_locked and features.has_select_for_update_of:
        return qs.select_for_update(skip_locked=True, of=("self",))
    if features.has_select_for_update:
        return qs.select_for_update()
    return qs  # SQLite: one writer at a time anyway


def _with_relations(qs):
    # The instance's secrets and config are never needed here: deferring them skips a Fernet
    # decryption per row.
    return qs.select_related("instance", "account__billing_profile", "coupon").defer(
        "instance__secrets", "instance__config", "instance__status_message"
    )


def _attach_plans(subs: list[Subscription]) -> None:
    """Give every subscription its plan (with product, policy and tax rate) from one query:
    a batch has thousands of subscriptions but only a handful of plans."""
    plans = Plan.objects.select_related("product", "dunning_policy", "tax_rate").in_bulk(
        {sub.plan_id for sub in subs}
    )
    for sub in subs:
        sub.plan = plans[sub.plan_id]


def _fail(sub_id: int, ctx: _Context, exc: BaseException) -> None:
    """Record a failed evaluation and look again later (1 min, doubling, at most a day)."""
    sub = Subscription.objects.get(pk=sub_id)
    failures = sub.failures + 1
    delay = min(timedelta(minutes=2 ** min(failures - 1, 11)), DAY)
    message = f"{type(exc).__name__}: {exc}"[:1000]
    Subscription.objects.filter(pk=sub_id).update(
        failures=failures, last_error=message, next_run_at=ctx.now + delay
    )
    BillingAction.objects.create(
        at=ctx.now,
        kind=BillingAction.Kind.FAILED,
        account_id=sub.account_id,
        subscription_id=sub_id,
        reason=f"run failed ({failures}×), retrying in {delay}: {message}"[:300],
        actor_label=ACTOR,
    )
    ctx.report.failed += 1
    log.warning("subscription %s failed (%s×): %s", sub_id, failures, message)


def run_subscription(subscription_id: int, *, now: datetime | None = None) -> RunReport:
    """Evaluate one subscription now (after a payment, or by staff). Safe to call any time."""
    ctx = _Context(now or timezone.now(), RunReport())
    try:
        with transaction.atomic():
            sub = _with_relations(_locked(Subscription.objects.filter(pk=subscription_id))).first()
            if sub is None:
                return ctx.report
            _attach_plans([sub])
            evaluate(sub, ctx)
            ctx.report.processed += 1
    except Exception as exc:
        _fail(subscription_id, ctx, exc)
    return ctx.report


def run_billing(
    *, now: datetime | None = None, batch_size: int = BATCH_SIZE, limit: int | None = None
) -> RunReport:
    """Process every subscription whose ``next_run_at`` has come, oldest first, in batches.

    Bounded: each query reads at most ``batch_size`` subscriptions (keyset pagination on
    ``(next_run_at, id)``) plus their open invoices, so memory does not grow with the number of
    subscriptions. Returns counts of what was done."""
    ctx = _Context(now or timezone.now(), RunReport())
    after: tuple[datetime, int] | None = None
    while limit is None or ctx.report.processed + ctx.report.failed < limit:
        due = Subscription.objects.filter(next_run_at__lte=ctx.now)
        if after is not None:
            due = due.filter(Q(next_run_at__gt=after[0]) | Q(next_run_at=after[0], id__gt=after[1]))
        keys = list(due.order_by("next_run_at", "id").values_list("next_run_at", "id")[:batch_size])
        if not keys:
            break
        after = keys[-1]
        _run_batch([pk for _, pk in keys], ctx)
    log.info(
        "billing run: %s processed, %s failed, %s",
        ctx.report.processed,
        ctx.report.failed,
        ctx.report.actions,
    )
    return ctx.report


def _run_batch(ids: list[int], ctx: _Context) -> None:
    failed: list[tuple[int, BaseException]] = []
    with transaction.atomic():
        subs = list(
            _with_relations(
                _locked(Subscription.objects.filter(pk__in=ids, next_run_at__lte=ctx.now))
            )
        )
        _attach_plans(subs)
        open_by_sub: dict[int, list[Invoice]] = {}
        for invoice in Invoice.objects.filter(
            subscription_id__in=[s.pk for s in subs], status=Invoice.Status.OPEN
        ).order_by("due_at", "id"):
            open_by_sub.setdefault(invoice.subscription_id, []).append(invoice)
        Account.preload_responsible([sub.account for sub in subs])
        ctx.with_credit = set(
            CreditBalance.objects.filter(
                account_id__in={sub.account_id for sub in subs}, balance_minor__gt=0
            ).values_list("account_id", "currency")
        )
        done = _issue_renewals_in_bulk(subs, open_by_sub, ctx)
        done |= _dunning_in_bulk([s for s in subs if s.pk not in done], open_by_sub, ctx)
        for sub in subs:
            if sub.pk in done:
                continue
            try:
                with transaction.atomic():
                    evaluate(sub, ctx, open_by_sub.get(sub.pk, []))
                ctx.report.processed += 1
            except Exception as exc:
                failed.append((sub.pk, exc))
    for sub_id, exc in failed:  # after the batch commits, outside the rolled-back savepoints
        _fail(sub_id, ctx, exc)
