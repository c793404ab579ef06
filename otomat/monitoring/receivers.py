"""Monitoring listens to the lower apps (they never import it): a recorded failure of an
instance pokes a scan at once, and the owner bot's Acknowledge button comes here."""

from __future__ import annotations

import logging
import threading
import time

from django.db import transaction
from django.db.models.signals import post_save
from django.utils import translation

from otomat.instances.models import Instance, InstanceEvent

log = logging.getLogger("otomat.monitoring")
POKE_MIN_INTERVAL = 1.0  # seconds between two pokes from one process
_last_poke = 0.0
_poke_lock = threading.Lock()


def poke_scan() -> None:
    """Enqueue a scan now (at most once a second per process); the periodic scan is the net."""
    global _last_poke
    with _poke_lock:
        now = time.monotonic()
        if now - _last_poke < POKE_MIN_INTERVAL:
            return
        _last_poke = now
    try:
        from otomat.monitoring.tasks import scan_task

        scan_task.enqueue()
    except Exception:
        log.exception("could not enqueue a monitoring scan")


def instance_event_saved(sender, instance: InstanceEvent, created: bool, **kwargs) -> None:
    """A failure (or a recovery from one) was recorded: scan after the commit."""
    if not created:
        return
    S = Instance.State
    failed = instance.to_state == S.FAILED or instance.from_state == S.FAILED
    backoff = instance.from_state == S.RUNNING and instance.to_state == S.PROVISIONING
    if failed or backoff:
        transaction.on_commit(poke_scan)


def acknowledge_button(user, data: str):
    """The owner bot's Acknowledge button: (answer, new text, new keyboard) or None."""
    from otomat.monitoring import incidents, notices
    from otomat.monitoring.models import Incident

    if not (user.is_staff or user.is_superuser):
        return (translation.gettext("Only staff can acknowledge incidents."), None, None)
    try:
        pk = int(data.removeprefix(notices.ACK_PREFIX))
    except ValueError:
        return None
    incident = Incident.objects.filter(pk=pk).first()
    if incident is None:
        return (translation.gettext("This incident no longer exists."), None, None)
    try:
        incidents.acknowledge(incident, actor=user)
    except incidents.IncidentError:
        return (translation.gettext("It was acknowledged or resolved already."), None, None)
    text = translation.gettext("Acknowledged by %(who)s: %(title)s") % {
        "who": user,
        "title": incident.title,
    }
    return (
        translation.gettext("Acknowledged."),
        text,
        notices._buttons(incident, acknowledge=False),
    )


def connect() -> None:
    from otomat.monitoring import notices
    from otomat.notify.services import register_callback_handler

    post_save.connect(instance_event_saved, sender=InstanceEvent, dispatch_uid="monitoring-poke")
    register_callback_handler(notices.ACK_PREFIX, acknowledge_button)
