"""Business actions on people and accounts. Each writes its own audit event."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Model

from otomat.accounts.models import Account, AuditEvent, Membership, User


class AccountError(Exception):
    """A refused account action; the message is shown to the person."""


def record_audit(
    action: str,
    *,
    actor: User | None = None,
    actor_label: str = "",
    account: Account | None = None,
    target: Model | None = None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one audit event. ``data`` must never contain secrets."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if account is None and actor is not None:
        account = actor.account
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=actor_label,
        account=account,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        data=data or {},
        ip=ip,
    )


@transaction.atomic
def sign_up(
    *, email: str, password: str, full_name: str, account_name: str, language: str = "en"
) -> User:
    """Create a customer: a person and their account, with them as the responsible person.

    Raises AccountError when the email is taken."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise AccountError("An account with this email address already exists.")
    first, _, last = full_name.strip().partition(" ")
    user = User.objects.create_user(
        email=email, password=password, first_name=first, last_name=last, language=language
    )
    account = Account.objects.create(name=account_name.strip() or full_name.strip() or email)
    Membership.objects.create(account=account, user=user, role=Membership.Role.RESPONSIBLE)
    record_audit("account.signed_up", actor=user, account=account, target=account)
    return user


@transaction.atomic
def add_member(account: Account, *, email: str, full_name: str, actor: User) -> User:
    """Add a person to ``account``; they set their password through an emailed link.

    Only the responsible person (or staff) may add members. Raises AccountError."""
    _require_responsible(account, actor)
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise AccountError("This email address already belongs to someone on Otomat.")
    first, _, last = full_name.strip().partition(" ")
    user = User.objects.create_user(email=email, password=None, first_name=first, last_name=last)
    Membership.objects.create(account=account, user=user, role=Membership.Role.MEMBER)
    record_audit("account.member_added", actor=actor, account=account, target=user)
    transaction.on_commit(lambda: send_password_link(user))
    return user


@transaction.atomic
def remove_member(account: Account, *, user: User, actor: User) -> None:
    """Remove a member (never the responsible person). Raises AccountError."""
    _require_responsible(account, actor)
    membership = Membership.objects.filter(account=account, user=user).first()
    if membership is None:
        raise AccountError("This person is not a member of the account.")
    if membership.role == Membership.Role.RESPONSIBLE:
        raise AccountError("The responsible person cannot be removed.")
    membership.delete()
    user.is_active = False
    user.save(update_fields=["is_active"])
    record_audit("account.member_removed", actor=actor, account=account, target=user)


def _require_responsible(account: Account, actor: User) -> None:
    if actor.is_staff:
        return
    if not Membership.objects.filter(
        account=account, user=actor, role=Membership.Role.RESPONSIBLE
    ).exists():
        raise AccountError("Only the account's responsible person can manage its members.")


def send_password_link(user: User) -> None:
    """Email ``user`` a link to choose a password (new members have none yet, so Django's
    PasswordResetForm, which skips users without a usable password, cannot be used)."""
    from django.contrib.auth.tokens import default_token_generator
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode
    from django.utils.translation import override

    scheme, _, domain = settings.BASE_URL.partition("://")
    context = {
        "email": user.email,
        "protocol": scheme,
        "domain": domain,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
        "user": user,
    }
    with override(user.language):
        subject = render_to_string("registration/password_reset_subject.txt", context).strip()
        body = render_to_string("registration/password_reset_email.html", context)
    send_mail(subject, body, None, [user.email])


def create_owner(*, email: str, password: str) -> User:
    """Create (or promote and reset) the owner account. Idempotent for the same email."""
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_superuser(email=email, password=password)
        record_audit("owner.created", actor_label="system:cli", target=user)
    else:
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        record_audit("owner.updated", actor_label="system:cli", target=user)
    return user
