"""Ticket actions: open, reply, note, assign, prioritise, resolve, close, reopen, merge, split,
follow up, rate. One function per action; each records a ``TicketEvent`` and moves the SLA
clocks in the same transaction, and queues the notices to the other side.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from otomat.accounts.models import Account, User
from otomat.billing.numbering import take_number
from otomat.instances.models import Instance
from otomat.support import entitlements, people, sla
from otomat.support.models import (
    Attachment,
    Department,
    Priority,
    Ticket,
    TicketEvent,
    TicketMessage,
    locked_tickets,
)

MAX_BODY = 50_000
MAX_ATTACHMENTS = 10
# Magic bytes → content type. What the client claims is never trusted.
SNIFF = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
]
S = Ticket.Status


class TicketError(Exception):
    """A refused ticket action; the message is shown to the person who asked."""


@dataclass(frozen=True)
class Upload:
    """An attachment on its way in (from a form, an email or Telegram)."""

    filename: str
    data: bytes


def sniff(data: bytes) -> str | None:
    """The content type of ``data`` if it is one the desk accepts, else None."""
    for magic, content_type in SNIFF:
        if data.startswith(magic):
            return content_type
    if b"\0" not in data[:4096]:
        try:
            data[:65536].decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError:
            return None
    return None


def check_uploads(uploads: list[Upload]) -> list[tuple[Upload, str]]:
    """(upload, content type) for each acceptable upload; raises TicketError naming the first
    one refused (too many, too large, or not a PDF, image, text or zip file)."""
    if len(uploads) > MAX_ATTACHMENTS:
        raise TicketError(f"At most {MAX_ATTACHMENTS} files per message.")
    checked = []
    limit = settings.SUPPORT_ATTACHMENT_MAX_BYTES
    for upload in uploads:
        if len(upload.data) > limit:
            raise TicketError(
                f"{upload.filename} is too large ({limit // (1024 * 1024)} MB at most)."
            )
        if not upload.data:
            raise TicketError(f"{upload.filename} is empty.")
        content_type = sniff(upload.data)
        if content_type is None:
            raise TicketError(
                f"{upload.filename}: only PDF, PNG, JPEG, GIF, text and zip files can be attached."
            )
        checked.append((upload, content_type))
    return checked


def _clean_filename(name: str) -> str:
    name = (name or "file").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip() or "file"
    return name[:150]


def _store(message: TicketMessage, checked: list[tuple[Upload, str]]) -> None:
    for upload, content_type in checked:
        attachment = Attachment(
            message=message,
            filename=_clean_filename(upload.filename),
            content_type=content_type,
            size=len(upload.data),
        )
        digest = hashlib.sha256(upload.data).hexdigest()[:16]
        attachment.file.save(digest, ContentFile(upload.data), save=False)
        attachment.save()


def _customer_message(
    ticket: Ticket,
    author: User | None,
    body: str,
    channel: str,
    now: datetime,
    email_message_id: str,
    checked: list[tuple[Upload, str]],
) -> TicketMessage:
    """Record what the customer wrote (``author`` None: a sender known only by e-mail)."""
    message = TicketMessage.objects.create(
        ticket=ticket,
        kind=TicketMessage.Kind.CUSTOMER,
        author=author,
        author_label=author.email if author else "",
        body=body,
        channel=channel,
        created_at=now,
        email_message_id=email_message_id[:300],
    )
    _store(message, checked)
    return message


def _event(ticket: Ticket, kind: str, detail: str, *, actor: User | None = None, label: str = ""):
    TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        detail=detail[:300],
        actor=actor if actor and actor.is_authenticated else None,
        actor_label=label,
    )


def _number() -> str:
    from otomat.billing.models import InvoiceSeries

    InvoiceSeries.objects.get_or_create(
        code="ticket", defaults={"prefix": "T", "format": "{prefix}-{number:06d}", "yearly": False}
    )
    return take_number("ticket")


def _clean_body(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise TicketError("Write a message.")
    if len(body) > MAX_BODY:
        raise TicketError(f"The message is too long ({MAX_BODY} characters at most).")
    return body


def default_department() -> Department:
    department = Department.objects.filter(is_default=True).first() or Department.objects.first()
    if department is None:
        department = Department.objects.create(
            name="Support", slug="support", hours={"mon-fri": "09:00-17:00"}, is_default=True
        )
    return department


# -- opening and talking ------------------------------------------------------------------


def open_ticket(
    *,
    account: Account,
    requester: User | None,
    subject: str,
    body: str,
    instance: Instance | None = None,
    kind: str = Ticket.Kind.QUESTION,
    priority: str = Priority.NORMAL,
    department: Department | None = None,
    channel: str = Ticket.Channel.WEB,
    uploads: list[Upload] | None = None,
    email_message_id: str = "",
    follow_up_of: Ticket | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Open a ticket for ``account``; its entitlement decides whether it uses a revision or is
    out of scope (then staff answer with a paid quote). Raises TicketError, storing nothing."""
    now = now or timezone.now()
    if account.status != Account.Status.ACTIVE:
        raise TicketError(
            account.closed_message or "This account is closed; no new tickets can be opened."
        )
    subject = " ".join((subject or "").split())[:200]
    if not subject:
        raise TicketError("Write a subject.")
    body = _clean_body(body)
    if kind not in Ticket.Kind.values:
        raise TicketError("Choose what the ticket is about.")
    if priority not in Priority.values:
        raise TicketError("Choose a priority.")
    if priority == Priority.URGENT and not (requester and requester.is_staff):
        priority = Priority.HIGH  # customers cannot page the seller at night by themselves
    if instance is not None and instance.account_id != account.pk:
        raise TicketError("That instance is not yours.")
    checked = check_uploads(uploads or [])
    scope = entitlements.classify(instance=instance, kind=kind, now=now)
    with transaction.atomic():
        ticket = Ticket(
            number=_number(),
            account=account,
            requester=requester,
            instance=instance,
            product=instance.version.product if instance else None,
            department=department or default_department(),
            subject=subject,
            kind=kind,
            priority=priority,
            channel=channel,
            counts_as_revision=scope["counts_as_revision"],
            out_of_scope=scope["out_of_scope"],
            created_at=now,
            updated_at=now,
            last_customer_at=now,
            split_from=follow_up_of,
        )
        ticket.sla_policy = sla.policy_for(ticket)
        sla.customer_wrote(ticket, now)
        ticket.save()
        _customer_message(ticket, requester, body, channel, now, email_message_id, checked)
        detail = f"opened by {requester.email if requester else 'email'} via {channel}"
        if follow_up_of:
            detail += f", following up {follow_up_of.number}"
        _event(ticket, "opened", detail, actor=requester)
        if scope["out_of_scope"]:
            _event(ticket, "out_of_scope", f"outside what was bought: {scope['reason']}")
        if scope["counts_as_revision"]:
            ent = entitlements.for_instance(instance)
            _event(
                ticket, "revision", f"uses revision {ent.revisions_used} of {ent.revision_quota}"
            )
        from otomat.support import notices

        notices.ticket_opened(ticket)
    return ticket


def customer_message(
    ticket: Ticket,
    *,
    author: User | None,
    body: str,
    uploads: list[Upload] | None = None,
    channel: str = Ticket.Channel.WEB,
    email_message_id: str = "",
    now: datetime | None = None,
) -> Ticket:
    """A customer writes on a ticket. A resolved ticket reopens; a closed (or merged) one gets a
    follow-up ticket instead, which is returned."""
    now = now or timezone.now()
    body = _clean_body(body)
    if ticket.status == S.MERGED and ticket.merged_into_id:
        ticket = ticket.merged_into
    if ticket.status == S.CLOSED:
        return open_ticket(
            account=ticket.account,
            requester=author,
            subject=f"Follow-up: {ticket.subject}"[:200],
            body=body,
            instance=ticket.instance,
            kind=ticket.kind,
            priority=ticket.priority,
            department=ticket.department,
            channel=channel,
            uploads=uploads,
            email_message_id=email_message_id,
            follow_up_of=ticket,
            now=now,
        )
    checked = check_uploads(uploads or [])
    with transaction.atomic():
        ticket = locked_tickets().get(pk=ticket.pk)
        message = _customer_message(ticket, author, body, channel, now, email_message_id, checked)
        previous = ticket.status
        if ticket.status in (S.PENDING, S.RESOLVED):
            ticket.status = S.OPEN  # a paid quote still waits for its payment
            if previous == S.RESOLVED:
                ticket.resolved_at = None
                _event(ticket, "reopened", "the customer wrote again", actor=author)
        ticket.last_customer_at = ticket.updated_at = now
        sla.customer_wrote(ticket, now)
        if ticket.status != previous:
            sla.status_changed(ticket, now)
        ticket.save()
        from otomat.support import notices

        notices.customer_wrote(ticket, message)
    return ticket


def staff_reply(
    ticket: Ticket,
    *,
    staff: User,
    body: str,
    internal: bool = False,
    status: str | None = None,
    uploads: list[Upload] | None = None,
    now: datetime | None = None,
) -> TicketMessage:
    """Staff answer (``internal``: a note only staff see). A public answer stops the response
    clock and, unless ``status`` says otherwise, hands the move to the customer."""
    now = now or timezone.now()
    if not staff.is_staff:
        raise TicketError("Only staff answer tickets.")
    body = _clean_body(body)
    checked = check_uploads(uploads or [])
    if status is not None and status not in (S.OPEN, S.PENDING, S.RESOLVED, S.AWAITING_PAYMENT):
        raise TicketError("Choose open, waiting on the customer, or resolved.")
    with transaction.atomic():
        ticket = locked_tickets().select_related("sla_policy", "department").get(pk=ticket.pk)
        if ticket.status in (S.CLOSED, S.MERGED):
            raise TicketError("This ticket is closed.")
        message = TicketMessage.objects.create(
            ticket=ticket,
            kind=TicketMessage.Kind.NOTE if internal else TicketMessage.Kind.STAFF,
            author=staff,
            author_label=people.display_name(staff),
            body=body,
            created_at=now,
        )
        _store(message, checked)
        if not internal:
            ticket.last_staff_at = ticket.updated_at = now
            sla.staff_answered(ticket, now, actor=staff)
            new_status = status or (
                S.AWAITING_PAYMENT if ticket.status == S.AWAITING_PAYMENT else S.PENDING
            )
            _set_status(ticket, new_status, now, actor=staff)
            if ticket.assignee_id is None:
                ticket.assignee = staff
            from otomat.support import notices

            notices.staff_replied(ticket, message)
        ticket.save()
    return message


def _set_status(ticket: Ticket, status: str, now: datetime, *, actor: User | None) -> None:
    if status == ticket.status:
        return
    previous = ticket.get_status_display()
    ticket.status = status
    if status == S.RESOLVED:
        ticket.resolved_at = now
    if status == S.CLOSED:
        ticket.closed_at = now
    sla.status_changed(ticket, now)
    _event(ticket, "status", f"{previous} → {ticket.get_status_display()}", actor=actor)


def set_status(ticket: Ticket, status: str, *, actor: User, now: datetime | None = None) -> Ticket:
    """Resolve, close or reopen (staff any; the customer may resolve or reopen their own)."""
    now = now or timezone.now()
    allowed = {S.OPEN, S.PENDING, S.RESOLVED, S.CLOSED} if actor.is_staff else {S.RESOLVED, S.OPEN}
    if status not in allowed:
        raise TicketError("That status cannot be set here.")
    with transaction.atomic():
        ticket = locked_tickets().select_related("sla_policy", "department").get(pk=ticket.pk)
        if ticket.status == S.MERGED or (ticket.status == S.CLOSED and not actor.is_staff):
            raise TicketError("This ticket is closed.")
        _set_status(ticket, status, now, actor=actor)
        ticket.updated_at = now
        ticket.save()
        if status == S.RESOLVED:
            from otomat.support import notices

            notices.resolved(ticket)
    return ticket


def assign(ticket: Ticket, assignee: User | None, *, actor: User) -> Ticket:
    if assignee is not None and not assignee.is_staff:
        raise TicketError("Tickets are assigned to staff.")
    with transaction.atomic():
        ticket = locked_tickets().get(pk=ticket.pk)
        ticket.assignee = assignee
        ticket.save(update_fields=["assignee"])
        _event(
            ticket,
            "assigned",
            f"assigned to {assignee.email}" if assignee else "unassigned",
            actor=actor,
        )
    return ticket


def set_department(
    ticket: Ticket, department: Department, *, actor: User, now: datetime | None = None
) -> Ticket:
    """Move the ticket to another department; its SLA clocks continue in that department's
    business hours (time already used is kept)."""
    now = now or timezone.now()
    with transaction.atomic():
        ticket = locked_tickets().select_related("department", "sla_policy").get(pk=ticket.pk)
        if ticket.department_id == department.pk:
            return ticket
        old = ticket.department.name
        cal = sla.calendar_for(ticket.department)
        if ticket.resolution_running_since:
            sla._pause_resolution(ticket, now, cal)
        ticket.department = department
        cal = sla.calendar_for(department)
        if ticket.sla_policy and ticket.response_target and ticket.response_since:
            from datetime import timedelta

            minutes = sla._minutes(ticket.sla_policy, "response", ticket.response_target)
            ticket.response_due = cal.add(ticket.response_since, timedelta(minutes=minutes))
        if ticket.sla_policy:
            sla._resume_resolution(ticket, now, cal)
        sla.reschedule(ticket, now)
        ticket.save()
        _event(ticket, "department", f"{old} → {department.name}", actor=actor)
    return ticket


def set_priority(
    ticket: Ticket, priority: str, *, actor: User, now: datetime | None = None
) -> Ticket:
    """Change the priority; the SLA targets follow the policy for the new priority, counting
    the time already used."""
    now = now or timezone.now()
    if priority not in Priority.values:
        raise TicketError("Choose a priority.")
    with transaction.atomic():
        ticket = locked_tickets().select_related("department", "sla_policy").get(pk=ticket.pk)
        old = ticket.get_priority_display()
        ticket.priority = priority
        ticket.sla_policy = sla.policy_for(ticket)
        cal = sla.calendar_for(ticket.department)
        if ticket.sla_policy and ticket.response_target and ticket.response_since:
            from datetime import timedelta

            minutes = sla._minutes(ticket.sla_policy, "response", ticket.response_target)
            ticket.response_due = cal.add(ticket.response_since, timedelta(minutes=minutes))
        if ticket.sla_policy and ticket.resolution_running_since:
            sla._pause_resolution(ticket, now, cal)
            sla._resume_resolution(ticket, now, cal)
        sla.reschedule(ticket, now)
        ticket.save()
        _event(ticket, "priority", f"{old} → {ticket.get_priority_display()}", actor=actor)
    return ticket


# -- merge, split, rate ------------------------------------------------------------------


def merge(
    sources: list[Ticket], into: Ticket, *, actor: User, now: datetime | None = None
) -> Ticket:
    """Merge tickets of one customer account asked twice (by two people of the same company,
    say) into ``into``: their messages move, the sources close as merged. Tickets of different
    customers are linked to a product bug instead. Raises TicketError."""
    now = now or timezone.now()
    if not actor.is_staff:
        raise TicketError("Only staff merge tickets.")
    sources = [s for s in sources if s.pk != into.pk]
    if not sources:
        raise TicketError("Choose at least one other ticket to merge.")
    if any(s.account_id != into.account_id for s in sources):
        raise TicketError(
            "Tickets of different customers cannot be merged; link them to a product bug."
        )
    with transaction.atomic():
        for source in sources:
            source = locked_tickets().select_related("sla_policy", "department").get(pk=source.pk)
            if source.status == S.MERGED:
                continue
            TicketMessage.objects.filter(ticket=source).update(ticket=into)
            source.merged_into = into
            _set_status(source, S.MERGED, now, actor=actor)
            source.save()
            _event(into, "merged", f"{source.number} merged into this ticket", actor=actor)
        into.updated_at = now
        into.save(update_fields=["updated_at"])
    return into


def split(ticket: Ticket, message_ids: list[int], *, subject: str, actor: User) -> Ticket:
    """Move some customer messages to a new ticket (two questions asked in one)."""
    if not actor.is_staff:
        raise TicketError("Only staff split tickets.")
    messages = list(ticket.messages.filter(pk__in=message_ids))
    if not messages or len(messages) == ticket.messages.count():
        raise TicketError("Choose some, not all, of the messages to move.")
    first = min(messages, key=lambda m: (m.created_at, m.pk))
    with transaction.atomic():
        new = open_ticket(
            account=ticket.account,
            requester=first.author or ticket.requester,
            subject=subject or f"Split from {ticket.number}",
            body=first.body,
            instance=ticket.instance,
            kind=ticket.kind,
            priority=ticket.priority,
            department=ticket.department,
            channel=first.channel,
            now=first.created_at,
        )
        new.split_from = ticket
        new.save(update_fields=["split_from"])
        # The first message was copied by open_ticket; the rest move as they are.
        TicketMessage.objects.filter(pk__in=[m.pk for m in messages if m.pk != first.pk]).update(
            ticket=new
        )
        Attachment.objects.filter(message=first).update(
            message=new.messages.order_by("created_at", "id").first()
        )
        first.delete()
        _event(ticket, "split", f"messages moved to {new.number}", actor=actor)
        _event(new, "split", f"split from {ticket.number}", actor=actor)
    return new


def rate(ticket: Ticket, *, user: User, rating: int, comment: str = "") -> Ticket:
    """The customer rates a resolved or closed ticket (1–5), once or again to change it."""
    if user.account != ticket.account:
        raise TicketError("Only the customer rates a ticket.")
    if ticket.status not in (S.RESOLVED, S.CLOSED):
        raise TicketError("A ticket is rated once it is resolved.")
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise TicketError("Rate from 1 to 5.")
    ticket.rating, ticket.rating_comment = rating, (comment or "").strip()[:500]
    ticket.save(update_fields=["rating", "rating_comment"])
    _event(ticket, "rated", f"rated {rating}/5", actor=user)
    return ticket


def history_for(account: Account, *, exclude: Ticket | None = None, limit: int = 20):
    """The account's earlier tickets — every member of a company sees who asked what."""
    qs = Ticket.objects.filter(account=account).exclude(status=S.MERGED).select_related("requester")
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return qs.order_by("-created_at")[:limit]
