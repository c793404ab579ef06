"""Orders and subscriptions: placing an order, coupons, period arithmetic, plan changes with
proration, cancellation.

WARNING — billing periods. A period is ``[anchor + i×months, anchor + (i+1)×months)``, computed
from the anchor with ``relativedelta`` (never by adding a month to the previous end), so the
31st stays the 31st where the month has one and never drifts to the 28th for good. Periods are
in UTC; a plan change or proration measures elapsed real time (``money.prorated_credit``).
``tests/test_periods.py`` checks these properties with hypothesis.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date
from babel.numbers import format_percent
from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from otomat.accounts.models import Account, User
from otomat.accounts.services import record_audit
from otomat.billing.invoicing import (
    BillingError,
    LineSpec,
    account_language,
    change_credit,
    issue_invoice,
)
from otomat.billing.models import (
    BillingAction,
    BillingSettings,
    Coupon,
    Invoice,
    Plan,
    Subscription,
)
from otomat.billing.money import Money, percentage, prorated_credit
from otomat.catalog.i18n import plan_name, product_text
from otomat.catalog.models import ProductVersion
from otomat.instances.models import Instance
from otomat.instances.services import create_instance

SS = Subscription.Status


def period_bounds(anchor: datetime, months: int, index: int) -> tuple[datetime, datetime]:
    """Period ``index`` (0-based) of a subscription anchored at ``anchor``."""
    if index < 0:
        raise ValueError("period index must be >= 0")
    return (
        anchor + relativedelta(months=months * index),
        anchor + relativedelta(months=months * (index + 1)),
    )


def period_label(plan: Plan) -> str:
    return {1: "1 month", 3: "3 months", 12: "1 year"}.get(
        plan.period_months, f"{plan.period_months} months"
    )


# -- coupons ------------------------------------------------------------------------------------


def find_coupon(code: str, plan: Plan, *, now: datetime | None = None) -> Coupon:
    """The usable coupon ``code`` for ``plan``; raises BillingError saying why not."""
    now = now or timezone.now()
    code = (code or "").strip().upper()
    coupon = Coupon.objects.filter(code=code, is_active=True).first()
    if coupon is None:
        raise BillingError("This coupon code is not valid.")
    if coupon.valid_until and coupon.valid_until < now:
        raise BillingError("This coupon has expired.")
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise BillingError("This coupon has been used up.")
    if coupon.plans.exists() and not coupon.plans.filter(pk=plan.pk).exists():
        raise BillingError("This coupon does not apply to this plan.")
    if coupon.amount_off_minor is not None and coupon.currency != plan.currency:
        raise BillingError(f"This coupon is for prices in {coupon.currency}.")
    return coupon


def coupon_discount(coupon: Coupon | None, amount: Money) -> Money:
    """What ``coupon`` takes off ``amount`` (never more than the amount)."""
    if coupon is None or amount.amount_minor <= 0:
        return Money.zero(amount.currency)
    if coupon.percent_off is not None:
        return percentage(amount, coupon.percent_off)
    if coupon.amount_off_minor is not None and coupon.currency == amount.currency:
        return Money(min(coupon.amount_off_minor, amount.amount_minor), amount.currency)
    return Money.zero(amount.currency)


def _coupon_applies(sub: Subscription) -> bool:
    return sub.coupon_id is not None and (
        sub.coupon_periods_left is None or sub.coupon_periods_left > 0
    )


def _use_coupon_period(sub: Subscription) -> None:
    if sub.coupon_periods_left:
        sub.coupon_periods_left -= 1


def plan_lines(
    sub: Subscription,
    plan: Plan,
    *,
    period: tuple[datetime, datetime] | None,
    with_setup_fee: bool,
) -> list[LineSpec]:
    """The lines for one period of ``plan`` (with the coupon, and the setup fee when due),
    described in the account's language as the invoice will be issued: the product and plan
    names from the product's translations, "first period" for the subscription's first one
    (an order, or period 0 after a trial) and "Setup fee" for the setup fee."""
    lang = account_language(sub.account)
    zone = _account_zone(sub.account)
    version = _instance_version(sub, plan)
    first = period is None or period[0] == sub.anchor_at
    lines = []
    discount = coupon_discount(sub.coupon, plan.price) if _coupon_applies(sub) else None
    with translation.override(lang):
        product = _product_name(plan, sub, lang)
        head = f"{product} — {plan_name(plan, lang, version=version)}"
        if period is not None:
            dates = "{} – {}".format(
                format_date(period[0].astimezone(zone).date(), "medium", locale=lang),
                format_date(period[1].astimezone(zone).date(), "medium", locale=lang),
            )
        else:
            dates = f"({period_length(plan.period_months)})"
        if first:
            description = _("%(item)s, first period %(dates)s") % {"item": head, "dates": dates}
        else:
            description = _("%(item)s, period %(dates)s") % {"item": head, "dates": dates}
        if sub.instance_id:
            description += f": {sub.instance.name}"
        label = coupon_label(sub.coupon, lang) if discount and not discount.is_zero else ""
        lines.append(
            LineSpec(
                description=description,
                unit_price=plan.price,
                discount=discount if discount and not discount.is_zero else None,
                discount_label=label,
                period_start=period[0] if period else None,
                period_end=period[1] if period else None,
            )
        )
        if with_setup_fee and plan.setup_fee_minor:
            lines.append(
                LineSpec(
                    description=_("Setup fee: %(product)s") % {"product": product},
                    unit_price=plan.setup_fee,
                )
            )
    return lines


def _product_name(plan: Plan, sub: Subscription, lang: str) -> str:
    """The product's name in ``lang`` from the manifest of the version the instance runs."""
    version = _instance_version(sub, plan)
    return (product_text(version, "name", lang) if version else "") or plan.product.name


def _instance_version(sub: Subscription, plan: Plan) -> ProductVersion | None:
    """The version the subscription's instance runs (for its translated names). The billing
    run shares one plan object among a batch's subscriptions, so versions are remembered on
    it: one query per version in a batch, not one per invoice."""
    if not sub.instance_id:
        return None
    instance = sub.instance
    cached = instance._state.fields_cache.get("version")
    if cached is not None:
        return cached
    remembered = plan.__dict__.setdefault("_otomat_versions", {})
    if instance.version_id not in remembered:
        remembered[instance.version_id] = ProductVersion.objects.select_related("product").get(
            pk=instance.version_id
        )
    return remembered[instance.version_id]


def period_length(months: int) -> str:
    """ "1 month", "3 months", "1 year" in the active language."""
    if months == 12:
        return _("1 year")
    return ngettext("%(n)d month", "%(n)d months", months) % {"n": months}


def coupon_label(coupon: Coupon, lang: str) -> str:
    """How a coupon's discount is named on an invoice: "Coupon HEMAT20 (−20 %)"."""
    with translation.override(lang):
        if coupon.percent_off is not None:
            off = format_percent(coupon.percent_off / 100, locale=lang)
        else:
            off = Money(coupon.amount_off_minor or 0, coupon.currency or "USD").format(lang)
        return _("Coupon %(code)s (−%(off)s)") % {"code": coupon.code, "off": off}


def _account_zone(account: Account) -> ZoneInfo:
    person = account.responsible
    try:
        return ZoneInfo((person.timezone if person else "") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# -- ordering -----------------------------------------------------------------------------------


def plans_for(product, account: Account | None) -> list[Plan]:
    """The plans a customer can order: in their account's currency when the product has any,
    otherwise all offered plans."""
    plans = list(Plan.objects.filter(product=product, is_active=True).select_related("tax_rate"))
    if account is not None:
        own = [p for p in plans if p.currency == account.currency]
        if own:
            return own
    return plans


def had_trial(account: Account, plan: Plan) -> bool:
    """One trial per account and product: a second order of the same product pays at once."""
    return Subscription.objects.filter(
        account=account, plan__product=plan.product, trial_end__isnull=False
    ).exists()


def place_order(
    *,
    account: Account,
    version: ProductVersion,
    plan: Plan,
    name: str,
    config: dict[str, Any],
    actor: User,
    coupon_code: str = "",
    now: datetime | None = None,
) -> tuple[Instance, Invoice | None]:
    """A customer orders a product on ``plan``: the instance is created (pending), then

    * with a trial (the account's first of this product): it runs at once until the trial ends;
    * otherwise: an order invoice (first period + setup fee, less the coupon and any credit) is
      issued, and the instance starts when it is paid (at once if nothing is due).

    Returns (instance, the order invoice or None). Raises ConfigError, InstanceError or
    BillingError, storing nothing."""
    from otomat.billing.dunning import run_subscription

    now = now or timezone.now()
    if plan.product_id != version.product_id or not plan.is_active:
        raise BillingError("This plan is not available for this product.")
    with transaction.atomic():
        # The plan's terms as stored, with its row locked: a change of them (``Plan.save``)
        # either commits before this order reads them or waits and then sees this order's
        # subscription, and is refused.
        plan = Plan.objects.select_for_update().get(pk=plan.pk)
        if not plan.is_active:
            raise BillingError("This plan is not available for this product.")
        coupon = find_coupon(coupon_code, plan, now=now) if coupon_code.strip() else None
        instance = create_instance(
            account=account, version=version, name=name, config=config, actor=actor
        )
        sub = Subscription.objects.create(
            account=account,
            instance=instance,
            plan=plan,
            status=SS.PENDING,
            coupon=coupon,
            coupon_periods_left=_coupon_periods(coupon),
            created_at=now,
        )
        if coupon is not None:
            Coupon.objects.filter(pk=coupon.pk).update(times_redeemed=F("times_redeemed") + 1)
        record_audit(
            "billing.ordered",
            actor=actor,
            account=account,
            target=sub,
            data={"plan": plan.code, "coupon": coupon.code if coupon else ""},
        )
        invoice = None
        if plan.trial_days and not had_trial(account, plan):
            trial_end = now + timedelta(days=plan.trial_days)
            sub.status = SS.TRIALING
            sub.anchor_at = sub.trial_end = sub.current_period_end = trial_end
            sub.current_period_start = now
            sub.period_index = -1
            sub.activated_at = now
            sub.next_run_at = now
            sub.save()
            from otomat.instances.services import provision_instance

            provision_instance(
                instance, actor=actor, cause=f"trial of {plan.trial_days} days started"
            )
        else:
            config_row = BillingSettings.get()
            invoice, _created = issue_invoice(
                account=account,
                currency=plan.currency,
                lines=plan_lines(sub, plan, period=None, with_setup_fee=True),
                kind=Invoice.Kind.ORDER,
                due_at=now + timedelta(days=config_row.order_payment_days),
                tax_rate=plan.tax_rate,
                subscription=sub,
                idempotency_key=f"order:{sub.pk}",
                now=now,
                reason=f"Order of {plan}",
            )
            _use_coupon_period(sub)
            sub.setup_fee_charged = True
            sub.next_run_at = now
            sub.save()
    # Nothing due (a full coupon or enough credit): activate now rather than on the next run.
    if invoice is not None and invoice.status == Invoice.Status.PAID:
        run_subscription(sub.pk, now=now)
    instance.refresh_from_db()
    return instance, invoice


def _coupon_periods(coupon: Coupon | None) -> int | None:
    if coupon is None:
        return None
    if coupon.duration == Coupon.Duration.ONCE:
        return 1
    if coupon.duration == Coupon.Duration.REPEATING:
        return coupon.duration_periods or 1
    return None


# -- plan changes -------------------------------------------------------------------------------


def _period_price(sub: Subscription, plan: Plan) -> Money:
    """What one period of ``plan`` costs this subscription (coupon included while it lasts)."""
    discount = coupon_discount(sub.coupon, plan.price) if _coupon_applies(sub) else None
    return plan.price - discount if discount else plan.price


def preview_plan_change(
    sub: Subscription, new_plan: Plan, *, now: datetime | None = None
) -> dict[str, Any]:
    """What ``change_plan`` would do, without doing it: credit for unused time, charge for the
    rest of the period (or a new period when the length changes), and the difference."""
    now = now or timezone.now()
    _check_plan_change(sub, new_plan, now)
    old = sub.plan
    start, end = sub.current_period_start, sub.current_period_end
    if sub.status == SS.TRIALING:
        zero = Money.zero(new_plan.currency)
        return {"credit": zero, "charge": zero, "difference": zero, "new_period": False}
    credit = prorated_credit(_period_price(sub, old), start, end, now)
    if new_plan.period_months == old.period_months:
        charge = prorated_credit(_period_price(sub, new_plan), start, end, now)
        new_period = False
    else:
        charge = _period_price(sub, new_plan)
        new_period = True
    return {
        "credit": credit,
        "charge": charge,
        "difference": charge - credit,
        "new_period": new_period,
    }


def _check_plan_change(sub: Subscription, new_plan: Plan, now: datetime) -> None:
    if sub.status not in (SS.ACTIVE, SS.TRIALING):
        raise BillingError("The plan can be changed while the subscription is active and paid up.")
    if new_plan.pk == sub.plan_id:
        raise BillingError("This is already the current plan.")
    if new_plan.product_id != sub.plan.product_id or not new_plan.is_active:
        raise BillingError("Choose another plan of the same product.")
    if new_plan.currency != sub.plan.currency:
        raise BillingError("Plans in another currency cannot be switched to; order anew.")
    if sub.invoices.filter(status=Invoice.Status.OPEN, due_at__lte=now).exists():
        raise BillingError("Pay the overdue invoice first.")


def change_plan(
    sub: Subscription, new_plan: Plan, *, actor: User | None, now: datetime | None = None
) -> Invoice | None:
    """Switch to ``new_plan`` now, prorated: the unused part of the current period is credited
    and the rest of the period on the new plan charged (the same period end), or, when the
    period length changes, a new period starts now at the new price. A positive difference is
    invoiced (due at once, dunned like any invoice); a negative one goes to the credit balance.
    An unpaid renewal invoice for the next period is voided and re-issued at the new price.
    Returns the invoice or None. Raises BillingError."""
    now = now or timezone.now()
    with transaction.atomic():
        sub = (
            Subscription.objects.select_for_update().select_related("plan__product").get(pk=sub.pk)
        )
        _check_plan_change(sub, new_plan, now)
        old_plan = sub.plan
        preview = preview_plan_change(sub, new_plan, now=now)
        from otomat.billing.invoicing import void_invoice

        for upcoming in sub.invoices.filter(status=Invoice.Status.OPEN, amount_paid_minor=0):
            void_invoice(upcoming, reason=f"Plan changed to {new_plan.name}", actor=actor)
        invoice = None
        if sub.status != SS.TRIALING:
            difference: Money = preview["difference"]
            if preview["new_period"]:
                sub.anchor_at, sub.period_index = now, 0
                sub.current_period_start, sub.current_period_end = period_bounds(
                    now, new_plan.period_months, 0
                )
            if difference.amount_minor > 0:
                lang = account_language(sub.account)
                zone = _account_zone(sub.account)
                with translation.override(lang):
                    until = format_date(
                        sub.current_period_end.astimezone(zone).date(), "medium", locale=lang
                    )
                    lines = [
                        LineSpec(
                            description=_("Unused time on %(plan)s")
                            % {"plan": plan_name(old_plan, lang)},
                            unit_price=-preview["credit"],
                        ),
                        LineSpec(
                            description=_("%(product)s — %(plan)s until %(date)s")
                            % {
                                "product": _product_name(new_plan, sub, lang),
                                "plan": plan_name(new_plan, lang),
                                "date": until,
                            },
                            unit_price=preview["charge"],
                            period_start=now,
                            period_end=sub.current_period_end,
                        ),
                    ]
                invoice, _created = issue_invoice(
                    account=sub.account,
                    currency=new_plan.currency,
                    lines=[line for line in lines if not line.unit_price.is_zero],
                    kind=Invoice.Kind.PLAN_CHANGE,
                    due_at=now,
                    tax_rate=new_plan.tax_rate,
                    subscription=sub,
                    idempotency_key=f"plan_change:{sub.pk}:{now.isoformat()}",
                    now=now,
                    reason=f"Plan change {old_plan.name} → {new_plan.name}",
                    actor_label=f"user:{actor.email}" if actor else "system:billing",
                )
            elif difference.amount_minor < 0:
                change_credit(
                    sub.account,
                    -difference,
                    reason=f"Plan change {old_plan.name} → {new_plan.name}: unused time",
                    actor=actor,
                )
        sub.plan = new_plan
        sub.next_run_at = now
        sub.save()
        BillingAction.objects.create(
            kind=BillingAction.Kind.PLAN_CHANGED,
            key=f"plan_changed:{sub.pk}:{now.isoformat()}",
            account=sub.account,
            subscription=sub,
            invoice=invoice,
            reason=(
                f"{old_plan.name} → {new_plan.name}: credit {preview['credit']}, "
                f"charge {preview['charge']}"
            )[:300],
            actor_label=f"user:{actor.email}" if actor else "system:billing",
        )
        record_audit(
            "billing.plan_changed",
            actor=actor,
            account=sub.account,
            target=sub,
            data={"from": old_plan.code, "to": new_plan.code},
        )
    return invoice


# -- cancelling ---------------------------------------------------------------------------------


def cancel_subscription(sub: Subscription, *, actor: User | None) -> Subscription:
    """The customer cancels: the instance runs to the end of the paid period, then is removed
    (its data kept for the usual grace period). An unpaid invoice for the next period is voided.
    A subscription still awaiting its first payment is cancelled at once."""
    from otomat.billing.invoicing import void_invoice

    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=sub.pk)
        if not sub.is_live and sub.status != SS.PENDING:
            raise BillingError("This subscription has already ended.")
        if sub.status == SS.SUSPENDED:
            raise BillingError("Pay the overdue invoice first, or let it end.")
        for invoice in sub.invoices.filter(status=Invoice.Status.OPEN, amount_paid_minor=0):
            if sub.status == SS.PENDING or (
                invoice.period_start and invoice.period_start >= sub.current_period_end
            ):
                void_invoice(invoice, reason="Subscription cancelled", actor=actor)
        sub.cancel_at_period_end = True
        sub.next_run_at = timezone.now() if sub.status == SS.PENDING else sub.current_period_end
        sub.save(update_fields=["cancel_at_period_end", "next_run_at"])
        record_audit("billing.cancelled", actor=actor, account=sub.account, target=sub)
    return sub


def resume_subscription(sub: Subscription, *, actor: User | None) -> Subscription:
    """Undo a cancellation before the period ends."""
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=sub.pk)
        if not sub.cancel_at_period_end or not sub.is_live:
            raise BillingError("This subscription is not set to end.")
        sub.cancel_at_period_end = False
        sub.next_run_at = timezone.now()
        sub.save(update_fields=["cancel_at_period_end", "next_run_at"])
        record_audit("billing.resumed", actor=actor, account=sub.account, target=sub)
    return sub
