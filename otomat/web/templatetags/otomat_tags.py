from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def money(value, locale=None):
    """Format a Money in the active language (or the given one): ``{{ invoice.total|money }}``."""
    from django.utils.translation import get_language

    from otomat.billing.money import Money

    if not isinstance(value, Money):
        return ""
    return value.format(locale or get_language() or "en")


@register.simple_tag
def money_minor(amount_minor, currency):
    """``{% money_minor line.net_minor invoice.currency %}``: minor units formatted."""
    from otomat.billing.money import Money

    return money(Money(int(amount_minor), currency))


@register.filter
def invoice_money(invoice, field):
    """``{{ invoice|invoice_money:"tax" }}``: one of an invoice's stored amounts, formatted."""
    return money(invoice.money(field))


@register.filter
def neg(value):
    return -value
