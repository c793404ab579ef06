from django import template

from otomat.notify.outbox import in_use

register = template.Library()


@register.simple_tag
def outbox_in_use() -> bool:
    """Whether mail goes to the outbox page (the staff menu then links it)."""
    return in_use()
