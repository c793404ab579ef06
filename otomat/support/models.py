"""Support within limits: departments with business hours, SLA policies, what each plan
entitles to, tickets and their messages, paid quotes, product bugs, the knowledge base and
announcements.

Only the service modules (``tickets``, ``sla``, ``entitlements``, ``quotes``, ``bugs``, ``kb``,
``announcements``) change these rows; every change a person would ask "who did that and why"
about is a ``TicketEvent``.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import CURRENCIES, Account
from otomat.billing.models import Invoice, Plan
from otomat.catalog.models import Product, ProductVersion
from otomat.instances.models import Instance
from otomat.lib.choices import ChoiceLabels


def _token() -> str:
    return secrets.token_urlsafe(18)


class Department(models.Model):
    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(unique=True)
    # Weekly opening hours as a human spec, e.g. {"mon-fri": "09:00-17:00"} (see business_hours).
    hours = models.JSONField(_("business hours"), default=dict)
    timezone = models.CharField(_("time zone"), max_length=64, default="Asia/Jakarta")
    holiday_country = models.CharField(
        _("public holidays of"), max_length=5, blank=True, help_text=_("e.g. ID or PL")
    )
    extra_holidays = models.JSONField(default=list, blank=True)  # ["2026-12-24", ...]
    is_default = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class SlaPolicy(models.Model):
    """Response and resolution targets in business minutes, for a plan (or every plan) and a
    priority. The most specific policy wins: plan + priority, then any plan + priority."""

    name = models.CharField(_("name"), max_length=100)
    plan = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.CASCADE)
    priority = models.CharField(max_length=8, choices=Priority.choices)
    first_response_minutes = models.PositiveIntegerField(_("first response (business minutes)"))
    next_response_minutes = models.PositiveIntegerField(_("next response (business minutes)"))
    resolution_minutes = models.PositiveIntegerField(_("resolution (business minutes)"))
    warn_percent = models.PositiveSmallIntegerField(
        default=75, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    escalate_percent = models.PositiveSmallIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )

    class Meta:
        verbose_name_plural = "SLA policies"
        ordering = ["plan__product__name", "priority"]

    def __str__(self) -> str:
        return self.name


class SupportTerms(models.Model):
    """What buying a plan entitles to: a free support window, a revision quota and included
    support time. Instances without terms get the settings' defaults."""

    plan = models.OneToOneField(Plan, on_delete=models.CASCADE, related_name="support_terms")
    free_support_days = models.PositiveIntegerField(_("free support days"), default=30)
    revision_quota = models.PositiveIntegerField(_("revisions included"), default=3)
    included_minutes = models.PositiveIntegerField(_("support minutes included"), default=60)
    # The default price of a paid quote, per hour of work, in the plan's currency.
    hourly_rate_minor = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "support terms"


class Ticket(ChoiceLabels, models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Waiting on us")
        PENDING = "pending", _("Waiting on the customer")
        AWAITING_PAYMENT = "awaiting_payment", _("Waiting for a paid quote")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")
        MERGED = "merged", _("Merged")

    class Kind(models.TextChoices):
        QUESTION = "question", _("Question")
        PROBLEM = "problem", _("Something does not work")
        CHANGE = "change", _("Change request")

    class Channel(models.TextChoices):
        WEB = "web", _("Web")
        EMAIL = "email", _("Email")
        TELEGRAM = "telegram", _("Telegram")

    number = models.CharField(max_length=20, unique=True)  # "T-000123", shown everywhere
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="tickets")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="tickets")
    subject = models.CharField(_("subject"), max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.QUESTION)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged"
    )
    split_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="splits"
    )
    bug = models.ForeignKey(
        "ProductBug", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    # Entitlements: whether this ticket used one of the instance's revisions, and whether it is
    # outside what was bought (then it waits for a paid quote).
    counts_as_revision = models.BooleanField(default=False)
    out_of_scope = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    first_response_at = models.DateTimeField(null=True, blank=True)
    last_customer_at = models.DateTimeField(null=True, blank=True)
    last_staff_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    rating_comment = models.CharField(max_length=500, blank=True)

    # SLA clocks (see otomat.support.sla). Business seconds used so far, the instant the
    # running segment began (None while paused), and the resulting due instants.
    sla_policy = models.ForeignKey(SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL)
    response_target = models.CharField(max_length=8, blank=True)  # "first", "next" or ""
    response_since = models.DateTimeField(null=True, blank=True)
    response_due = models.DateTimeField(null=True, blank=True)
    resolution_used_seconds = models.PositiveIntegerField(default=0)
    resolution_running_since = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    # Warning / escalation / breach already recorded for the current clock cycle.
    sla_stage = models.JSONField(default=dict, blank=True)
    first_response_breached = models.BooleanField(default=False)
    resolution_breached = models.BooleanField(default=False)
    # The SLA scan's work queue: the next moment a warning, escalation or breach is due.
    sla_check_at = models.DateTimeField(null=True, blank=True)
    # The email thread: replies carry it in the subject ("[T-000123]") and in Message-ID
    # references; inbound mail must also come from a person of the ticket's account.
    email_token = models.CharField(max_length=40, default=_token, unique=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["sla_check_at", "id"], name="support_sla_queue"),
            models.Index(fields=["account", "status"], name="support_ticket_account"),
            models.Index(fields=["status", "assignee"], name="support_ticket_status"),
            # A customer's ticket list (most recently updated first) and the staff workload
            # page's open tickets, the SLA's first response first.
            models.Index(fields=["account", "-updated_at", "-id"], name="support_ticket_acct_upd"),
            models.Index(fields=["status", "response_due"], name="support_ticket_due"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in (
            self.Status.OPEN,
            self.Status.PENDING,
            self.Status.AWAITING_PAYMENT,
        )

    @property
    def whose_move(self) -> str:
        """ "us", "customer" or "" (nothing to do)."""
        if self.status == self.Status.OPEN:
            return "us"
        if self.status in (self.Status.PENDING, self.Status.AWAITING_PAYMENT):
            return "customer"
        return ""


class TicketMessage(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        STAFF = "staff", _("Staff reply")
        NOTE = "note", _("Internal note")  # never shown to the customer
        SYSTEM = "system", _("System")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_label = models.CharField(max_length=200, blank=True)  # e.g. an email address
    # Plain text only: HTML from email is converted on the way in and templates escape it on
    # the way out, so nothing a customer sends can run in a page.
    body = models.TextField()
    channel = models.CharField(max_length=10, choices=Ticket.Channel.choices, default="web")
    created_at = models.DateTimeField(default=timezone.now)
    # Email threading: this message's Message-ID (sent or received).
    email_message_id = models.CharField(max_length=300, blank=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]


def _attachment_path(instance: Attachment, filename: str) -> str:
    return f"support/{instance.message.ticket_id}/{secrets.token_hex(8)}"


class Attachment(models.Model):
    message = models.ForeignKey(TicketMessage, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path)
    filename = models.CharField(max_length=150)
    content_type = models.CharField(max_length=80)  # sniffed from the content, not trusted
    size = models.PositiveIntegerField()


class TicketEvent(models.Model):
    """Who did what to a ticket and why (status, assignment, SLA warnings, merges...)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=30)
    detail = models.CharField(max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["at", "id"]


class CannedReply(models.Model):
    """A reply staff insert with one click; placeholders like {customer_name}, {ticket},
    {instance}, {revisions_used}, {revisions_left}, {revisions_included}, {support_until},
    {quote_price}, {quote_days} are filled from the ticket (the full list and the check made
    when a reply is saved: ``support.quotes.PLACEHOLDERS``, ``check_placeholders``)."""

    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("text"))
    department = models.ForeignKey(Department, null=True, blank=True, on_delete=models.CASCADE)
    # The reply sent with a paid quote when a request is outside what was bought.
    out_of_scope = models.BooleanField(default=False)

    class Meta:
        ordering = ["title"]
        verbose_name_plural = "canned replies"

    def __str__(self) -> str:
        return self.title


class Quote(models.Model):
    """Paid support offered on a ticket: a price and an estimate in days. Accepting it issues
    an invoice; paying the invoice unlocks the ticket."""

    class Status(models.TextChoices):
        SENT = "sent", _("Waiting for the customer")
        ACCEPTED = "accepted", _("Accepted, waiting for payment")
        PAID = "paid", _("Paid")
        DECLINED = "declined", _("Declined")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="quotes")
    description = models.CharField(max_length=300)
    price_minor = models.PositiveBigIntegerField()  # in `currency`'s minor unit
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    days = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SENT)
    invoice = models.OneToOneField(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="support_quote"
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def price(self):
        from otomat.billing.money import Money

        return Money(self.price_minor, self.currency)


class TimeEntry(models.Model):
    """Staff time on a ticket: counted against the included minutes, or against a paid quote."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="time_entries")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    note = models.CharField(max_length=200, blank=True)
    quote = models.ForeignKey(Quote, null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "time entries"


class ProductBug(models.Model):
    """One defect of a product, reported by several customers (their tickets are linked)."""

    class Status(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        IN_PROGRESS = "in_progress", _("Being fixed")
        FIXED = "fixed", _("Fixed, not yet released")
        RELEASED = "released", _("Fixed in a released version")
        WONT_FIX = "wont_fix", _("Will not be fixed")

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="bugs")
    title = models.CharField(_("title"), max_length=200)  # internal
    description = models.TextField(_("what happens"), blank=True)  # internal
    # The known-issues page shows only these (no customer, instance or ticket detail).
    is_public = models.BooleanField(_("show on the known-issues page"), default=False)
    public_title = models.CharField(_("public title"), max_length=200, blank=True)
    public_note = models.TextField(_("public note (workaround)"), blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONFIRMED)
    fixed_in = models.ForeignKey(
        ProductVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="fixes"
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title

    def affected_instances(self):
        return Instance.objects.filter(tickets__bug=self).distinct()


class KbCategory(models.Model):
    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(unique=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "knowledge base categories"

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")

    category = models.ForeignKey(KbCategory, on_delete=models.PROTECT, related_name="articles")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL)
    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    body = models.TextField(_("text"))  # plain text with blank-line paragraphs; escaped
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # The language the article is written in; readers see theirs first (``kb.for_reader``).
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    # Articles sharing a key are translations of each other (one per language); blank: none.
    translation_key = models.SlugField(
        _("translation group"),
        max_length=100,
        blank=True,
        help_text=_("The same key on each translation of this article, e.g. “bot-token”."),
    )
    from_ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL)
    helpful_yes = models.PositiveIntegerField(default=0)
    helpful_no = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["category__position", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["translation_key", "language"],
                condition=~models.Q(translation_key=""),
                name="support_article_one_per_language",
                violation_error_message=_(
                    "This translation group already has an article in this language."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ArticleVote(models.Model):
    """One "was this helpful" answer per person (or anonymous session) and article."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="votes")
    voter = models.CharField(max_length=80)  # "user:<id>" or "session:<key>"
    helpful = models.BooleanField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["article", "voter"], name="support_vote_once"),
        ]


class Announcement(models.Model):
    class Audience(models.TextChoices):
        ALL = "all", _("All customers")
        PRODUCT = "product", _("Customers of one product")

    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    audience = models.CharField(max_length=10, choices=Audience.choices, default=Audience.ALL)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class AnnouncementReceipt(models.Model):
    """One person an announcement went to, and when they read it."""

    announcement = models.ForeignKey(
        Announcement, on_delete=models.CASCADE, related_name="receipts"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=40, unique=True, default=_token)  # the read link
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["announcement", "user"], name="support_receipt_once"),
        ]


class InboundEmail(models.Model):
    """Every email that reached the desk (webhook or IMAP), stored before it is acted on."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        TICKET = "ticket", _("Added to a ticket")
        REJECTED = "rejected", _("Rejected")
        IGNORED = "ignored", _("Ignored (automatic mail)")

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=10)  # "webhook" or "imap"
    sender = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    detail = models.CharField(max_length=300, blank=True)
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # The same message delivered twice (a retried webhook, IMAP and webhook both)
            # is handled once; blank ids are allowed many times.
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~models.Q(message_id=""),
                name="support_inbound_once",
            ),
        ]


def locked_tickets():
    """Tickets to lock FOR UPDATE: only the ticket rows, never rows joined for reading
    (PostgreSQL refuses to lock the nullable side of an outer join; MariaDB has no OF)."""
    from django.db import connection

    if connection.features.has_select_for_update_of:
        return Ticket.objects.select_for_update(of=("self",))
    return Ticket.objects.select_for_update()
