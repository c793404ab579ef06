from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def weeks(value) -> str:
    """A number of weeks without a trailing ".0" ("2", "2.5")."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    text = format(number.normalize(), "f")
    return text


@register.filter
def minor(amount_minor, currency) -> str:
    """``{{ line.unit_price_minor|minor:offer.currency }}``: minor units formatted in the
    active language ("18 000,00 zł" in Polish)."""
    from django.utils.translation import get_language

    from otomat.billing.money import Money

    if amount_minor is None or amount_minor == "":
        return ""
    return Money(int(amount_minor), currency).format(get_language() or "en")
