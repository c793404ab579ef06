"""People, customer accounts, API tokens and the audit log."""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

CURRENCIES = [("IDR", "IDR"), ("PLN", "PLN"), ("USD", "USD"), ("EUR", "EUR")]
TIMEZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones())]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person. Logs in with their email. ``is_superuser`` marks the owner, ``is_staff`` staff;
    customers are neither and belong to exactly one :class:`Account` through a membership."""

    username = None
    email = models.EmailField(_("email address"), unique=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    timezone = models.CharField(
        _("time zone"), max_length=64, choices=TIMEZONE_CHOICES, default="UTC"
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    def __str__(self) -> str:
        return self.get_full_name() or self.email

    @property
    def is_owner(self) -> bool:
        return self.is_superuser

    @property
    def account(self) -> Account | None:
        if self.pk is not None and not User.membership.is_cached(self):
            # The membership and its account in one query (remembered on this object, a
            # missing membership too), instead of one for each.
            models.prefetch_related_objects(
                [self], models.Prefetch("membership", Membership.objects.select_related("account"))
            )
        membership = getattr(self, "membership", None)
        return membership.account if membership else None


class Account(models.Model):
    """A customer: a person or a company with one responsible person and optional members, who
    all see the same instances, invoices and tickets."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # Why the seller ended the relationship, shown to the customer when they try to order or
    # open a ticket (their running services run to the end of what they paid).
    closed_message = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, default="USD")
    # The platform's own account holding sandboxes and trials; no person is a member of it.
    is_internal = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name

    @property
    def responsible(self) -> User | None:
        # Bulk work (the billing run) preloads it for many accounts in one query.
        if "_responsible" in self.__dict__:
            return self.__dict__["_responsible"]
        membership = self.memberships.filter(role=Membership.Role.RESPONSIBLE).first()
        return membership.user if membership else None

    @staticmethod
    def preload_responsible(accounts: list[Account]) -> None:
        """Fetch the responsible person of every account in one query."""
        ids = {a.pk for a in accounts}
        people = {
            m.account_id: m.user
            for m in Membership.objects.filter(
                account_id__in=ids, role=Membership.Role.RESPONSIBLE
            ).select_related("user")
        }
        for account in accounts:
            account.__dict__["_responsible"] = people.get(account.pk)


class Membership(models.Model):
    class Role(models.TextChoices):
        RESPONSIBLE = "responsible", _("Responsible person")
        MEMBER = "member", _("Member")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    # One person belongs to one customer account: tenant scoping is then a single lookup.
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # An account has exactly one responsible person (enforced at most one here; services
            # keep at least one).
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(role="responsible"),
                name="one_responsible_per_account",
            )
        ]


class ApiToken(models.Model):
    """A bearer token for the REST API. Only a SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)  # shown in lists to tell tokens apart
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    PREFIX = "otm_"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        """Create a token; returns the row and the plain token (never stored)."""
        plain = cls.PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(user=user, name=name, prefix=plain[:12], digest=cls.hash(plain))
        return row, plain


class AuditEvent(models.Model):
    """Who did what to which object. Written by the service function that does the action."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    # For automatic actions: "system:runner", "system:scheduler", ...
    actor_label = models.CharField(max_length=100, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=50, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)  # never secrets
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        who = self.actor or self.actor_label or "?"
        return f"{self.at:%Y-%m-%d %H:%M} {who} {self.action} {self.target_repr}"
