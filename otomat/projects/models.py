"""Custom projects, the software house's pipeline — the base every part builds on: leads (from the
estimator, the contact form, a booking or by hand) and the estimator (owner-defined options, each
with a time and a cost range, and the stored estimates visitors reopen by link).

The later parts live in sub-apps of this folder, each with its own migrations, layered in this
order (a lower one never imports a higher one):

- ``projects`` (here): leads, estimator options, estimates;
- ``projects.booking``: availability, meeting types, bookings, imported busy times, iCal;
- ``projects.offers``: offers (versioned), contracts and their electronic signatures;
- ``projects.board``: projects, milestones, cards with whose-move, revisions, releases, time.

Money is kept in the currency's minor unit (as billing keeps it); ranges are ``*_min``/``*_max``.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import CURRENCIES, Account
from otomat.lib.choices import ChoiceLabels


def new_token() -> str:
    """An unguessable link secret (about 144 bits)."""
    return secrets.token_urlsafe(18)


class EstimatorSettings(models.Model):
    """The one row of the seller's estimator: its currency, the project's base range (what every
    project costs before any option) and the page's texts. ``translations`` holds per-language
    overrides: ``{"id": {"title": ..., "intro": ...}, "pl": {...}}``; English is the fields."""

    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, default="PLN")
    title = models.CharField(_("title"), max_length=200, default="Estimate your project")
    intro = models.TextField(_("introduction"), blank=True)
    base_weeks_min = models.DecimalField(
        _("base weeks (from)"), max_digits=6, decimal_places=1, default=1
    )
    base_weeks_max = models.DecimalField(
        _("base weeks (to)"), max_digits=6, decimal_places=1, default=2
    )
    base_cost_min_minor = models.PositiveBigIntegerField(_("base cost (from)"), default=0)
    base_cost_max_minor = models.PositiveBigIntegerField(_("base cost (to)"), default=0)
    translations = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("estimator settings")

    @classmethod
    def current(cls) -> EstimatorSettings:
        row = cls.objects.order_by("pk").first()
        return row or cls.objects.create()

    def clean(self) -> None:
        if self.base_weeks_min > self.base_weeks_max:
            raise ValidationError(_("The base range's start is after its end."))
        if self.base_cost_min_minor > self.base_cost_max_minor:
            raise ValidationError(_("The base range's start is after its end."))


class EstimatorOption(models.Model):
    """One thing a visitor can pick ("An online shop", "Online payments", "Languages"). A
    ``choice`` is picked or not; a ``quantity`` is picked N times (1..``max_quantity``), each unit
    adding its range. ``requires`` lists options that must be picked with it (online payments
    need a shop). ``translations``: ``{"id": {"title": ..., "description": ...}, "pl": {...}}``."""

    class Kind(models.TextChoices):
        CHOICE = "choice", _("Yes or no")
        QUANTITY = "quantity", _("Quantity")

    key = models.SlugField(_("key"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.CHOICE)
    group = models.CharField(_("group"), max_length=100, blank=True)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    translations = models.JSONField(default=dict, blank=True)
    weeks_min = models.DecimalField(_("weeks (from)"), max_digits=6, decimal_places=1, default=0)
    weeks_max = models.DecimalField(_("weeks (to)"), max_digits=6, decimal_places=1, default=0)
    cost_min_minor = models.PositiveBigIntegerField(_("cost (from)"), default=0)
    cost_max_minor = models.PositiveBigIntegerField(_("cost (to)"), default=0)
    max_quantity = models.PositiveSmallIntegerField(
        _("most units"), default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    requires = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="required_by",
        verbose_name=_("requires"),
    )
    position = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(_("offered"), default=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if self.weeks_min > self.weeks_max or self.cost_min_minor > self.cost_max_minor:
            raise ValidationError(_("A range's start is after its end."))

    def text(self, field: str, language: str) -> str:
        """``title`` or ``description`` in ``language``, English when not translated."""
        translated = (self.translations or {}).get((language or "en")[:2], {}).get(field)
        return translated or getattr(self, field)


class Lead(ChoiceLabels, models.Model):
    """Somebody who may become a client. ``token`` is their private link (their estimate, their
    booking); ``account`` is set once they are (or become) a customer account."""

    class Source(models.TextChoices):
        ESTIMATOR = "estimator", _("Estimator")
        CONTACT_FORM = "contact", _("Contact form")
        BOOKING = "booking", _("Booking")
        MANUAL = "manual", _("Entered by hand")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        CONTACTED = "contacted", _("Contacted")
        MEETING = "meeting", _("Meeting booked")
        OFFER = "offer", _("Offer sent")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("email"))
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    message = models.TextField(_("message"), blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC")
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.NEW, db_index=True
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    # The staff member who follows it up (none: the owner).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_leads",
    )
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    notes = models.TextField(_("internal notes"), blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Estimate(ChoiceLabels, models.Model):
    """What a visitor picked and the range it came to, frozen at the time (the options' ranges
    may change later). ``lines``: ``[{"key", "title", "quantity", "weeks_min", "weeks_max",
    "cost_min_minor", "cost_max_minor"}]`` with the titles in the visitor's language."""

    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="estimates"
    )
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")
    selections = models.JSONField(default=list)  # [{"key": "shop", "quantity": 1}]
    lines = models.JSONField(default=list)
    weeks_min = models.DecimalField(max_digits=7, decimal_places=1)
    weeks_max = models.DecimalField(max_digits=7, decimal_places=1)
    cost_min_minor = models.PositiveBigIntegerField()
    cost_max_minor = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Estimate {self.pk} ({self.weeks_min}–{self.weeks_max} weeks)"


class LeadNote(models.Model):
    """A note staff wrote on a lead (a call, what was agreed), shown newest first with its
    author; the lead's status changes are in the audit log."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="lead_notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(_("note"))
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
