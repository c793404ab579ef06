"""Announcements to all customers or to the customers of one product — release notes, or a
reminder of rights and obligations — by email and Telegram, with who read them."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from otomat.accounts.models import Account, Membership, User
from otomat.instances.models import Instance
from otomat.support.models import Announcement, AnnouncementReceipt
from otomat.support.tickets import TicketError


def recipients(announcement: Announcement):
    """Every person of every active customer account in the audience."""
    accounts = Account.objects.filter(status=Account.Status.ACTIVE, is_internal=False)
    if announcement.audience == Announcement.Audience.PRODUCT:
        owning = Instance.objects.filter(version__product=announcement.product).exclude(
            state=Instance.State.TERMINATED
        )
        accounts = accounts.filter(pk__in=owning.values("account_id"))
    return User.objects.filter(membership__account__in=accounts, is_active=True).select_related(
        "membership"
    )


def send(announcement: Announcement, *, actor: User) -> int:
    """Send it once; returns the number of people it went to. Raises TicketError."""
    from otomat.notify.services import notify_many

    if not actor.is_staff:
        raise TicketError("Only staff send announcements.")
    if announcement.audience == Announcement.Audience.PRODUCT and announcement.product_id is None:
        raise TicketError("Choose the product whose customers get it.")
    with transaction.atomic():
        locked = Announcement.objects.select_for_update().get(pk=announcement.pk)
        if locked.sent_at is not None:
            raise TicketError("This announcement was already sent.")
        people = list(recipients(locked))
        receipts = AnnouncementReceipt.objects.bulk_create(
            [AnnouncementReceipt(announcement=locked, user=user) for user in people]
        )
        receipts = {r.user_id: r for r in AnnouncementReceipt.objects.filter(announcement=locked)}
        notify_many(
            [
                (
                    user,
                    "support/announcement",
                    {"receipt": receipts[user.pk].pk},
                    f"announce:{locked.pk}:{user.pk}",
                )
                for user in people
            ]
        )
        locked.sent_at = timezone.now()
        locked.save(update_fields=["sent_at"])
    announcement.refresh_from_db()
    return len(people)


def mark_read(receipt: AnnouncementReceipt) -> None:
    AnnouncementReceipt.objects.filter(pk=receipt.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def unread_for(user: User):
    return AnnouncementReceipt.objects.filter(user=user, read_at__isnull=True).select_related(
        "announcement"
    )


__all__ = ["Membership", "mark_read", "recipients", "send", "unread_for"]
