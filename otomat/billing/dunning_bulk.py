"""The dunning engine's bulk paths: the common work of a billing run — renewal invoices issued
ahead of time, reminders, becoming past due and suspensions — for a whole batch with a constant
number of statements. Each path does exactly what ``dunning.evaluate`` would do row by row
(the tests compare the two), hands back the ids it handled, and on any error handles none, so
``evaluate`` then takes them one by one."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction

from otomat.billing.dunning_rules import (
    ACTOR,
    DAY,
    SS,
    Context,
    due_reminder,
    new_action,
    next_run,
    suspension_reason,
)
from otomat.billing.invoicing import days_overdue
from otomat.billing.models import BillingAction, Invoice, Subscription
from otomat.billing.subscriptions import period_bounds, plan_lines
from otomat.instances.models import Instance
from otomat.instances.services import SUSPENDABLE, SuspensionSource, suspend_instances

log = logging.getLogger("otomat.billing.dunning")


def bulk_candidate(sub: Subscription, open_invoices: list[Invoice], ctx: Context) -> bool:
    """True when the only thing due for ``sub`` is issuing its next renewal invoice ahead of
    time — the common case, e.g. every subscription that renews on the 1st — so ``evaluate``
    would do exactly what ``issue_renewals_in_bulk`` does, row by row."""
    if sub.status not in (SS.ACTIVE, SS.TRIALING) or sub.cancel_at_period_end or open_invoices:
        return False
    if sub.instance.state == Instance.State.TERMINATED or sub.coupon_id:
        return False
    if (sub.account_id, sub.plan.currency) in ctx.with_credit:
        return False  # credit is applied under a row lock, one invoice at a time
    policy = ctx.policy(sub)
    due_from = sub.current_period_end - policy.invoice_days_before * DAY
    return due_from <= ctx.now < sub.current_period_end


def issue_renewals_in_bulk(
    subs: list[Subscription], open_by_sub: dict[int, list[Invoice]], ctx: Context
) -> set[int]:
    """Issue the renewal invoices of every bulk candidate with a constant number of queries:
    one block of numbers, one insert each for invoices, lines, actions and notices, one update
    of the subscriptions. Returns the ids handled; on any conflict (a concurrent run got there
    first) it handles none and the caller falls back to ``evaluate`` one by one."""
    from otomat.billing.documents import seller_snapshot
    from otomat.billing.invoicing import _build_lines, buyer_snapshot
    from otomat.billing.models import InvoiceLine
    from otomat.billing.numbering import take_numbers
    from otomat.notify.services import notify_many

    picks: list[Subscription] = []
    try:
        picks = [s for s in subs if bulk_candidate(s, open_by_sub.get(s.pk, []), ctx)]
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
            seller = seller_snapshot(config)  # frozen at issue, like the buyer
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
                        seller=seller,
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
                sub.next_run_at = next_run(sub, ctx, ctx.policy(sub), open_now)
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


def dunning_plan(sub: Subscription, open_invoices: list[Invoice], ctx: Context) -> dict | None:
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
        due = due_reminder(invoice, policy, ctx.now)
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


def dunning_in_bulk(
    subs: list[Subscription], open_by_sub: dict[int, list[Invoice]], ctx: Context
) -> set[int]:
    """Reminders and suspensions of many subscriptions with a constant number of statements
    per batch; the instances are suspended by ``instances.services.suspend_instances`` (what
    ``suspend_instance`` does one by one, in bulk). Returns the ids handled; on any error, none
    (``evaluate`` then handles them one by one)."""
    from otomat.notify.services import notify_many

    plans: dict[int, dict] = {}
    try:
        for sub in subs:
            plan = dunning_plan(sub, open_by_sub.get(sub.pk, []), ctx)
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
                        new_action(ctx, sub, BillingAction.Kind.REMINDED, key, reason, invoice)
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
                    to_suspend[sub.instance_id] = suspension_reason(invoice, late)
                    key = f"suspended:{sub.pk}:{invoice.pk}"
                    if key not in done_keys:
                        actions.append(
                            new_action(
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
                sub.next_run_at = next_run(sub, ctx, plan["policy"], open_by_sub.get(sub.pk, []))
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
