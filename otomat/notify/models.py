"""Outgoing notifications (an outbox) and people's Telegram links to the owner's bot.

A ``Notification`` row is written in the same transaction as the business change it reports
(an invoice issued, an instance suspended), so a crash never loses one and a rollback never
sends one; ``otomat.notify.services.deliver`` sends it afterwards and retries with backoff.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        TELEGRAM = "telegram", _("Telegram")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=60)  # template name, e.g. "billing/invoice_issued"
    # Rendered when queued, or — for notices queued in bulk — when delivered, from ``context``
    # (references such as {"invoice": 42} that the kind's loader turns back into objects).
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True)
    # Extra email headers (Message-ID, In-Reply-To, References for support threads, Reply-To).
    headers = models.JSONField(default=dict, blank=True)
    # One notification per key and channel: "billing:reminder:<invoice>:<day>:email"; a second
    # attempt (a retried run, a second scheduler) hits the unique constraint and sends nothing.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    gave_up = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # deliver_pending(): WHERE sent_at IS NULL AND NOT gave_up AND next_attempt_at <= now
            models.Index(fields=["sent_at", "gave_up", "next_attempt_at"], name="notify_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.user}: {self.subject}"


class TelegramLink(models.Model):
    """The chat in which a person talks to the owner's bot; notices go there."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="telegram_link"
    )
    chat_id = models.BigIntegerField()
    username = models.CharField(max_length=64, blank=True)
    linked_at = models.DateTimeField(default=timezone.now)


class TelegramLinkCode(models.Model):
    """A one-time code in the bot's /start link that ties a chat to a person."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(default=timezone.now)


class BotCursor(models.Model):
    """The owner bot's getUpdates offset (one row per bot username)."""

    bot = models.CharField(max_length=64, primary_key=True)
    offset = models.BigIntegerField(default=0)


class OutboxMessage(models.Model):
    """A mail that was not sent anywhere: with no mail server configured (the demo, ``otomat
    run``), ``otomat.notify.outbox.OutboxBackend`` keeps every message here, for staff to read
    on the outbox page."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    from_email = models.CharField(max_length=300, blank=True)
    to = models.JSONField(default=list, blank=True)  # To, then Cc and Bcc in their own fields
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=500, blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)  # shown only in a sandboxed frame
    headers = models.JSONField(default=dict, blank=True)  # the extra headers given
    attachments = models.JSONField(default=list, blank=True)  # [{filename, content_type, size}]
    raw = models.BinaryField()  # the whole MIME message, for the .eml download

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.subject or "(no subject)"
