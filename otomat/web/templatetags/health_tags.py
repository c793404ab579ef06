"""``{% load health_tags %}{% instance_health instance %}``: the health card of the instance page,
drawn in ``web`` so that ``instances`` never imports monitoring."""

from django import template

register = template.Library()


@register.inclusion_tag("web/_instance_health.html", takes_context=True)
def instance_health(context, instance):
    from otomat.web.health import health_context

    result = health_context(instance)
    result["request"] = context.get("request")
    return result
