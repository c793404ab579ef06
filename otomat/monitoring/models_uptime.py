"""Instance health history: uptime per instance-hour and per day, and each bot's last check at
Telegram (imported by ``otomat.monitoring.models``).

Raw observations are never kept: ``otomat.monitoring.uptime`` turns the instances' recorded
transitions into one :class:`UptimeHour` row per instance and hour (upserted in bulk by the scan),
sums complete days into :class:`UptimeDay` and prunes both (``OTOMAT_UPTIME_HOURLY_DAYS``,
``OTOMAT_UPTIME_DAILY_DAYS``). ``otomat.monitoring.checks`` is the only code that writes
:class:`TelegramStatus`.
"""

from __future__ import annotations

from django.db import models

from otomat.instances.models import Instance


class Availability(models.TextChoices):
    """How a stretch of an instance's time counts for its uptime."""

    UP = "up", "up"  # running
    DOWN = "down", "down"  # failed, or restarting after a crash
    # Not counted either way: stopped by the customer, suspended (billing or staff), pending,
    # starting for the first time, terminated, or inside a maintenance window.
    EXCLUDED = "excluded", "excluded"


class UptimeHour(models.Model):
    """One instance's time in one UTC hour, in seconds (up + down + excluded = 3600 once the
    instance existed for the whole hour). Written once per instance and hour, idempotently."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()  # the hour's start (UTC, minute 0)
    up_seconds = models.PositiveIntegerField(default=0)
    down_seconds = models.PositiveIntegerField(default=0)
    excluded_seconds = models.PositiveIntegerField(default=0)
    # How the hour ended: where the next hour starts without reading older events.
    end = models.CharField(max_length=10, choices=Availability.choices)
    # Updates handled and handler errors during the hour (from the runtime's counters, which
    # restart from 0 with the process: a counter lower than the last one starts a new run).
    updates = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    # The counters as read at the hour's aggregation (the base of the next hour's deltas).
    updates_total = models.PositiveIntegerField(default=0)
    errors_total = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # The upsert's key: the scan writes each instance-hour once (again = the same row).
            models.UniqueConstraint(fields=["instance", "hour"], name="monitoring_uptime_hour_key")
        ]
        # The hour's bulk read of the previous hour, the day roll-up and the pruning.
        indexes = [models.Index(fields=["hour"], name="monitoring_uptimehour_hour")]


class UptimeDay(models.Model):
    """The sum of an instance's hours of one UTC day (kept for ``OTOMAT_UPTIME_DAILY_DAYS``)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    up_seconds = models.PositiveIntegerField(default=0)
    down_seconds = models.PositiveIntegerField(default=0)
    excluded_seconds = models.PositiveIntegerField(default=0)
    updates = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "day"], name="monitoring_uptime_day_key")
        ]
        indexes = [models.Index(fields=["day"], name="monitoring_uptimeday_day")]


class TelegramStatus(models.Model):
    """What Telegram (the configured Bot API server) last said about an instance's bot:
    ``getMe`` (a revoked token answers 401) and, in webhook mode, ``getWebhookInfo``."""

    instance = models.OneToOneField(
        Instance, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    checked_at = models.DateTimeField(db_index=True)  # the due-for-a-check query orders by it
    ok = models.BooleanField(default=True)
    summary = models.CharField(max_length=300, blank=True)  # never holds the token
    username = models.CharField(max_length=64, blank=True)  # the bot's @username from getMe
    pending_updates = models.PositiveIntegerField(null=True, blank=True)  # webhook mode only
    last_error = models.CharField(max_length=300, blank=True)  # Telegram's last delivery error
    last_error_at = models.DateTimeField(null=True, blank=True)
