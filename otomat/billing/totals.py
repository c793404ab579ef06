"""An invoice's figures in the order an accountant reads them, for its page and its PDF.

Each line shows its amount before discount (quantity × unit price); then come the subtotal (Σ
those amounts), each discount with what it is ("Coupon HEMAT20 (−20 %)"), the net (subtotal −
discounts), the tax (added to the net, or included in it), the total, the credit applied and
the amount due. Computed from the stored line figures only, so for every invoice:
``subtotal − discounts == net``, ``net + added tax == total`` and an included tax is shown as
included (the total is then the net). Display only: money moves from the stored totals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from otomat.billing.money import Money


def line_amount(line) -> int:
    """The line's amount before discount, in minor units."""
    return line.quantity * line.unit_price_minor


def tax_included(line) -> bool:
    """Whether the line's tax is included in its price (gross == amount after discount)."""
    return bool(line.tax_minor) and line.gross_minor == line_amount(line) - line.discount_minor


@dataclass(frozen=True)
class TaxRow:
    name: str  # the rate's name as issued ("PPN 11%"), or its percent
    percent: Decimal | None
    included: bool
    amount: Money

    @property
    def label(self) -> str:
        """The name with its rate ("PPN 11%"; "VAT" at 23 % reads "VAT 23%")."""
        rate = f"{self.percent.normalize():f}%" if self.percent is not None else ""
        if not self.name:
            return rate
        return (
            self.name if not rate or rate in self.name.replace(" %", "%") else f"{self.name} {rate}"
        )


@dataclass(frozen=True)
class Totals:
    subtotal: Money
    discounts: list[tuple[str, Money]]  # (label, amount taken off), in line order
    net: Money  # subtotal − discounts; includes the tax when the tax is included
    taxes: list[TaxRow]
    total: Money
    credit_applied: Money
    amount_paid: Money
    amount_due: Money
    lines: list[tuple[object, Money]] = field(default_factory=list)  # (line, amount)

    @property
    def discount(self) -> Money:
        return sum((amount for _, amount in self.discounts), Money.zero(self.subtotal.currency))

    @property
    def any_included(self) -> bool:
        """Whether some tax is inside the net (then the net is named "after discount")."""
        return any(t.included for t in self.taxes)


def invoice_totals(invoice, lines, *, default_discount_label: str = "") -> Totals:
    """The figures of ``invoice`` (its stored ``lines``) in reading order. Discounts with the
    same label are summed; a discount stored without a label (issued before labels) gets
    ``default_discount_label``."""
    cur = invoice.currency
    lines = list(lines)
    discounts: dict[str, int] = {}
    taxes: dict[tuple[str, Decimal | None, bool], int] = defaultdict(int)
    rows = []
    for line in lines:
        rows.append((line, Money(line_amount(line), cur)))
        if line.discount_minor:
            label = line.discount_label or default_discount_label
            discounts[label] = discounts.get(label, 0) + line.discount_minor
        if line.tax_minor:
            key = (line.tax_name, line.tax_rate_percent, tax_included(line))
            taxes[key] += line.tax_minor
    subtotal = sum(line_amount(line) for line in lines)
    discount = sum(discounts.values())
    return Totals(
        subtotal=Money(subtotal, cur),
        discounts=[(label, Money(amount, cur)) for label, amount in discounts.items()],
        net=Money(subtotal - discount, cur),
        taxes=[
            TaxRow(name=name, percent=percent, included=included, amount=Money(amount, cur))
            for (name, percent, included), amount in taxes.items()
        ],
        total=Money(invoice.total_minor, cur),
        credit_applied=Money(invoice.credit_applied_minor, cur),
        amount_paid=Money(invoice.amount_paid_minor, cur),
        amount_due=Money(invoice.amount_due_minor, cur),
        lines=rows,
    )
