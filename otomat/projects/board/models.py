"""The delivery board of a custom project: the project (from an accepted offer or by hand), its
milestones, its cards — each saying whose move it is and since when, which is blocked and why —
the comments both sides write on them, the time staff spend, the revision rounds counted against
the offer's quota, and the production releases the client is told about.

Whose move is derived from a card's status (``WHOSE_MOVE``) and kept as fields, so the weekly
workshop view is one indexed query, not a replay of every card's history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import CURRENCIES, Account
from otomat.lib.choices import ChoiceLabels


class Side(models.TextChoices):
    """Who is to act next on a card ("" once it is released: nobody)."""

    CLIENT = "client", _("the client")
    US = "us", _("us")


class Project(ChoiceLabels, models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("In progress")
        ON_HOLD = "on_hold", _("On hold")
        RELEASED = "released", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="board_projects")
    # One project per accepted offer (starting it again returns the same project).
    offer = models.OneToOneField(
        "offers.Offer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="board_project",
    )
    estimate = models.ForeignKey(
        "projects.Estimate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    currency = models.CharField(max_length=3, choices=CURRENCIES, default="PLN")
    # Copied from the offer's ``revision_rounds`` when the project starts from one; staff may
    # change it by hand. ``revisions_used`` counts the rounds within the quota (F() updates).
    revision_quota = models.PositiveSmallIntegerField(_("revision rounds included"), default=0)
    revisions_used = models.PositiveSmallIntegerField(default=0)
    # The estimate's ranges (from the offer, else its estimate); hours are what time entries
    # are compared with ("32 h of 40–60 h").
    weeks_min = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    weeks_max = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    hours_min = models.DecimalField(
        _("estimated hours (from)"), max_digits=8, decimal_places=1, null=True, blank=True
    )
    hours_max = models.DecimalField(
        _("estimated hours (to)"), max_digits=8, decimal_places=1, null=True, blank=True
    )
    # The next production release's date (the latest scheduled one), shown to the client.
    release_date = models.DateField(null=True, blank=True)
    # The draft catalog product made from this project once it is finished (scope 6).
    product = models.ForeignKey(
        "catalog.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return self.title

    @property
    def revisions_left(self) -> int:
        return max(self.revision_quota - self.revisions_used, 0)


class Milestone(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="milestones")
    title = models.CharField(_("title"), max_length=200)
    position = models.PositiveSmallIntegerField(default=0)
    amount_minor = models.PositiveBigIntegerField(default=0)  # in the project's currency
    due_date = models.DateField(null=True, blank=True)
    # The offer milestone it was copied from (a plain id: the offer may be revised later).
    offer_milestone_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.title


class Card(ChoiceLabels, models.Model):
    class Status(models.TextChoices):
        TODO = "todo", _("To do")
        IN_PROGRESS = "in_progress", _("In progress")
        WAITING_CLIENT = "waiting_client", _("Waiting on the client")
        WAITING_US = "waiting_us", _("Waiting on us")
        BLOCKED = "blocked", _("Blocked")
        STAGING = "staging", _("On staging")
        ACCEPTED = "accepted", _("Accepted")
        RELEASED = "released", _("Released")

    class BlockedReason(models.TextChoices):
        TECHNICAL = "technical", _("Technical")
        COMMUNICATION = "communication", _("Communication")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="cards")
    milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.SET_NULL, related_name="cards"
    )
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TODO)
    # Set only while blocked (services.set_status refuses "blocked" without one).
    blocked_reason = models.CharField(max_length=16, choices=BlockedReason.choices, blank=True)
    blocked_note = models.CharField(max_length=300, blank=True)
    # Derived from the status by services.set_status — never written elsewhere. ``move_since``
    # changes only when the side changes (to do → in progress stays "us since Monday").
    whose_move = models.CharField(max_length=8, choices=Side.choices, blank=True, default="us")
    move_since = models.DateTimeField(default=timezone.now)
    status_since = models.DateTimeField(default=timezone.now)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    staging_url = models.URLField(_("staging link"), max_length=500, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A change the client asked for after acceptance (it counted a revision round).
    is_change_request = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]
        indexes = [
            # The workshop view: per account, open cards by whose move and since when.
            models.Index(fields=["project", "status"]),
            models.Index(fields=["whose_move", "move_since"]),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def reference(self) -> str:
        """ "C-42": how email subjects ("[C-42]") and Telegram messages name the card."""
        return f"C-{self.pk}"


# Whose move each status means. Blocked depends on why: a technical block is ours to solve, a
# communication block waits on the client's answer.
WHOSE_MOVE = {
    Card.Status.TODO: Side.US,
    Card.Status.IN_PROGRESS: Side.US,
    Card.Status.WAITING_CLIENT: Side.CLIENT,
    Card.Status.WAITING_US: Side.US,
    Card.Status.STAGING: Side.CLIENT,  # the client checks it and accepts
    Card.Status.ACCEPTED: Side.US,  # we schedule the release
    Card.Status.RELEASED: "",
}
BLOCKED_MOVE = {
    Card.BlockedReason.TECHNICAL: Side.US,
    Card.BlockedReason.COMMUNICATION: Side.CLIENT,
}
OPEN_STATUSES = [s for s in Card.Status.values if s != Card.Status.RELEASED]


class CardEvent(models.Model):
    """A comment, an internal note (staff only) or a change on a card, in order."""

    class Kind(models.TextChoices):
        COMMENT = "comment", _("Comment")
        NOTE = "note", _("Internal note")
        STATUS = "status", _("Status changed")
        SYSTEM = "system", _("System")

    class Channel(models.TextChoices):
        WEB = "web", _("Web")
        EMAIL = "email", _("Email")
        TELEGRAM = "telegram", _("Telegram")
        API = "api", _("API")

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    side = models.CharField(max_length=8, choices=Side.choices, blank=True)
    body = models.TextField(blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    @property
    def internal(self) -> bool:
        return self.kind == self.Kind.NOTE

    @property
    def to_status_label(self) -> str:
        return Card.Status(self.to_status).label if self.to_status in Card.Status.values else ""


class TimeEntry(models.Model):
    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="time_entries")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    minutes = models.PositiveIntegerField()
    date = models.DateField()
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-date", "-pk"]


class RevisionRound(models.Model):
    """One change request of the client after acceptance. Within the quota it uses a round
    ("2 of 3 used"); past it (``within_quota`` false) the owner answers with a paid quote on
    the support ticket opened for it (``ticket``)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="revision_rounds")
    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="revision_rounds")
    number = models.PositiveSmallIntegerField()  # 1, 2, 3 … over the project, paid ones included
    within_quota = models.BooleanField()
    request = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket = models.ForeignKey(
        "support.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    counted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="board_revision_number")
        ]


class Release(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        RELEASED = "released", _("Released")
        CANCELLED = "cancelled", _("Cancelled")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="releases")
    scheduled_for = models.DateField(_("release date"))
    note = models.CharField(_("note for the client"), max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    cards = models.ManyToManyField(Card, blank=True, related_name="releases")
    # Claimed by conditional updates (tasks.remind_releases): each notice goes out once.
    notified_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["scheduled_for", "pk"]
        indexes = [models.Index(fields=["status", "scheduled_for"])]
