"""Instances: a product version + configuration + state, owned by a customer account.

The state machine (``Instance.State`` and ``TRANSITIONS``) is the single source of truth for what
may happen to an instance; ``otomat.instances.services`` is the only code that changes ``state``
and it records every transition as an :class:`InstanceEvent` with its cause.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import Account
from otomat.catalog.models import ProductVersion
from otomat.instances.crypto import EncryptedJSONField
from otomat.lib.choices import ChoiceLabels

# What the runner acts on: a write to any of these marks the row changed (``changed_at``), and the
# runner's incremental reconcile reads only rows changed since its last look.
RUNNER_FIELDS = frozenset(
    {"desired", "state", "generation", "version", "version_id", "config", "secrets", "kind"}
)


class InstanceQuerySet(models.QuerySet):
    def update(self, **kwargs):
        """``QuerySet.update`` that marks rows changed for the runner when it writes one of
        ``RUNNER_FIELDS`` (observations — pid, heartbeats, counters — do not)."""
        if "changed_at" not in kwargs and not RUNNER_FIELDS.isdisjoint(kwargs):
            kwargs["changed_at"] = timezone.now()
        return super().update(**kwargs)


class Instance(ChoiceLabels, models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Pending")  # created, waiting for payment / provisioning
        PROVISIONING = "provisioning", _("Provisioning")  # asked to run, not yet answering
        RUNNING = "running", _("Running")
        STOPPED = "stopped", _("Stopped")
        SUSPENDED = "suspended", _("Suspended")  # stopped by billing (unpaid) or staff
        FAILED = "failed", _("Failed")  # crash loop or could not start
        TERMINATED = "terminated", _("Terminated")  # removed; data kept for a grace period

    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Customer instance")
        SANDBOX = "sandbox", _("Sandbox")  # staff's copy of a customer's instance, on the emulator
        TRIAL = "trial", _("Trial")  # a visitor's short "try it" from the catalog, on the emulator

    class Desired(models.TextChoices):
        RUNNING = "running", _("Running")
        STOPPED = "stopped", _("Stopped")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="instances")
    version = models.ForeignKey(ProductVersion, on_delete=models.PROTECT, related_name="instances")
    name = models.CharField(_("name"), max_length=100)
    config = models.JSONField(default=dict)  # public part of the configuration
    secrets = EncryptedJSONField(default=dict)  # secret fields, Fernet-encrypted at rest
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CUSTOMER)
    # The Telegram bot's numeric id (the part of its token before ":"; not a secret). A bot
    # can serve one live instance: Telegram gives its updates to one poller only.
    bot_id = models.CharField(max_length=32, blank=True, db_index=True)
    # The same id while the instance is live, NULL once it is terminated (or when it has no
    # bot): the unique constraint "instances_one_live_instance_per_bot" makes "one live instance
    # per bot" a rule of the database, so two concurrent installs of one bot cannot both pass.
    # Only services write it (set with bot_id, cleared by the transition to terminated).
    live_bot_id = models.CharField(max_length=32, null=True, blank=True, editable=False)
    # A sandbox's original; never the other way round (a sandbox sees no customer secret).
    sandbox_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="sandboxes"
    )
    # Sandboxes and trials are removed by the scheduler at this time.
    expires_at = models.DateTimeField(null=True, blank=True)
    # The emulator bot a sandbox or trial talks through (its web chat is linked from the page).
    emulator_bot = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # What the runner should make true. Only services change it; the runner only reads it.
    desired = models.CharField(max_length=16, choices=Desired.choices, default=Desired.STOPPED)
    # Bumped whenever what runs must be replaced (config change, upgrade, restart request):
    # the runner restarts a process whose generation is older.
    generation = models.PositiveIntegerField(default=1)

    # Observed by the runner (never set by people).
    pid = models.IntegerField(null=True, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    last_exit_code = models.IntegerField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    updates_handled = models.PositiveIntegerField(default=0)  # since the process started
    # When the bot last finished handling an update (both runtimes report it in heartbeats).
    last_update_at = models.DateTimeField(null=True, blank=True)
    errors = models.PositiveIntegerField(default=0)
    status_message = models.TextField(blank=True)  # e.g. the last log lines on failure

    # Who suspended it ("billing" or "staff") and why, shown on the customer's page. Billing only
    # lifts its own suspensions: a staff suspension (abuse) stays until staff lift it.
    suspension_source = models.CharField(max_length=16, blank=True)
    suspension_reason = models.CharField(max_length=300, blank=True)
    # What the runner should do once the suspension ends (a stopped bot stays stopped).
    desired_before_suspension = models.CharField(max_length=16, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state_changed_at = models.DateTimeField(default=timezone.now)
    terminated_at = models.DateTimeField(null=True, blank=True)
    data_deleted_at = models.DateTimeField(null=True, blank=True)
    # When one of RUNNER_FIELDS last changed (set by save() and InstanceQuerySet.update()): the
    # runner reads rows changed since its previous look through this index (docs/runtime.md).
    changed_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = InstanceQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The runner's reconcile query: everything not terminated, by desired state.
            models.Index(fields=["state", "desired"]),
            # Staff "All instances" (newest first, paginated) and a customer's "My instances".
            models.Index(fields=["-created_at", "-id"], name="instances_created"),
            models.Index(fields=["account", "-created_at"], name="instances_acct_created"),
            # The runner's incremental reconcile: rows changed since its previous look.
            models.Index(fields=["changed_at"], name="instances_changed"),
        ]
        constraints = [
            # A plain unique constraint on a nullable column rather than a partial unique index
            # (UNIQUE (bot_id) WHERE state <> 'terminated'): MariaDB has no partial indexes and
            # Django silently skips a conditional constraint there, while SQLite, PostgreSQL and
            # MariaDB all allow any number of NULLs in a unique column. One rule, three
            # databases; it also serves bot_in_use()'s lookup.
            models.UniqueConstraint(
                fields=["live_bot_id"], name="instances_one_live_instance_per_bot"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or not RUNNER_FIELDS.isdisjoint(update_fields):
            self.changed_at = timezone.now()
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "changed_at"}
        super().save(*args, **kwargs)

    @property
    def product(self):
        return self.version.product

    @property
    def on_emulator(self) -> bool:
        """Sandboxes and trials always talk to the built-in emulator, never to Telegram."""
        return self.kind != self.Kind.CUSTOMER

    @property
    def is_active(self) -> bool:
        return self.state != self.State.TERMINATED

    @property
    def data_dir(self):
        from pathlib import Path

        return Path(settings.INSTANCES_DIR) / str(self.id)

    @property
    def log_path(self):
        from pathlib import Path

        return Path(settings.LOGS_DIR) / "instances" / f"{self.id}.log"

    def full_config(self) -> dict:
        """Public config with the decrypted secrets merged back in. Never render or log it."""
        from otomat.catalog.schema_form import merge_secrets

        return merge_secrets(self.config, self.secrets)


S = Instance.State

# from-state → allowed to-states. Anything else is refused by services.transition().
TRANSITIONS: dict[str, set[str]] = {
    S.PENDING: {S.PROVISIONING, S.TERMINATED},
    S.PROVISIONING: {S.RUNNING, S.STOPPED, S.FAILED, S.SUSPENDED, S.TERMINATED},
    S.RUNNING: {S.PROVISIONING, S.STOPPED, S.FAILED, S.SUSPENDED, S.TERMINATED},
    S.STOPPED: {S.PROVISIONING, S.SUSPENDED, S.TERMINATED},
    S.FAILED: {S.PROVISIONING, S.STOPPED, S.SUSPENDED, S.TERMINATED},
    S.SUSPENDED: {S.PROVISIONING, S.STOPPED, S.TERMINATED},
    S.TERMINATED: set(),
}


class InstanceEvent(models.Model):
    """One recorded state transition (or notable runtime event) with its cause."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    cause = models.CharField(max_length=300)  # e.g. "customer stopped it", "process exited (-9)"
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True)  # "system:runner" etc.

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_state}→{self.to_state}: {self.cause}"
