"""Invoices, credit and credit notes never create or lose a minor unit: hypothesis generates
prices, taxes, coupons, credit balances and plan changes in every currency, and the stored
totals, the credit ledger and the proration must add up exactly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otomat.billing.invoicing import (
    BillingError,
    LineSpec,
    change_credit,
    credit_balance,
    issue_credit_note,
    issue_invoice,
    void_invoice,
)
from otomat.billing.models import CreditBalance, CreditEntry, Invoice, InvoiceSeries, TaxRate
from otomat.billing.money import CURRENCIES, Money, prorated_credit
from otomat.billing.tests.conftest import T0

pytestmark = pytest.mark.smoke
DB_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
currencies = st.sampled_from(sorted(CURRENCIES))
rates = st.sampled_from(
    [Decimal(0), Decimal(5), Decimal(8), Decimal(11), Decimal(23), Decimal("12.5")]
)


def ledger_sum(account, currency) -> int:
    return sum(
        CreditEntry.objects.filter(account=account, currency=currency).values_list(
            "amount_minor", flat=True
        )
    )


def check_invoice(invoice: Invoice) -> None:
    lines = list(invoice.lines.all())
    assert sum(line.net_minor for line in lines) == invoice.subtotal_minor
    assert sum(line.tax_minor for line in lines) == invoice.tax_minor
    assert sum(line.gross_minor for line in lines) == invoice.total_minor
    assert invoice.subtotal_minor + invoice.tax_minor == invoice.total_minor
    for line in lines:
        assert line.net_minor + line.tax_minor == line.gross_minor
        assert line.unit_price_minor * line.quantity - line.discount_minor in (
            line.net_minor,
            line.gross_minor,
        )
    assert (
        invoice.credit_applied_minor + invoice.amount_paid_minor + invoice.amount_due_minor
        == invoice.total_minor
    )
    assert invoice.amount_due_minor >= 0


@DB_SETTINGS
@given(
    currency=currencies,
    rate=rates,
    inclusive=st.booleans(),
    prices=st.lists(st.integers(0, 10**9), min_size=1, max_size=4),
    discount_percent=st.integers(0, 100),
    credit=st.integers(0, 2 * 10**9),
)
def test_issued_invoices_and_credit_add_up(
    cast, currency, rate, inclusive, prices, discount_percent, credit
):
    account = cast.alice.account
    tax = TaxRate.objects.create(name=f"T{rate}", rate_percent=rate, inclusive=inclusive)
    before = credit_balance(account, currency).amount_minor
    if credit:
        change_credit(account, Money(credit, currency), reason="top-up")
    lines = []
    for price in prices:
        discount = price * discount_percent // 100
        lines.append(
            LineSpec(
                description="x",
                unit_price=Money(price, currency),
                discount=Money(discount, currency),
            )
        )
    invoice, created = issue_invoice(
        account=account,
        currency=currency,
        lines=lines,
        kind=Invoice.Kind.MANUAL,
        due_at=T0,
        tax_rate=tax,
        now=T0,
        notify=False,
    )
    assert created
    check_invoice(invoice)
    balance = credit_balance(account, currency).amount_minor
    assert balance == before + credit - invoice.credit_applied_minor
    assert balance == ledger_sum(account, currency)
    assert invoice.status == (
        Invoice.Status.PAID if invoice.amount_due_minor == 0 else Invoice.Status.OPEN
    )
    # Voiding returns exactly the credit it used.
    if invoice.status == Invoice.Status.OPEN:
        void_invoice(invoice, reason="test")
        assert credit_balance(account, currency).amount_minor == before + credit
        assert credit_balance(account, currency).amount_minor == ledger_sum(account, currency)


@DB_SETTINGS
@given(
    currency=currencies,
    rate=rates,
    inclusive=st.booleans(),
    price=st.integers(1, 10**9),
    parts=st.lists(st.integers(1, 100), min_size=1, max_size=5),
)
def test_credit_notes_never_exceed_and_exactly_reverse_the_invoice(
    cast, currency, rate, inclusive, price, parts
):
    from otomat.billing.money import allocate
    from otomat.billing.payments import record_payment

    account = cast.alice.account
    tax = TaxRate.objects.create(name="T", rate_percent=rate, inclusive=inclusive)
    invoice, _ = issue_invoice(
        account=account,
        currency=currency,
        lines=[LineSpec("x", Money(price, currency))],
        kind=Invoice.Kind.MANUAL,
        due_at=T0,
        tax_rate=tax,
        now=T0,
        use_credit=False,
        notify=False,
    )
    record_payment(
        invoice,
        amount=invoice.total,
        gateway="manual",
        provider_payment_id=f"p-{invoice.pk}",
        actor_label="test",
    )
    invoice.refresh_from_db()
    before = credit_balance(account, currency).amount_minor
    notes = []
    for amount in allocate(invoice.total, parts):
        if amount.amount_minor:
            notes.append(
                issue_credit_note(
                    invoice, amount=amount, reason="refund", refund_method="credit", actor=None
                )
            )
    with pytest.raises(BillingError):
        issue_credit_note(
            invoice, amount=Money(1, currency), reason="more", refund_method="credit", actor=None
        )
    assert sum(n.total_minor for n in notes) == invoice.total_minor
    assert sum(n.net_minor for n in notes) + sum(n.tax_minor for n in notes) == invoice.total_minor
    if len(notes) == 1:  # a full credit note is the exact negative of the invoice
        assert (notes[0].net_minor, notes[0].tax_minor) == (
            invoice.subtotal_minor,
            invoice.tax_minor,
        )
    assert credit_balance(account, currency).amount_minor == before + invoice.total_minor
    assert credit_balance(account, currency).amount_minor == ledger_sum(account, currency)


@DB_SETTINGS
@given(
    old_price=st.integers(0, 10**8),
    new_price=st.integers(0, 10**8),
    at=st.integers(0, 30 * 24 * 3600),
)
def test_plan_changes_charge_exactly_the_prorated_difference(
    cast, greeter, policy, order, old_price, new_price, at
):
    import time_machine

    from otomat.billing.models import Plan, Subscription
    from otomat.billing.subscriptions import change_plan
    from otomat.billing.tests.conftest import pay

    old = Plan.objects.create(
        product=greeter.product,
        code=f"o{Plan.objects.count()}",
        name="Old",
        currency="PLN",
        price_minor=old_price,
        dunning_policy=policy,
    )
    new = Plan.objects.create(
        product=greeter.product,
        code=f"n{Plan.objects.count()}",
        name="New",
        currency="PLN",
        price_minor=new_price,
        dunning_policy=policy,
    )
    if new_price == old_price:
        return
    # Ordered at a fixed moment: ordered "now" in December, a plan change late in the period
    # would be invoiced in the next year's series, and the next example's order in this year's
    # would then be refused as going back in the numbering.
    # Paid at that moment too: the payment's follow-up starts the period at "now", and a real
    # "now" late in December put the plan change in the next year's series.
    with time_machine.travel(T0, tick=False):
        instance, invoice = order(plan_=old)
        if invoice.status == Invoice.Status.OPEN:
            pay(invoice, at=T0)
    sub = Subscription.objects.get(instance=instance)
    assert T0 - timedelta(days=1) <= sub.current_period_start <= T0 + timedelta(days=1)
    start, end = sub.current_period_start, sub.current_period_end
    moment = start + timedelta(seconds=at)
    credit_before = credit_balance(cast.alice.account, "PLN").amount_minor
    with time_machine.travel(moment, tick=False):
        upgrade = change_plan(sub, new, actor=cast.alice)
    expected_credit = prorated_credit(old.price, start, end, moment)
    expected_charge = prorated_credit(new.price, start, end, moment)
    difference = expected_charge.amount_minor - expected_credit.amount_minor
    credit_after = credit_balance(cast.alice.account, "PLN").amount_minor
    if difference > 0:
        check_invoice(upgrade)
        assert upgrade.total_minor == difference
        assert credit_after == credit_before - upgrade.credit_applied_minor  # credit pays first
    else:
        assert upgrade is None
        assert credit_after - credit_before == -difference
    sub.refresh_from_db()
    assert sub.plan == new and sub.current_period_end == end


def test_numbers_are_gap_free_across_invoices_and_credit_notes(cast):
    account = cast.alice.account
    numbers = []
    for i in range(5):
        invoice, _ = issue_invoice(
            account=account,
            currency="USD",
            lines=[LineSpec("x", Money(100 + i, "USD"))],
            kind=Invoice.Kind.MANUAL,
            due_at=T0,
            now=T0,
            notify=False,
        )
        numbers.append(invoice.number)
    with pytest.raises(BillingError):
        issue_invoice(
            account=account,
            currency="USD",
            lines=[LineSpec("x", Money(-5, "USD"))],
            kind=Invoice.Kind.MANUAL,
            due_at=T0,
            now=T0,
        )
    invoice, _ = issue_invoice(
        account=account,
        currency="USD",
        lines=[LineSpec("x", Money(7, "USD"))],
        kind=Invoice.Kind.MANUAL,
        due_at=T0,
        now=T0,
        notify=False,
    )
    numbers.append(invoice.number)
    assert numbers == [f"INV/2026/{n:06d}" for n in range(1, 7)]  # the refused one took none
    assert InvoiceSeries.objects.get(code="inv").next_number == 7
    assert CreditBalance.objects.count() == 0
