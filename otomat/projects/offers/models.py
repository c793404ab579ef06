"""Offers (versioned), their lines, milestones and payment schedule; contracts, their templates
and simple electronic signatures.

Money is in the currency's minor unit (``*_minor``), as billing keeps it; ranges are
``*_min``/``*_max``. An offer row always holds its *current* version: editing a sent offer first
freezes the version the client saw into an :class:`OfferVersion` and then bumps ``version``;
an accepted offer is frozen as a whole (the services refuse every edit).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import CURRENCIES, Account
from otomat.lib.choices import ChoiceLabels
from otomat.projects.models import Estimate, Lead, new_token


class Offer(ChoiceLabels, models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENT = "sent", _("Sent")
        ACCEPTED = "accepted", _("Accepted")
        DECLINED = "declined", _("Declined")
        EXPIRED = "expired", _("Expired")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    # Who it is for: a lead (reads it by ``token``) and/or a customer account (reads it logged
    # in). Acceptance by a lead without an account creates the account and sets both.
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="offers"
    )
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="offers"
    )
    estimate = models.ForeignKey(
        Estimate, null=True, blank=True, on_delete=models.SET_NULL, related_name="offers"
    )
    number = models.CharField(_("number"), max_length=32, unique=True)  # "OF-2026-0007"
    title = models.CharField(_("title"), max_length=200)
    summary = models.TextField(_("summary"), blank=True)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES)
    # The client's language: the offer page, the emails and the contract PDF.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    version = models.PositiveIntegerField(default=1)  # the current version's number
    revision_rounds = models.PositiveSmallIntegerField(_("revision rounds included"), default=2)
    valid_until = models.DateField(_("valid until"))  # the last day it can be accepted (UTC)
    # A range offer's schedule is computed on this amount (within the range's min–max), set by
    # the owner before sending; an exact offer's on its total (this stays empty).
    agreed_total_minor = models.PositiveBigIntegerField(_("agreed price"), null=True, blank=True)
    token = models.CharField(max_length=32, unique=True, default=new_token, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_version = models.PositiveIntegerField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def is_range(self) -> bool:
        return any(line.kind == OfferLine.Kind.RANGE for line in self.lines.all())

    @property
    def is_editable(self) -> bool:
        # An expired offer can be renewed: editing it (with a new validity date) sends it again.
        return self.status in (self.Status.DRAFT, self.Status.SENT, self.Status.EXPIRED)


class OfferLine(models.Model):
    """One line: ``exact`` (quantity × unit price, weeks as one figure in ``weeks_max``) or
    ``range`` (a cost and a time range)."""

    class Kind(models.TextChoices):
        EXACT = "exact", _("Exact")
        RANGE = "range", _("Range")

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.EXACT)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    quantity = models.PositiveIntegerField(default=1)
    unit_price_minor = models.PositiveBigIntegerField(default=0)  # exact lines
    cost_min_minor = models.PositiveBigIntegerField(default=0)  # range lines
    cost_max_minor = models.PositiveBigIntegerField(default=0)
    weeks_min = models.DecimalField(max_digits=6, decimal_places=1, default=Decimal(0))
    weeks_max = models.DecimalField(max_digits=6, decimal_places=1, default=Decimal(0))

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.title

    @property
    def low_minor(self) -> int:
        if self.kind == self.Kind.EXACT:
            return self.quantity * self.unit_price_minor
        return self.cost_min_minor

    @property
    def high_minor(self) -> int:
        if self.kind == self.Kind.EXACT:
            return self.quantity * self.unit_price_minor
        return self.cost_max_minor


class Milestone(models.Model):
    """A stage of the work: after ``weeks`` from the start (or on ``due_date``), worth
    ``amount_minor`` when it has its own amount (informational; billing follows the schedule).
    ``done_at``: when the owner marked it done (its schedule steps are then invoiced)."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="milestones")
    position = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(_("title"), max_length=200)
    weeks = models.DecimalField(
        _("weeks from start"), max_digits=6, decimal_places=1, null=True, blank=True
    )
    due_date = models.DateField(_("due date"), null=True, blank=True)
    amount_minor = models.PositiveBigIntegerField(_("amount"), null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.title


class PaymentStep(models.Model):
    """One instalment of the schedule: a ``percent`` of the schedule's base (the total, or a
    range offer's agreed price) or a fixed ``amount_minor`` — exactly one of them — billed on
    signing, when a milestone is done, or on release. The steps add up to the base exactly
    (checked when the offer is saved). ``invoice``: set once it is issued (one per step)."""

    class Trigger(models.TextChoices):
        SIGNING = "signing", _("On signing")
        MILESTONE = "milestone", _("When a milestone is done")
        RELEASE = "release", _("On release")

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="payment_steps")
    position = models.PositiveSmallIntegerField(default=0)
    label = models.CharField(_("label"), max_length=200)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.CASCADE, related_name="payment_steps"
    )
    percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_minor = models.PositiveBigIntegerField(null=True, blank=True)
    invoice = models.OneToOneField(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.label


class OfferVersion(models.Model):
    """A frozen version of an offer: the one the client saw before an edit, or the accepted
    one. ``content`` is the whole offer as JSON (fields, lines, milestones, schedule) and
    ``sha256`` its digest (canonical JSON). Never modified."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content = models.JSONField()
    sha256 = models.CharField(max_length=64)
    accepted = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["offer", "number"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "number"], name="offers_one_row_per_version")
        ]


class ContractTemplate(models.Model):
    """The contract's text in one language, with ``{placeholders}`` (see
    ``otomat.projects.offers.contracts.PLACEHOLDERS``); one row per language."""

    language = models.CharField(max_length=8, choices=settings.LANGUAGES, unique=True)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text"))
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.title} ({self.language})"


class Contract(models.Model):
    """The contract of an accepted offer (its annex). ``title``/``body`` are the template
    rendered at creation and never change; ``document``/``document_sha256`` the PDF the client
    reads and signs; once signed, ``signed_document``/``signed_sha256`` the PDF with the
    certificate of completion as its last page. A signed contract is never modified."""

    class Status(models.TextChoices):
        AWAITING_SIGNATURE = "awaiting", _("Awaiting signature")
        SIGNED = "signed", _("Signed")

    offer = models.OneToOneField(Offer, on_delete=models.PROTECT, related_name="contract")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="contracts")
    number = models.CharField(max_length=32, unique=True)  # "CT-2026-0007"
    language = models.CharField(max_length=8, choices=settings.LANGUAGES)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.AWAITING_SIGNATURE, db_index=True
    )
    title = models.CharField(max_length=200)
    body = models.TextField()
    # Both parties as printed, frozen at creation, so the signed PDF's pages are the unsigned
    # ones whatever changes later: {"name", "lines"} and {"name", "email", "company"}.
    seller = models.JSONField(default=dict)
    client = models.JSONField(default=dict)
    document = models.BinaryField()  # the PDF to sign
    document_sha256 = models.CharField(max_length=64)
    signed_document = models.BinaryField(null=True, blank=True)
    signed_sha256 = models.CharField(max_length=64, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.number


class Signature(models.Model):
    """The evidence of a simple electronic signature: who (the person, or the lead before they
    had a login), the typed name and email, when (UTC), from where (IP, user agent), the consent
    text exactly as shown, and the SHA-256 of the document before and of the signed PDF after.
    One per contract; never modified."""

    contract = models.OneToOneField(Contract, on_delete=models.PROTECT, related_name="signature")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lead = models.ForeignKey(
        Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField()
    signed_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    consent_text = models.TextField()
    document_sha256 = models.CharField(max_length=64)
    signed_sha256 = models.CharField(max_length=64)
