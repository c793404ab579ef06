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


@register.simple_tag
def bot_handle(instance):
    """``{% bot_handle instance as bot %}``: ``{"username": ..., "chat_url": ...}`` for the title
    of the instance page (empty strings while the bot's @username is not known yet)."""
    from otomat.web.health import bot_username, chat_link, telegram_status

    username = bot_username(instance, telegram_status(instance))
    return {"username": username, "chat_url": chat_link(instance, username)}
