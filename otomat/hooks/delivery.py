"""Sending events: one :class:`Delivery` per subscribed endpoint, signed, retried with backoff.

The signature (docs/webhooks.md): header ``Otomat-Signature: t=<unix seconds>,v1=<hex>`` where
``<hex>`` is HMAC-SHA256 with the endpoint's secret over ``"<t>." + body``; ``t`` is the time of
the attempt, so a receiver can refuse old (replayed) requests. ``Otomat-Event`` names the event
type and ``Otomat-Delivery`` the event id (the same for every retry: a receiver drops what it
has seen). The body is the JSON payload, UTF-8, keys sorted.

An attempt succeeds on any 2xx answer within ``TIMEOUT`` seconds. Anything else (another
status, a redirect, a timeout, an address refused as private) is retried after ``BACKOFF``;
after the last one the delivery gives up. ``410 Gone`` disables the endpoint at once, and
``DISABLE_AFTER`` deliveries given up in a row disable it too; its owner re-enables it.

Two workers never attempt one delivery at the same time: an attempt first claims the row with
a conditional update (its next attempt time moved past the attempt's own timeout), and only
the worker whose update matched goes on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from otomat.hooks.models import EVENT_TYPES, PING, Delivery, Endpoint
from otomat.lib import http

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one attempt
MAX_RESPONSE_BYTES = 64 * 1024  # read at most this much of an answer
KEPT_RESPONSE_CHARS = 1000  # and keep this much of it in the log
# The wait before attempt 2, 3, ... (the first is at once): about a day in all.
BACKOFF = [
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
]
MAX_ATTEMPTS = len(BACKOFF) + 1
DISABLE_AFTER = 3  # deliveries given up in a row
CLAIM = timedelta(seconds=TIMEOUT * 3)


def body_of(delivery: Delivery) -> bytes:
    return json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _endpoints_for(event_type: str, account_ids: list[int]):
    audience = EVENT_TYPES.get(event_type, ("", "staff"))[1]
    scope = Q(account__isnull=True)
    if audience == "all" and account_ids:
        scope |= Q(account_id__in=account_ids)
    return [
        endpoint
        for endpoint in Endpoint.objects.filter(scope, is_active=True)
        if event_type in endpoint.events
    ]


def payload(event_type: str, data: dict, *, event_id: uuid.UUID, at: datetime) -> dict:
    return {
        "id": str(event_id),
        "type": event_type,
        "created_at": at.isoformat(timespec="seconds"),
        "data": data,
    }


def dispatch(event_type: str, data: dict, *, account_ids: list[int]) -> list[Delivery]:
    """Record the event for every active endpoint subscribed to it (the owner's, and those of
    the accounts it concerns) and queue the first attempts."""
    endpoints = _endpoints_for(event_type, account_ids)
    if not endpoints:
        return []
    now = timezone.now()
    event_id = uuid.uuid4()
    body = payload(event_type, data, event_id=event_id, at=now)
    rows = Delivery.objects.bulk_create(
        [
            Delivery(
                endpoint=endpoint,
                event_id=event_id,
                event_type=event_type,
                payload=body,
                next_attempt_at=now,
            )
            for endpoint in endpoints
        ]
    )
    _queue([row.pk for row in rows if row.pk] or _pks(event_id))
    return rows


def _pks(event_id: uuid.UUID) -> list[int]:
    # bulk_create does not return primary keys on every database (MariaDB).
    return list(Delivery.objects.filter(event_id=event_id).values_list("pk", flat=True))


def _queue(pks: list[int]) -> None:
    from otomat.hooks.tasks import deliver_task

    for pk in pks:
        deliver_task.enqueue(pk)


def ping(endpoint: Endpoint) -> Delivery:
    """The "send test" event for one endpoint, attempted at once (not queued)."""
    now = timezone.now()
    event_id = uuid.uuid4()
    data = {"message": "A test event from Otomat.", "endpoint": endpoint.pk}
    row = Delivery.objects.create(
        endpoint=endpoint,
        event_id=event_id,
        event_type=PING,
        payload=payload(PING, data, event_id=event_id, at=now),
        next_attempt_at=now,
    )
    attempt(row.pk, now=now, force=True)
    row.refresh_from_db()
    return row


def redeliver(delivery: Delivery) -> Delivery:
    """Send a past delivery again, as a new attempt now (same event id)."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now()
    )
    attempt(delivery.pk, force=True)
    delivery.refresh_from_db()
    return delivery


def _claim(pk: int, now: datetime) -> bool:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return bool(
        Delivery.objects.filter(
            due, pk=pk, status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING]
        ).update(next_attempt_at=now + CLAIM)
    )


def attempt(pk: int, *, now: datetime | None = None, force: bool = False) -> bool:
    """One attempt of delivery ``pk`` if it is due and no other worker holds it; returns
    whether the receiver took it. ``force``: an endpoint disabled meanwhile is still tried (the
    owner pressed "send test")."""
    now = now or timezone.now()
    if not _claim(pk, now):
        return False
    delivery = Delivery.objects.select_related("endpoint").get(pk=pk)
    endpoint = delivery.endpoint
    if not endpoint.is_active and not force:
        _finish(delivery, now, ok=False, error="The endpoint is disabled.", give_up=True)
        return False
    body = body_of(delivery)
    stamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "Otomat-Event": delivery.event_type,
        "Otomat-Delivery": str(delivery.event_id),
        "Otomat-Signature": signature(endpoint.secret, stamp, body),
    }
    started = time.monotonic()
    status, error, answer = None, "", ""
    try:
        response = http.fetch(
            endpoint.url,
            method="POST",
            content=body,
            headers=headers,
            max_bytes=MAX_RESPONSE_BYTES,
            timeout=TIMEOUT,
            max_redirects=0,
        )
        status = response.status
        answer = response.text()[:KEPT_RESPONSE_CHARS]
        if 300 <= status < 400:
            error = "The receiver answered with a redirect; webhooks are not redirected."
        elif not response.ok:
            error = f"The receiver answered {status}."
    except http.TooLarge:
        error = "The receiver's answer was too large."
    except http.FetchError as exc:
        error = str(exc)[:300]
        if "redirects" in error:
            error = "The receiver answered with a redirect; webhooks are not redirected."
    delivery.last_duration_ms = int((time.monotonic() - started) * 1000)
    delivery.last_status_code = status
    delivery.last_response = answer
    ok = not error
    _finish(delivery, now, ok=ok, error=error, give_up=status == 410)
    if status == 410:
        _disable(endpoint, "The receiver answered 410 Gone.")
    return ok


def _finish(delivery: Delivery, now: datetime, *, ok: bool, error: str, give_up: bool) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_error = error
    endpoint = delivery.endpoint
    if ok:
        delivery.status = Delivery.Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        if endpoint.consecutive_failures:
            Endpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
    elif give_up or delivery.attempts >= MAX_ATTEMPTS or delivery.event_type == PING:
        delivery.status = Delivery.Status.GAVE_UP
        delivery.next_attempt_at = None
        if delivery.event_type != PING:
            endpoint.consecutive_failures += 1
            Endpoint.objects.filter(pk=endpoint.pk).update(
                consecutive_failures=endpoint.consecutive_failures
            )
            if endpoint.is_active and endpoint.consecutive_failures >= DISABLE_AFTER:
                _disable(endpoint, f"{DISABLE_AFTER} deliveries in a row failed.")
    else:
        delivery.status = Delivery.Status.RETRYING
        delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
    delivery.save(
        update_fields=[
            "attempts",
            "last_attempt_at",
            "last_error",
            "status",
            "delivered_at",
            "next_attempt_at",
            "last_status_code",
            "last_response",
            "last_duration_ms",
        ]
    )
    if not ok:
        log.info("webhook %s to %s: %s", delivery.event_type, endpoint.url, error)


def _disable(endpoint: Endpoint, reason: str) -> None:
    from otomat.accounts.services import record_audit

    updated = Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_reason=reason
    )
    if updated:
        endpoint.is_active, endpoint.disabled_reason = False, reason
        record_audit(
            "webhook.disabled",
            actor_label="system:webhooks",
            account=endpoint.account,
            target=endpoint,
            data={"reason": reason},
        )


def due(now: datetime | None = None, *, limit: int = 500) -> list[int]:
    """Deliveries whose next attempt is due (a lost first attempt, every retry)."""
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(
            status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING], next_attempt_at__lte=now
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
