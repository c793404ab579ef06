"""Who hears about an incident, on which channel, and how often.

Staff (the owner and every active staff member) hear about every incident by email and, when
they linked it, by the owner's Telegram bot, whose message carries the buttons *Acknowledge*
(a callback the owner-bot poller answers) and *Open* (the incident page). Customers hear about
their own instances only when they asked to (``AlertPreference``, default off), never with log
lines. Each person gets at most ``MONITORING_NOTICES_PER_HOUR`` monitoring messages per channel
an hour; what the limit holds back is written on the incident's timeline.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, pgettext

from otomat.accounts.models import Membership, User
from otomat.monitoring.models import Alert, Incident, IncidentUpdate, NoticeSent

CUSTOMER_KINDS = {"incident_opened", "incident_resolved"}  # no reminders or digests to customers
ACK_PREFIX = "mon:ack:"  # callback data of the Acknowledge button: "mon:ack:<incident id>"


def incident_url(incident: Incident) -> str:
    return settings.BASE_URL + reverse("monitoring:incident", args=[incident.pk])


def _buttons(incident: Incident, *, acknowledge: bool = True) -> dict:
    row = []
    if acknowledge and incident.status == Incident.Status.OPEN:
        row.append({"text": gettext("Acknowledge"), "callback_data": f"{ACK_PREFIX}{incident.pk}"})
    row.append({"text": pgettext("button", "Open"), "url": incident_url(incident)})
    return {"inline_keyboard": [row]}


def _staff() -> list[User]:
    return list(User.objects.filter(Q(is_staff=True) | Q(is_superuser=True), is_active=True))


def _customers(incident: Incident) -> list[User]:
    """Members of the affected accounts who asked to hear about their bots."""
    return list(
        User.objects.filter(
            is_active=True,
            is_staff=False,
            is_superuser=False,
            membership__account__in=incident.accounts.all(),
            monitoring_preference__instance_alerts=True,
        ).distinct()
    )


def _allowed(users: list[User], channel: str, now) -> set[int]:
    """The people still under the hourly limit on ``channel`` (one query)."""
    limit = settings.MONITORING_NOTICES_PER_HOUR
    sent = dict(
        NoticeSent.objects.filter(user__in=users, channel=channel, at__gte=now - timedelta(hours=1))
        .values("user")
        .annotate(n=Count("id"))
        .values_list("user", "n")
    )
    return {u.pk for u in users if sent.get(u.pk, 0) < limit}


def _send(incident: Incident, kind: str, context: dict, *, acknowledge: bool = True) -> int:
    """Queue ``kind`` to staff (and, for their own instances, customers who opted in)."""
    from otomat.notify.models import Notification
    from otomat.notify.services import notify_user

    now = timezone.now()
    staff = _staff()
    customers = []
    own_instances: dict = {}
    if context.get("notify_customers", True) and kind in CUSTOMER_KINDS:
        customers = _customers(incident)
        for inst in incident.instances.all() if customers else ():
            own_instances.setdefault(inst.account_id, inst)
    people = staff + customers
    if not people:
        return 0
    allowed = {
        channel: _allowed(people, channel, now)
        for channel in (Notification.Channel.EMAIL, Notification.Channel.TELEGRAM)
    }
    held = 0
    queued = 0
    staff_ids = {u.pk for u in staff}
    rows = []
    for user in people:
        channels = [c for c, ids in allowed.items() if user.pk in ids]
        held += 2 - len(channels)
        if not channels:
            continue
        if user.pk in staff_ids:
            with translation.override(user.language or "en"):
                markup = _buttons(incident, acknowledge=acknowledge)
            made = notify_user(
                user,
                f"monitoring/{kind}",
                {**context, "incident": incident, "url": incident_url(incident)},
                channels=channels,
                reply_markup=markup,
            )
        else:
            # A customer hears of their own instance only: no other customer, no log lines.
            own = own_instances.get(user.account.pk) if user.account else None
            made = notify_user(
                user,
                f"monitoring/customer_{kind}",
                {
                    "incident": incident,
                    "instance": own,
                    "customer_url": settings.BASE_URL + reverse("instances:detail", args=[own.pk])
                    if own
                    else "",
                },
                channels=channels,
            )
        for notification in made:
            rows.append(NoticeSent(channel=notification.channel, user=user, incident=incident))
        queued += len(made)
    NoticeSent.objects.bulk_create(rows)
    Incident.objects.filter(pk=incident.pk).update(last_notified_at=now)
    if held:
        IncidentUpdate.objects.create(
            incident=incident,
            kind=IncidentUpdate.Kind.NOTIFIED,
            text=f"{held} message(s) held back by the hourly limit per person and channel.",
            actor_label="system:monitoring",
        )
    return queued


def _context(incident: Incident, alert: Alert | None) -> dict:
    from otomat.instances.models import Instance

    instance = None
    if alert is not None and alert.instance_id:
        instance = (
            Instance.objects.filter(pk=alert.instance_id)
            .select_related("account", "version__product")
            .first()
        )
    count = incident.alerts.exclude(state=Alert.State.OK).count() if incident.pk else 0
    return {
        "alert": alert,
        "instance": instance,
        "bot_label": _bot_label(instance),
        "customer": instance.account if instance else None,
        "log_lines": (alert.details if alert else "")[-1500:],
        "affected": max(count, 1),
        "affected_names": (
            list(incident.instances.order_by("name").values_list("name", flat=True)[:10])
            if count > 1
            else []
        ),
        "notify_customers": getattr(getattr(alert, "_rule", None), "notify_customers", True),
    }


def _bot_label(instance) -> str:
    if instance is None:
        return ""
    from otomat.monitoring.models_uptime import TelegramStatus

    # The @username getMe last gave (the Telegram check keeps it), else the instance's name.
    username = (
        TelegramStatus.objects.filter(instance_id=instance.pk)
        .values_list("username", flat=True)
        .first()
        or ""
    )
    if username:
        return f"@{username.lstrip('@')} ({instance.name})"
    return f"{instance.name} (bot {instance.bot_id})" if instance.bot_id else instance.name


def incident_opened(incident: Incident, alert: Alert | None = None) -> int:
    return _send(incident, "incident_opened", _context(incident, alert))


def flapping(incident: Incident, alert: Alert) -> int:
    ctx = _context(incident, alert)
    ctx["changes"] = len(alert.changes or [])
    ctx["window_minutes"] = max(alert._rule.flap_window_seconds // 60, 1)
    return _send(incident, "flapping", ctx)


def reminder(incident: Incident, alert: Alert) -> int:
    return _send(incident, "reminder", _context(incident, alert))


def incident_resolved(incident: Incident) -> int:
    """Those told about the incident hear it is over (nobody, if nobody was told)."""
    if incident.last_notified_at is None and incident.source == Incident.Source.ALERT:
        return 0
    alert = incident.alerts.order_by("-fired_at").first()
    return _send(incident, "incident_resolved", _context(incident, alert), acknowledge=False)


def customers_of(account_ids) -> list[User]:
    """The members of these accounts (for tests and the preference page)."""
    return [m.user for m in Membership.objects.filter(account_id__in=account_ids)]
