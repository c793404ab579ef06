"""Alert rules, alerts, incidents with their timeline, maintenance windows and silences.

``otomat.monitoring.alerts`` is the only code that writes :class:`Alert`;
``otomat.monitoring.incidents`` the only code that writes :class:`Incident` and its updates.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import Account
from otomat.instances.models import Instance
from otomat.lib.choices import ChoiceLabels


class Severity(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    MAJOR = "major", _("Major")
    MINOR = "minor", _("Minor")


class AlertRule(models.Model):
    """How one kind of check turns observations into alerts. A check without a row uses the
    defaults of ``alerts.DEFAULT_RULES``; the owner's page saves a row when they change one."""

    class GroupBy(models.TextChoices):
        NONE = "none", _("Each subject on its own")
        GROUP = "group", _("By host / product version")

    check_name = models.CharField(_("check"), max_length=40, unique=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    severity = models.CharField(
        _("severity"), max_length=10, choices=Severity.choices, default=Severity.MAJOR
    )
    # Consecutive failing observations before the alert fires (and at least grace_seconds).
    failure_threshold = models.PositiveSmallIntegerField(_("failure threshold"), default=1)
    # Consecutive healthy observations before a firing alert resolves: a flap of one healthy
    # observation does not resolve and re-open (and so does not alert twice).
    recovery_threshold = models.PositiveSmallIntegerField(_("recovery threshold"), default=2)
    # Seconds a failure must last before it fires.
    grace_seconds = models.PositiveIntegerField(_("grace (seconds)"), default=0)
    # Seconds between reminders while still firing; 0 = never remind.
    repeat_seconds = models.PositiveIntegerField(_("repeat interval (seconds)"), default=3600)
    # flap_changes state changes (healthy ↔ failing) within flap_window_seconds = flapping:
    # one digest message instead of one message per change.
    flap_window_seconds = models.PositiveIntegerField(_("flapping window (seconds)"), default=900)
    flap_changes = models.PositiveSmallIntegerField(_("flapping changes"), default=3)
    group_by = models.CharField(
        _("grouping"), max_length=10, choices=GroupBy.choices, default=GroupBy.GROUP
    )
    open_incident = models.BooleanField(_("open an incident"), default=True)
    notify_customers = models.BooleanField(_("tell customers who asked"), default=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["check_name"]

    def __str__(self) -> str:
        return self.check_name


class Alert(ChoiceLabels, models.Model):
    """One tracked (check, subject): its streak counters and, while it fires, the problem.

    The row stays when the problem resolves (state back to ``ok``) so that flapping is seen
    across fire/resolve cycles; ``changes`` keeps the recent state-change instants."""

    class State(models.TextChoices):
        OK = "ok", _("Healthy")
        PENDING = "pending", _("Failing, not yet alerted")
        FIRING = "firing", _("Firing")

    check_name = models.CharField(max_length=40)
    subject = models.CharField(max_length=200)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    group = models.CharField(max_length=200, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    details = models.TextField(blank=True)  # e.g. last log lines; never secrets
    value = models.FloatField(null=True, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fail_count = models.PositiveIntegerField(default=0)  # consecutive failing observations
    ok_count = models.PositiveIntegerField(default=0)  # consecutive healthy observations
    failing_since = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)  # the last flip
    changes = models.JSONField(default=list, blank=True)  # ISO instants of recent flips
    flapping = models.BooleanField(default=False)
    # Why it fires without telling anyone: "maintenance", "silence", "inhibited" or "".
    suppressed = models.CharField(max_length=20, blank=True)
    incident = models.ForeignKey(
        "Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["check_name", "subject"], name="monitoring_alert_subject"
            )
        ]
        indexes = [
            # report(): "every alert not healthy" is read each cycle.
            models.Index(fields=["state"]),
            # ... and those that changed within the longest flapping window.
            models.Index(fields=["changed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.check_name} {self.subject} {self.state}"


class Incident(ChoiceLabels, models.Model):
    """Something is wrong for people: opened from alerts or by hand, with a timeline."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    class Source(models.TextChoices):
        ALERT = "alert", _("Alert")
        MANUAL = "manual", _("Opened by hand")

    title = models.CharField(_("title"), max_length=200)
    severity = models.CharField(
        _("severity"), max_length=10, choices=Severity.choices, default=Severity.MAJOR
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    summary = models.TextField(_("summary"), blank=True)
    # Alerts of one rule and group join the open incident with the same key.
    group_key = models.CharField(max_length=250, blank=True, db_index=True)
    check_name = models.CharField(max_length=40, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_notified_at = models.DateTimeField(null=True, blank=True)
    # The status page shows public incidents by public_title only (never customers' names).
    public = models.BooleanField(_("show on the status page"), default=False)
    public_title = models.CharField(_("public title"), max_length=200, blank=True)
    postmortem = models.TextField(_("postmortem"), blank=True)
    accounts = models.ManyToManyField(Account, blank=True, related_name="incidents")
    instances = models.ManyToManyField(Instance, blank=True, related_name="incidents")
    # Tickets opened for affected customers whose plan has an SLA: their clock runs.
    tickets = models.ManyToManyField("support.Ticket", blank=True, related_name="incidents")

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["status", "opened_at"])]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status != self.Status.RESOLVED


class IncidentUpdate(ChoiceLabels, models.Model):
    """One entry of an incident's timeline."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        UPDATE = "update", _("Update")
        ALERT = "alert", _("Alert")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")
        REOPENED = "reopened", _("Reopened")
        POSTMORTEM = "postmortem", _("Postmortem")
        NOTIFIED = "notified", _("Notified")

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True)  # "system:monitoring"
    public = models.BooleanField(default=False)  # shown on the status page

    class Meta:
        ordering = ["at", "id"]


class Maintenance(models.Model):
    """A planned window: matching alerts are tracked but tell no one and open no incident."""

    class Scope(models.TextChoices):
        ALL = "all", _("Everything")
        GROUP = "group", _("A host or product version")
        INSTANCE = "instance", _("One instance")
        ACCOUNT = "account", _("One customer")

    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices, default=Scope.ALL)
    # A group key ("version:movie@1.0"), an instance id or an account id, per scope.
    scope_value = models.CharField(_("scope value"), max_length=200, blank=True)
    public = models.BooleanField(_("show on the status page"), default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_early_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return self.title


class Silence(models.Model):
    """Mute alerts of one check (or all) whose subject or group starts with ``match``."""

    check_name = models.CharField(_("check"), max_length=40, blank=True)  # blank: every check
    match = models.CharField(_("subject or group"), max_length=200, blank=True)  # blank: all
    reason = models.CharField(_("reason"), max_length=300)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(_("ends at"))
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_early_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"{self.check_name or '*'} {self.match or '*'}"


class NoticeSent(models.Model):
    """One monitoring message sent to one person on one channel: the rate limit counts these."""

    channel = models.CharField(max_length=16)  # "telegram" | "email"
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        indexes = [models.Index(fields=["user", "channel", "at"])]


class AlertPreference(models.Model):
    """A customer's choice to hear about their own instances' problems (default: off)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="monitoring_preference"
    )
    instance_alerts = models.BooleanField(_("tell me when my bots have a problem"), default=False)


from otomat.monitoring.models_uptime import TelegramStatus, UptimeDay, UptimeHour  # noqa: E402, F401
