"""The business actions on webhook endpoints: subscribe, change, roll the secret, send a test,
redeliver, delete. Each checks who may do it and writes the audit trail."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from otomat.accounts.models import User
from otomat.accounts.services import record_audit
from otomat.hooks import delivery as sending
from otomat.hooks.models import EVENT_TYPES, Delivery, Endpoint, new_secret
from otomat.lib import http

MAX_ENDPOINTS_PER_ACCOUNT = 20


def events_for(user: User) -> list[tuple[str, str]]:
    """(type, label) of the events ``user`` may subscribe to."""
    return [
        (name, str(label))
        for name, (label, audience) in EVENT_TYPES.items()
        if user.is_staff or audience == "all"
    ]


def endpoints_for(user: User):
    """The endpoints ``user`` manages: staff the owner's (and see every customer's), a customer
    their account's."""
    rows = Endpoint.objects.select_related("account")
    if user.is_staff:
        return rows
    account = user.account
    return rows.filter(account=account) if account else rows.none()


def can_manage(user: User, endpoint: Endpoint) -> bool:
    if endpoint.account_id is None:
        return user.is_staff
    return user.is_staff or (user.account is not None and user.account.pk == endpoint.account_id)


def validate_url(url: str) -> str:
    """An address Otomat may POST to: http(s), a host name, no credentials, and (unless
    ``OTOMAT_HTTP_ALLOW_PRIVATE``) resolving to public addresses only."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError(_("This is not a valid URL.")) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(_("Use an http:// or https:// address with a host name."))
    if parts.username or parts.password:
        raise ValidationError(_("Leave the user name and password out of the address."))
    if settings.HTTP_ALLOW_PRIVATE:
        return url
    try:
        found = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ValidationError(
            _("The host name %(host)s does not resolve.") % {"host": parts.hostname}
        ) from None
    for *_rest, address in found:
        if http.address_problem(address[0]):
            raise ValidationError(
                _(
                    "%(host)s is a private or local address; webhooks are only sent to public "
                    "addresses."
                )
                % {"host": parts.hostname}
            )
    return url


def _clean_events(user: User, events: list[str]) -> list[str]:
    allowed = {name for name, _label in events_for(user)}
    chosen = sorted(set(events))
    if not chosen:
        raise ValidationError(_("Choose at least one event."))
    unknown = [name for name in chosen if name not in allowed]
    if unknown:
        raise ValidationError(_("Unknown event: %(name)s.") % {"name": ", ".join(unknown)})
    return chosen


@transaction.atomic
def create_endpoint(*, user: User, url: str, events: list[str], description: str = "") -> Endpoint:
    account = None if user.is_staff else user.account
    if not user.is_staff and account is None:
        raise PermissionDenied
    if (
        account is not None
        and Endpoint.objects.filter(account=account).count() >= MAX_ENDPOINTS_PER_ACCOUNT
    ):
        raise ValidationError(
            _("An account can have at most %(count)d webhook URLs.")
            % {"count": MAX_ENDPOINTS_PER_ACCOUNT}
        )
    endpoint = Endpoint.objects.create(
        account=account,
        url=validate_url(url),
        events=_clean_events(user, events),
        description=description.strip()[:200],
        signing={"secret": new_secret()},
        created_by=user,
    )
    record_audit(
        "webhook.created",
        actor=user,
        account=account,
        target=endpoint,
        data={"events": endpoint.events},
    )
    return endpoint


@transaction.atomic
def update_endpoint(
    endpoint: Endpoint,
    *,
    user: User,
    url: str,
    events: list[str],
    description: str = "",
    is_active: bool = True,
) -> Endpoint:
    if not can_manage(user, endpoint):
        raise PermissionDenied
    endpoint.url = validate_url(url)
    endpoint.events = _clean_events(user, events)
    endpoint.description = description.strip()[:200]
    if is_active and not endpoint.is_active:
        endpoint.consecutive_failures = 0
        endpoint.disabled_reason = ""
    endpoint.is_active = is_active
    endpoint.save()
    record_audit(
        "webhook.updated",
        actor=user,
        account=endpoint.account,
        target=endpoint,
        data={"events": endpoint.events, "active": is_active},
    )
    return endpoint


def roll_secret(endpoint: Endpoint, *, user: User) -> Endpoint:
    if not can_manage(user, endpoint):
        raise PermissionDenied
    endpoint.signing = {"secret": new_secret()}
    endpoint.save(update_fields=["signing", "updated_at"])
    record_audit("webhook.secret_rolled", actor=user, account=endpoint.account, target=endpoint)
    return endpoint


def send_test(endpoint: Endpoint, *, user: User) -> Delivery:
    if not can_manage(user, endpoint):
        raise PermissionDenied
    row = sending.ping(endpoint)
    record_audit(
        "webhook.test_sent",
        actor=user,
        account=endpoint.account,
        target=endpoint,
        data={"delivered": row.status == Delivery.Status.DELIVERED},
    )
    return row


def redeliver(row: Delivery, *, user: User) -> Delivery:
    if not can_manage(user, row.endpoint):
        raise PermissionDenied
    row = sending.redeliver(row)
    record_audit(
        "webhook.redelivered",
        actor=user,
        account=row.endpoint.account,
        target=row.endpoint,
        data={"event": str(row.event_id), "delivered": row.status == Delivery.Status.DELIVERED},
    )
    return row


@transaction.atomic
def delete_endpoint(endpoint: Endpoint, *, user: User) -> None:
    if not can_manage(user, endpoint):
        raise PermissionDenied
    record_audit(
        "webhook.deleted",
        actor=user,
        account=endpoint.account,
        target=endpoint,
        data={"url": endpoint.url},
    )
    endpoint.delete()
