"""The dunning engine: renews, invoices, reminds, charges late fees, suspends, unsuspends and
terminates subscriptions, each step idempotent and logged with its reason.

One function decides everything for one subscription, ``evaluate``: it looks at the
subscription, its plan's policy and its open invoices at ``now``, does what is due, and sets
``next_run_at`` to the next moment something will be due. ``run_billing`` (the scheduler's
periodic task) takes the subscriptions whose ``next_run_at`` has come, in keyset-paginated
batches of a bounded size, each batch in one transaction and each subscription in a savepoint:
one failing subscription is rolled back alone, logged, and retried later with backoff, while
the run goes on. ``run_subscription`` runs one subscription at once (after a payment). The
common work of a batch (renewal invoices ahead of time, reminders, suspensions) first goes
through ``dunning_bulk`` in a constant number of statements; what is shared lives in
``dunning_rules``.

Why this cannot bill twice: a renewal invoice has the unique key ``renewal:<sub>:<period
start>``; a period advances with the subscription row locked and only from the period end it
read; every notice and action has a unique key. Whoever triggers it — the scheduler, a payment
callback, a person, or two of them at once — the second attempt finds the work done.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from otomat.accounts.models import Account
from otomat.billing import dunning_bulk, notices
from otomat.billing.dunning_rules import (
    ACTOR,
    DAY,
    SS,
    Context,
    RunReport,
    due_reminder,
    earliest_after,
    new_action,
    next_run,
    reminder_times,
    suspension_reason,
)
from otomat.billing.invoicing import days_overdue, issue_invoice, void_invoice
from otomat.billing.models import (
    BillingAction,
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
    InstanceError,
    SuspensionSource,
    provision_instance,
    remove_instance,
    suspend_instance,
    unsuspend_instance,
)
from otomat.lib.failpoints import failpoint

log = logging.getLogger("otomat.billing.dunning")
# Subscriptions per batch (one transaction). Larger batches cost fewer statements per row; on
# SQLite a batch holds the write lock for about half a second at this size.
BATCH_SIZE = 1000


def _act(
    ctx: Context,
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
            new_action(ctx, sub, kind, key, reason, invoice, data).save(force_insert=True)
    except IntegrityError:
        return False
    ctx.report.count(kind)
    return True


# -- the decisions for one subscription ---------------------------------------------------------


def evaluate(sub: Subscription, ctx: Context, open_invoices: list[Invoice] | None = None) -> None:
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
    _save(sub, next_run_at=next_run(sub, ctx, policy, open_invoices))


def _save(sub: Subscription, **fields) -> None:
    for name, value in fields.items():
        setattr(sub, name, value)
    sub.failures, sub.last_error = 0, ""
    sub.save()


def _evaluate_order(sub: Subscription, ctx: Context, open_invoices: list[Invoice]) -> None:
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
    candidates += reminder_times(order, policy, ctx.now)
    _save(sub, next_run_at=earliest_after(candidates, ctx.now))


def _activate(sub: Subscription, ctx: Context) -> None:
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
    _save(sub, next_run_at=next_run(sub, ctx, ctx.policy(sub), []))


def _cancel_order(sub: Subscription, ctx: Context, order: Invoice, reason: str) -> None:
    if order.status == Invoice.Status.OPEN and not order.amount_paid_minor:
        void_invoice(order, reason=reason[:200], actor_label=ACTOR)
    if sub.instance.state != Instance.State.TERMINATED:
        remove_instance(sub.instance, actor=None, actor_label=ACTOR, cause=reason[:300])
    _act(ctx, BillingAction.Kind.CANCELED, sub, reason, key=f"canceled:{sub.pk}", invoice=order)
    _save(sub, status=SS.CANCELED, ended_at=ctx.now, next_run_at=None)


def _ensure_renewal_invoice(sub: Subscription, ctx: Context, policy: DunningPolicy) -> Invoice:
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


def _advance_period(sub: Subscription, ctx: Context) -> None:
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


def _remind(sub: Subscription, invoice: Invoice, ctx: Context, policy: DunningPolicy) -> None:
    """Send the reminder that is due for ``invoice`` (if any), once."""
    due = due_reminder(invoice, policy, ctx.now)
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
    sub: Subscription, invoice: Invoice, ctx: Context, policy: DunningPolicy
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
    from otomat.billing.invoicing import LineSpec, account_language, late_fee_description

    label = late_fee_description(invoice, account_language(sub.account))
    late_fee, created = issue_invoice(
        account=sub.account,
        currency=invoice.currency,
        lines=[LineSpec(description=label, unit_price=fee)],
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


def _suspend(sub: Subscription, ctx: Context, invoice: Invoice, late: int) -> None:
    reason = suspension_reason(invoice, late)
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


def _unsuspend(sub: Subscription, ctx: Context) -> None:
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


def _terminate(sub: Subscription, ctx: Context, invoice: Invoice, late: int) -> None:
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


def _end_cancelled(sub: Subscription, ctx: Context, open_invoices: list[Invoice]) -> None:
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


def _end_removed(sub: Subscription, ctx: Context, open_invoices: list[Invoice]) -> None:
    """The customer removed the instance: nothing more to bill; invoices for time not yet
    started are voided (time already used stays owed)."""
    for invoice in open_invoices:
        future = invoice.period_start and invoice.period_start >= ctx.now
        if (future or invoice.kind == Invoice.Kind.ORDER) and not invoice.amount_paid_minor:
            void_invoice(invoice, reason="instance removed", actor_label=ACTOR)
    _act(ctx, BillingAction.Kind.CANCELED, sub, "instance removed", key=f"canceled:{sub.pk}")
    _save(sub, status=SS.CANCELED, ended_at=ctx.now, next_run_at=None)


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


def _fail(sub_id: int, ctx: Context, exc: BaseException) -> None:
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
    ctx = Context(now or timezone.now(), RunReport())
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
    ctx = Context(now or timezone.now(), RunReport())
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


def _run_batch(ids: list[int], ctx: Context) -> None:
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
        done = dunning_bulk.issue_renewals_in_bulk(subs, open_by_sub, ctx)
        done |= dunning_bulk.dunning_in_bulk(
            [s for s in subs if s.pk not in done], open_by_sub, ctx
        )
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
