"""Support's notices (email and the owner's Telegram bot), queued as references and rendered
at delivery in each person's language. Staff replies go out as email replies in the ticket's
thread: the subject carries "[T-000123]", and Message-ID / In-Reply-To / References chain the
messages so the customer's mail program shows one conversation and their answer comes back to
the same ticket."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.urls import reverse

from otomat.accounts.models import Account, User
from otomat.notify.services import notify_many
from otomat.support.models import (
    AnnouncementReceipt,
    ProductBug,
    Ticket,
    TicketMessage,
)


def _domain() -> str:
    return settings.SUPPORT_FROM_EMAIL.rpartition("@")[2] or "otomat.local"


def _thread_headers(ticket: Ticket, message: TicketMessage | None) -> dict:
    """Headers that keep an email in the ticket's thread; records the new Message-ID."""
    ids = [
        f"<{mid.strip('<>')}>"
        for mid in ticket.messages.exclude(email_message_id="").values_list(
            "email_message_id", flat=True
        )
    ][-20:]
    headers = {"Reply-To": settings.SUPPORT_FROM_EMAIL, "From": settings.SUPPORT_FROM_EMAIL}
    if message is not None:
        key = f"{ticket.number.lower()}.{secrets.token_hex(8)}@{_domain()}"
        TicketMessage.objects.filter(pk=message.pk).update(email_message_id=key)
        headers["Message-ID"] = f"<{key}>"
    if ids:
        headers["In-Reply-To"] = ids[-1]
        headers["References"] = " ".join(ids)
    return headers


def _staff_people(ticket: Ticket) -> list[User]:
    if ticket.assignee_id and ticket.assignee.is_active:
        return [ticket.assignee]
    return list(User.objects.filter(is_staff=True, is_active=True)[:20])


def _owners() -> list[User]:
    return list(User.objects.filter(is_superuser=True, is_active=True))


def ticket_opened(ticket: Ticket) -> None:
    if ticket.requester is not None:
        notify_many(
            [
                (
                    ticket.requester,
                    "support/ticket_opened",
                    {"ticket": ticket.pk},
                    f"support:opened:{ticket.pk}",
                    _thread_headers(ticket, None),
                )
            ]
        )


def customer_wrote(ticket: Ticket, message: TicketMessage) -> None:
    notify_many(
        [
            (
                person,
                "support/customer_wrote",
                {"ticket": ticket.pk, "message": message.pk},
                f"support:wrote:{message.pk}:{person.pk}",
            )
            for person in _staff_people(ticket)
        ]
    )


def staff_replied(ticket: Ticket, message: TicketMessage) -> None:
    people = [ticket.requester] if ticket.requester and ticket.requester.is_active else []
    if not people and ticket.account.responsible:
        people = [ticket.account.responsible]
    headers = _thread_headers(ticket, message)
    notify_many(
        [
            (
                person,
                "support/staff_replied",
                {"ticket": ticket.pk, "message": message.pk},
                f"support:reply:{message.pk}:{person.pk}",
                headers,
            )
            for person in people
        ]
    )


def resolved(ticket: Ticket) -> None:
    if ticket.requester is not None:
        notify_many(
            [
                (
                    ticket.requester,
                    "support/resolved",
                    {"ticket": ticket.pk},
                    f"support:resolved:{ticket.pk}:{ticket.resolved_at:%s}",
                    _thread_headers(ticket, None),
                )
            ]
        )


def sla_stage(ticket: Ticket, *, clock: str, stage: str, detail: str) -> None:
    people = (
        _staff_people(ticket)
        if stage == "warn"
        else _owners() + ([ticket.assignee] if ticket.assignee_id else [])
    )
    seen = set()
    items = []
    for person in people:
        if person.pk in seen:
            continue
        seen.add(person.pk)
        items.append(
            (
                person,
                "support/sla",
                {"ticket": ticket.pk, "stage": stage, "detail": detail},
                f"support:sla:{ticket.pk}:{clock}:{stage}:{ticket.response_since or ticket.resolution_running_since}:{person.pk}",
            )
        )
    notify_many(items)


def fix_released(bug: ProductBug, account: Account, instances: list) -> None:
    people = {}
    for ticket in bug.tickets.filter(account=account).select_related("requester"):
        if ticket.requester and ticket.requester.is_active:
            people[ticket.requester.pk] = ticket.requester
    if account.responsible:
        people.setdefault(account.responsible.pk, account.responsible)
    notify_many(
        [
            (
                person,
                "support/fix_released",
                {"bug": bug.pk, "instances": [str(i.pk) for i in instances]},
                f"support:fix:{bug.pk}:{person.pk}",
            )
            for person in people.values()
        ]
    )


def load_context(kind: str, refs: dict) -> dict:
    """The template context of a queued support notice."""
    base = settings.BASE_URL
    context: dict = {}
    if "ticket" in refs:
        ticket = Ticket.objects.select_related("account", "instance", "requester").get(
            pk=refs["ticket"]
        )
        context |= {
            "ticket": ticket,
            "account": ticket.account,
            "ticket_url": base + reverse("support:ticket", args=[ticket.number]),
            "staff_url": base + reverse("support:ticket", args=[ticket.number]),
        }
    if "message" in refs:
        from otomat.support.people import signature

        message = TicketMessage.objects.select_related("author").get(pk=refs["message"])
        context |= {"message": message, "signature": signature(message)}
    if "stage" in refs:
        context |= {"stage": refs["stage"], "detail": refs.get("detail", "")}
    if "bug" in refs:
        bug = ProductBug.objects.select_related("product", "fixed_in").get(pk=refs["bug"])
        from otomat.instances.models import Instance

        instances = list(Instance.objects.filter(pk__in=refs.get("instances", [])))
        context |= {
            "bug": bug,
            "upgrades": [(i, base + reverse("instances:detail", args=[i.pk])) for i in instances],
        }
    if "receipt" in refs:
        receipt = AnnouncementReceipt.objects.select_related("announcement").get(pk=refs["receipt"])
        context |= {
            "announcement": receipt.announcement,
            "read_url": base + reverse("support:announcement_read", args=[receipt.token]),
        }
    return context
