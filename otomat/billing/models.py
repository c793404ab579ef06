"""Billing data: plans, subscriptions, invoices, payments, credit, and the log of what billing did.

Money is stored as integer minor units of the row's ``currency`` (see ``otomat.billing.money``:
cents for USD/EUR, grosze for PLN, whole rupiah for IDR); every ``*_minor`` field says so. Rows
are only changed by the service modules (``invoicing``, ``subscriptions``, ``payments``,
``dunning``), never from views or templates.

Idempotency lives in the schema, not only in code: an invoice's ``idempotency_key`` is unique
(one renewal invoice per subscription period, one late fee per overdue invoice), a gateway
event is stored once per provider event id, a payment once per provider payment id, and every
automatic action once per ``BillingAction.key``. A retry, a duplicate callback or a second
scheduler therefore hits a unique constraint instead of billing twice.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import CURRENCIES, Account
from otomat.billing.money import Money
from otomat.catalog.models import Product
from otomat.instances.crypto import EncryptedJSONField
from otomat.lib.choices import ChoiceLabels


def _token() -> str:
    return secrets.token_urlsafe(24)


class InvoiceSeries(models.Model):
    """A gap-free numbering series, e.g. "INV" → INV/2026/000042.

    ``next_number`` is only ever changed by ``otomat.billing.numbering.take_number`` inside the
    transaction that issues the document: if that transaction rolls back, the number is not
    consumed, so the series never has a gap (Polish and Indonesian invoicing rules expect that).
    """

    code = models.SlugField(_("code"), max_length=20, unique=True)
    # Python format string with {prefix}, {year}, {number} (e.g. "{prefix}/{year}/{number:06d}").
    format = models.CharField(max_length=100, default="{prefix}/{year}/{number:06d}")
    prefix = models.CharField(max_length=20)
    # Numbering restarts at 1 every year when true (the usual rule), else runs on forever.
    yearly = models.BooleanField(default=True)
    year = models.PositiveIntegerField(null=True, blank=True)  # the year next_number belongs to
    next_number = models.PositiveIntegerField(default=1)  # never modify by hand

    class Meta:
        verbose_name_plural = "invoice series"

    def __str__(self) -> str:
        return self.code


class BillingSettings(models.Model):
    """The seller's details and billing defaults; one row (pk=1), edited by the owner."""

    seller_name = models.CharField(_("seller name"), max_length=200, default="Otomat seller")
    seller_address = models.TextField(_("seller address"), blank=True)
    seller_tax_id = models.CharField(_("tax id"), max_length=50, blank=True)
    seller_email = models.EmailField(_("billing email"), blank=True)
    invoice_series = models.CharField(max_length=20, default="inv")  # InvoiceSeries.code
    credit_note_series = models.CharField(max_length=20, default="cn")
    # Days a first (order) invoice may stay unpaid before the order is cancelled.
    order_payment_days = models.PositiveSmallIntegerField(default=7)
    # Shown to customers who pay by manual bank transfer (account number, reference to use).
    bank_transfer_instructions = models.TextField(_("bank transfer instructions"), blank=True)

    @classmethod
    def get(cls) -> BillingSettings:
        return cls.objects.get_or_create(pk=1)[0]


class BillingProfile(models.Model):
    """What a customer wants printed on their invoices (a company's legal name, address, tax id)."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="billing_profile"
    )
    legal_name = models.CharField(_("legal name"), max_length=200, blank=True)
    address = models.TextField(_("address"), blank=True, max_length=500)
    tax_id = models.CharField(_("tax id (NPWP, NIP, VAT)"), max_length=50, blank=True)


class TaxRate(models.Model):
    name = models.CharField(_("name"), max_length=100)  # "PPN 11%", "VAT 23%"
    rate_percent = models.DecimalField(
        _("rate (%)"),
        max_digits=6,
        decimal_places=3,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    # True: plan prices already contain this tax (consumer prices); False: tax is added on top.
    inclusive = models.BooleanField(_("prices include this tax"), default=False)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class DunningPolicy(models.Model):
    """When billing invoices, reminds, charges a late fee, suspends and terminates. Days count
    from the invoice's due date (negative = before it)."""

    name = models.CharField(_("name"), max_length=100)
    invoice_days_before = models.PositiveSmallIntegerField(
        _("invoice days before renewal"), default=7, validators=[MaxValueValidator(60)]
    )
    # Days relative to the due date on which a reminder goes out, e.g. [-3, 0, 3, 5].
    reminder_days = models.JSONField(_("reminder days"), default=list, blank=True)
    suspend_after_days = models.PositiveSmallIntegerField(
        _("suspend after days overdue"), default=7
    )
    terminate_after_days = models.PositiveSmallIntegerField(
        _("terminate after days overdue"), default=30
    )
    # The data export is offered this many days before termination (and on every notice after).
    export_notice_days = models.PositiveSmallIntegerField(default=3)
    late_fee_percent = models.DecimalField(
        _("late fee (% of the invoice)"), max_digits=5, decimal_places=2, default=Decimal(0)
    )
    late_fee_after_days = models.PositiveSmallIntegerField(default=3)

    class Meta:
        verbose_name_plural = "dunning policies"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.terminate_after_days <= self.suspend_after_days:
            raise ValidationError(_("Termination must come after suspension."))
        days = self.reminder_days
        if not isinstance(days, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and -60 <= d <= 365 for d in days
        ):
            raise ValidationError(_("Reminder days must be whole numbers between -60 and 365."))

    @classmethod
    def default(cls) -> DunningPolicy:
        policy, _created = cls.objects.get_or_create(
            name="Standard",
            defaults={
                "invoice_days_before": 7,
                "reminder_days": [-3, 0, 3, 5],
                "suspend_after_days": 7,
                "terminate_after_days": 30,
            },
        )
        return policy


class Plan(models.Model):
    class Period(models.IntegerChoices):
        MONTHLY = 1, _("Monthly")
        QUARTERLY = 3, _("Quarterly")
        YEARLY = 12, _("Yearly")

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="plans")
    code = models.SlugField(max_length=50)
    name = models.CharField(_("name"), max_length=100)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES)
    price_minor = models.PositiveBigIntegerField()  # per period, in the currency's minor unit
    period_months = models.PositiveSmallIntegerField(choices=Period.choices, default=Period.MONTHLY)
    setup_fee_minor = models.PositiveBigIntegerField(default=0)  # once, on the first invoice
    trial_days = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(365)])
    tax_rate = models.ForeignKey(TaxRate, null=True, blank=True, on_delete=models.PROTECT)
    dunning_policy = models.ForeignKey(
        DunningPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="plans"
    )
    is_active = models.BooleanField(_("offered"), default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["product__name", "position", "price_minor"]
        constraints = [
            models.UniqueConstraint(fields=["product", "code"], name="billing_plan_code"),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} — {self.name}"

    @property
    def price(self) -> Money:
        return Money(self.price_minor, self.currency)

    @property
    def setup_fee(self) -> Money:
        return Money(self.setup_fee_minor, self.currency)

    @property
    def policy(self) -> DunningPolicy:
        return self.dunning_policy or DunningPolicy.default()

    def monthly_minor(self) -> Decimal:
        """Price per month (exact Decimal, for MRR); never stored or billed."""
        return Decimal(self.price_minor) / self.period_months

    # What a subscriber bought: fixed once the plan has a subscription (of any status: ended
    # ones have invoices that name the plan). To charge new customers differently, add a plan
    # and stop offering this one (docs/billing.md). The name, code, position, the "offered"
    # flag, the dunning policy and the tax rate may still change: the first four are labels,
    # the policy is the seller's handling of late payment (its own row is editable anyway),
    # and a tax rate follows the law, not the offer.
    TERMS = ("product", "currency", "price_minor", "period_months", "setup_fee_minor", "trial_days")

    def changed_terms(self) -> list[str]:
        """The terms (``TERMS``) that saving this object would change on a plan that has
        subscribers; [] for a new plan, one without subscribers, or when they are unchanged."""
        if self.pk is None:
            return []
        names = [self._meta.get_field(name).attname for name in self.TERMS]
        stored = Plan.objects.filter(pk=self.pk).values(*names).first()
        if stored is None:
            return []
        changed = [
            term
            for term, name in zip(self.TERMS, names, strict=True)
            if getattr(self, name) != stored[name]
        ]
        if changed and Subscription.objects.filter(plan_id=self.pk).exists():
            return changed
        return []

    def check_terms(self) -> None:
        """Raise ValidationError when saving would change a term of a plan with subscribers."""
        changed = self.changed_terms()
        if changed:
            labels = {
                "product": _("product"),
                "currency": _("currency"),
                "price_minor": _("price"),
                "period_months": _("period"),
                "setup_fee_minor": _("setup fee"),
                "trial_days": _("trial days"),
            }
            raise ValidationError(
                _(
                    "This plan has subscribers, so its %(terms)s cannot change: that is what "
                    "they bought. To offer new customers other terms, add a plan and stop "
                    "offering this one."
                ),
                code="plan_terms_fixed",
                params={"terms": ", ".join(str(labels[term]) for term in changed)},
            )

    def clean(self) -> None:
        super().clean()
        self.check_terms()

    def save(self, *args, **kwargs) -> None:
        """Save, refusing (ValidationError, nothing stored) to change the terms of a plan with
        subscribers, whoever saves it: the owner's pages, a script, a future API. The stored
        row is locked first, so a subscription that is being created is seen."""
        with transaction.atomic():
            if self.pk is not None:
                list(Plan.objects.select_for_update().filter(pk=self.pk).values_list("pk"))
                self.check_terms()
            super().save(*args, **kwargs)


class Coupon(models.Model):
    class Duration(models.TextChoices):
        ONCE = "once", _("First invoice only")
        REPEATING = "repeating", _("A number of periods")
        FOREVER = "forever", _("Forever")

    code = models.CharField(_("code"), max_length=40, unique=True)  # stored upper-case
    percent_off = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal(100))],
    )
    amount_off_minor = models.PositiveBigIntegerField(null=True, blank=True)  # in `currency`
    currency = models.CharField(max_length=3, choices=CURRENCIES, blank=True)
    duration = models.CharField(max_length=10, choices=Duration.choices, default=Duration.ONCE)
    duration_periods = models.PositiveSmallIntegerField(null=True, blank=True)  # for REPEATING
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(default=0)
    valid_until = models.DateTimeField(null=True, blank=True)
    plans = models.ManyToManyField(Plan, blank=True)  # empty: every plan
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.code


class Subscription(ChoiceLabels, models.Model):
    """One instance's paid plan. The dunning engine (``otomat.billing.dunning``) moves it along;
    ``next_run_at`` is when it next has something to do (the engine's indexed work queue)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting first payment")
        TRIALING = "trialing", _("Trial")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        SUSPENDED = "suspended", _("Suspended for non-payment")
        CANCELED = "canceled", _("Cancelled")
        TERMINATED = "terminated", _("Terminated for non-payment")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="subscriptions")
    instance = models.OneToOneField(
        "instances.Instance", on_delete=models.PROTECT, related_name="subscription"
    )
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Periods are computed from the anchor, never by adding a month to the previous end, so a
    # subscription started on 31 January renews on 28/29 February and then on 31 March again.
    anchor_at = models.DateTimeField(null=True, blank=True)
    # Current period = [anchor + index×months, anchor + (index+1)×months); -1 during a trial,
    # which runs from creation to the anchor.
    period_index = models.IntegerField(default=0)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    coupon = models.ForeignKey(Coupon, null=True, blank=True, on_delete=models.SET_NULL)
    coupon_periods_left = models.PositiveSmallIntegerField(null=True, blank=True)  # None: forever
    setup_fee_charged = models.BooleanField(default=False)  # on the first paid invoice only
    # Work queue: the dunning run takes rows with next_run_at <= now in id order, in batches.
    next_run_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)  # consecutive failed runs
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)  # cancelled or terminated

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The dunning run: WHERE next_run_at <= now ORDER BY next_run_at, id.
            models.Index(fields=["next_run_at", "id"], name="billing_sub_queue"),
            models.Index(fields=["status"], name="billing_sub_status"),
            # The dashboard's "failing subscriptions" (failures > 0): a range of the index,
            # not a scan of every subscription on every view.
            models.Index(fields=["failures"], name="billing_sub_failures"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} for {self.account}"

    @property
    def is_live(self) -> bool:
        return self.status in (
            self.Status.TRIALING,
            self.Status.ACTIVE,
            self.Status.PAST_DUE,
            self.Status.SUSPENDED,
        )


class Invoice(ChoiceLabels, models.Model):
    class Kind(models.TextChoices):
        ORDER = "order", _("Order")  # the first invoice of a subscription (with the setup fee)
        RENEWAL = "renewal", _("Renewal")
        PLAN_CHANGE = "plan_change", _("Plan change")
        LATE_FEE = "late_fee", _("Late fee")
        SUPPORT = "support", _("Paid support")  # a support quote the customer accepted
        MANUAL = "manual", _("Manual")

    class Status(models.TextChoices):
        OPEN = "open", _("Unpaid")
        PAID = "paid", _("Paid")
        VOID = "void", _("Void")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    number = models.CharField(max_length=40, unique=True)  # from the series, gap-free
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    # All in the currency's minor unit. subtotal = Σ line net (after discounts);
    # total = subtotal + tax = Σ line gross; amount_due = total - credit_applied - amount_paid.
    subtotal_minor = models.BigIntegerField(default=0)
    discount_minor = models.BigIntegerField(default=0)  # shown for information: Σ line discount
    tax_minor = models.BigIntegerField(default=0)
    total_minor = models.BigIntegerField(default=0)
    credit_applied_minor = models.BigIntegerField(default=0)
    amount_paid_minor = models.BigIntegerField(default=0)
    amount_due_minor = models.BigIntegerField(default=0)  # kept by services; never negative
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=200, blank=True)
    language = models.CharField(max_length=8, default="en")  # the PDF's and notices' language
    # Snapshots at issue, never modified afterwards: the buyer (name, lines, email, time_zone)
    # and the seller (name, lines, email, bank: from BillingSettings). The stored PDF is
    # rendered from them, so later changes of either party reach no issued invoice. Every path
    # that issues (one by one and in bulk) fills both; an empty seller is only possible for a
    # row from before snapshots, and storing its PDF fills it: see documents.stored_pdf.
    buyer = models.JSONField(default=dict)
    seller = models.JSONField(default=dict, blank=True)
    related_invoice = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )  # a late fee's overdue invoice
    # "renewal:<sub>:<period start>", "order:<sub>", "late_fee:<invoice>", ...: one invoice per
    # key, so renewal can never be invoiced twice whoever triggers it. NULL for manual invoices.
    idempotency_key = models.CharField(max_length=120, null=True, blank=True, unique=True)
    # The capability in the payment link of notices (pay without logging in).
    token = models.CharField(max_length=40, unique=True, default=_token)
    notes = models.TextField(blank=True)
    # How the PDF lays out lines and totals; fixed at issue so a PDF rendered later (first
    # download) looks as it would have at issue. 1: net/tax/gross per line (before 2026-12);
    # 2: amounts before discount, then subtotal, discounts, net, tax, total (documents.py).
    layout = models.PositiveSmallIntegerField(default=2)

    class Meta:
        ordering = ["-issued_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="billing_inv_open_due"),
            models.Index(fields=["account", "status"], name="billing_inv_account"),
            # A subscription's open invoices, soonest due first (the instance page): read in
            # index order. With (subscription, status) alone SQLite walked every open invoice
            # through billing_inv_open_due to skip the sort (16 ms at 100,000 invoices).
            models.Index(fields=["subscription", "status", "due_at"], name="billing_inv_sub_due"),
            # The staff invoice list (newest first, paginated) and a customer's invoice list:
            # read in index order, no sort of every invoice per page.
            models.Index(fields=["-issued_at", "-id"], name="billing_inv_issued"),
            models.Index(fields=["account", "-issued_at", "-id"], name="billing_inv_acct_issued"),
        ]

    def __str__(self) -> str:
        return self.number

    def money(self, field: str) -> Money:
        return Money(getattr(self, f"{field}_minor"), self.currency)

    @property
    def total(self) -> Money:
        return self.money("total")

    @property
    def amount_due(self) -> Money:
        return self.money("amount_due")

    def is_overdue(self, now=None) -> bool:
        return self.status == self.Status.OPEN and self.due_at < (now or timezone.now())

    def pay_url(self) -> str:
        from django.urls import reverse

        return settings.BASE_URL + reverse("billing:pay", args=[self.token])


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    description = models.CharField(max_length=300)
    quantity = models.PositiveIntegerField(default=1)
    unit_price_minor = models.BigIntegerField()  # may be negative (an unused-time credit)
    discount_minor = models.BigIntegerField(default=0)  # taken off quantity × unit price
    # What the discount is, in the invoice's language at issue ("Coupon HEMAT20 (−20 %)").
    discount_label = models.CharField(max_length=200, blank=True)
    # net + tax == gross; net is the taxable base after discount (see money.apply_tax).
    net_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField(default=0)
    gross_minor = models.BigIntegerField()
    tax_rate_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    tax_name = models.CharField(max_length=100, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]


class CreditNote(models.Model):
    """A correction of a paid invoice (a refund): its amount goes to the account's credit balance
    or was paid back outside Otomat (``refund_method``)."""

    class RefundMethod(models.TextChoices):
        CREDIT = "credit", _("Credit balance")
        EXTERNAL = "external", _("Paid back outside Otomat")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(max_length=40, unique=True)
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    net_minor = models.BigIntegerField()  # positive amounts, credited back
    tax_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()
    reason = models.CharField(max_length=300)
    refund_method = models.CharField(max_length=10, choices=RefundMethod.choices)
    issued_at = models.DateTimeField(default=timezone.now)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    language = models.CharField(max_length=8, default="en")
    token = models.CharField(max_length=40, unique=True, default=_token)
    # The seller at the credit note's own issue (the buyer is the invoice's snapshot).
    seller = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return self.number

    @property
    def total(self) -> Money:
        return Money(self.total_minor, self.currency)


class IssuedDocument(models.Model):
    """The PDF of one issued invoice or credit note: rendered once from the document's
    snapshots, stored in the database (so a database backup holds it) and served byte for byte
    ever after. ``content`` and ``sha256`` are never modified; one row per document (a second
    render of the same document hits the one-to-one constraint)."""

    invoice = models.OneToOneField(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="document"
    )
    credit_note = models.OneToOneField(
        CreditNote, null=True, blank=True, on_delete=models.PROTECT, related_name="document"
    )
    content = models.BinaryField()  # the PDF as served
    sha256 = models.CharField(max_length=64)  # hex digest of content, shown to staff, the ETag
    size = models.PositiveIntegerField()  # bytes
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(invoice__isnull=False, credit_note__isnull=True)
                | models.Q(invoice__isnull=True, credit_note__isnull=False),
                name="billing_document_one_owner",
            ),
        ]


class CreditBalance(models.Model):
    """An account's credit in one currency; changed only with a CreditEntry in the same
    transaction (the ledger sums to the balance)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="credit_balances")
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    balance_minor = models.BigIntegerField(default=0)  # never negative

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="billing_credit_cur"),
            models.CheckConstraint(
                condition=models.Q(balance_minor__gte=0), name="billing_credit_not_negative"
            ),
        ]

    @property
    def balance(self) -> Money:
        return Money(self.balance_minor, self.currency)


class CreditEntry(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="credit_entries")
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    amount_minor = models.BigIntegerField()  # + added to the balance, - used
    reason = models.CharField(max_length=200)
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT)
    credit_note = models.ForeignKey(CreditNote, null=True, blank=True, on_delete=models.PROTECT)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "credit entries"


class GatewayConfig(models.Model):
    """The owner's credentials for one payment provider (encrypted at rest)."""

    code = models.CharField(max_length=20, unique=True)  # a key of gateways.REGISTRY, or "manual"
    enabled = models.BooleanField(default=False)
    credentials = EncryptedJSONField(default=dict)
    api_base = models.URLField(blank=True)  # empty: the provider's production API
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.code


class CheckoutSession(models.Model):
    """One attempt to pay an invoice through a provider. ``reference`` is what the provider
    echoes in its callbacks; it maps a callback back to exactly one invoice."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="checkouts")
    gateway = models.CharField(max_length=20)
    reference = models.CharField(max_length=64, unique=True)
    provider_ref = models.CharField(max_length=200, blank=True)
    redirect_url = models.URLField(max_length=500, blank=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]


class GatewayCallback(models.Model):
    """Every callback as received, stored before anything acts on it (forgeries included, so
    the owner can see them). Processing is idempotent per (gateway, event id) through
    ``ProcessedEvent``."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        # The signature or token does not verify, or the provider does not confirm it.
        REJECTED = "rejected", _("Rejected (not verified or not confirmed)")
        DUPLICATE = "duplicate", _("Duplicate")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed, will retry")

    gateway = models.CharField(max_length=20)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    # Only the headers the adapters read; secret ones (Xendit's callback token) "[masked]".
    headers = models.JSONField(default=dict)
    body = models.TextField()  # as received (bounded by the view)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    event_id = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, blank=True)
    reference = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # A failed callback's next try (exponential backoff); None once it is done.
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "received_at"], name="billing_cb_status")]


class ProcessedEvent(models.Model):
    """(gateway, event id) pairs that have been acted on: inserted in the transaction that acts,
    so a duplicate or a concurrent delivery of the same event hits the unique constraint."""

    gateway = models.CharField(max_length=20)
    event_id = models.CharField(max_length=200)
    callback = models.ForeignKey(GatewayCallback, null=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gateway", "event_id"], name="billing_event_once"),
        ]


class Payment(ChoiceLabels, models.Model):
    """Money received for one invoice. Unique per (gateway, provider payment id): the same
    payment reported twice (or by the callback and a person) is recorded once."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    gateway = models.CharField(max_length=20)  # "manual", "midtrans", ...
    provider_payment_id = models.CharField(max_length=200)
    amount_minor = models.BigIntegerField()  # in `currency`'s minor unit, > 0
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "provider_payment_id"], name="billing_payment_once"
            ),
        ]

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


def _proof_path(instance: TransferProof, filename: str) -> str:
    return f"transfer-proofs/{instance.invoice_id}/{secrets.token_hex(8)}"


class TransferProof(models.Model):
    """A customer's proof of a manual bank transfer, waiting for staff to approve or reject."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="proofs")
    file = models.FileField(upload_to=_proof_path)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    amount_minor = models.BigIntegerField()  # what the customer says they sent
    note = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]


class BillingAction(models.Model):
    """The log of everything billing did by itself (and the payments people recorded), each
    with its reason. ``key`` makes an action happen once: a second attempt hits the unique
    constraint and is skipped."""

    class Kind(models.TextChoices):
        INVOICED = "invoiced", _("Invoice issued")
        REMINDED = "reminded", _("Reminder sent")
        LATE_FEE = "late_fee", _("Late fee charged")
        PAID = "paid", _("Payment recorded")
        ACTIVATED = "activated", _("Activated after payment")
        RENEWED = "renewed", _("Renewed")
        SUSPENDED = "suspended", _("Suspended")
        UNSUSPENDED = "unsuspended", _("Unsuspended")
        EXPORT_OFFERED = "export_offered", _("Data export offered")
        TERMINATED = "terminated", _("Terminated")
        CANCELED = "canceled", _("Cancelled")
        PLAN_CHANGED = "plan_changed", _("Plan changed")
        CREDITED = "credited", _("Credit note issued")
        REJECTED = "rejected", _("Callback rejected")
        FAILED = "failed", _("Failed, will retry")

    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=160, null=True, blank=True, unique=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="billing_actions"
    )
    subscription = models.ForeignKey(
        Subscription, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    reason = models.CharField(max_length=300)
    actor_label = models.CharField(max_length=100, default="system:billing")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["at"], name="billing_action_at"),
            models.Index(fields=["kind", "at"], name="billing_action_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.reason}"
