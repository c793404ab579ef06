"""Outgoing webhooks: URLs that owners (every event) and customers (events of their own
objects) subscribe to, and every delivery with its attempts. Only ``otomat.hooks.services`` and
``otomat.hooks.delivery`` change these rows."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import Account
from otomat.instances.crypto import EncryptedJSONField
from otomat.lib.choices import ChoiceLabels

# Event types a URL can subscribe to, with who may receive them: "all" (owner and the customer
# whose object it is) or "staff" (the owner's endpoints only).
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "instance.state_changed": (_("An instance changed state"), "all"),
    "invoice.issued": (_("An invoice was issued"), "all"),
    "invoice.paid": (_("An invoice was paid"), "all"),
    "ticket.opened": (_("A support ticket was opened"), "all"),
    "ticket.status_changed": (_("A support ticket changed status"), "all"),
    "incident.opened": (_("An incident was opened"), "all"),
    "incident.resolved": (_("An incident was resolved"), "all"),
    "lead.created": (_("A lead arrived"), "staff"),
}
PING = "ping"  # the "send test" event; every endpoint receives it when asked


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Endpoint(models.Model):
    """A URL that receives events. ``account`` empty: the owner's (every event of the
    platform); set: that customer's (only events about its own objects)."""

    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(_("events"), default=list)  # event type names
    # {"secret": "whsec_..."}: encrypted at rest like every other secret.
    signing = EncryptedJSONField(default=dict)
    is_active = models.BooleanField(_("active"), default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "is_active"])]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return (self.signing or {}).get("secret", "")


class Delivery(ChoiceLabels, models.Model):
    """One event for one endpoint, with its attempts; retried with backoff until delivered or
    given up. ``event_id`` is the same for every endpoint that receives the event, so a
    receiver can drop a delivery it has already seen."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        DELIVERED = "delivered", _("Delivered")
        RETRYING = "retrying", _("Failed, will retry")
        GAVE_UP = "gave_up", _("Gave up")

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_response = models.TextField(blank=True)  # the first KB of the answer
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="one_delivery_per_event")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint.url} ({self.status})"
