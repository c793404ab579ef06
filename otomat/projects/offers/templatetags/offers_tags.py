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
