"""Email into the desk: the signed webhook and the IMAP poller both hand raw messages to
``handle_raw``, which stores every message first (``InboundEmail``), then adds it to its ticket
or opens one — only for people known to Otomat, and only on their own account's tickets.

A reply is matched to its ticket by the Message-IDs in In-Reply-To/References (the desk's own
outgoing ids), else by "[T-000123]" in the subject; either way the sender must be a person of
that ticket's account, so a forged subject cannot write into someone else's ticket. Automatic
mail (auto-replies, bounces, lists) is stored and ignored: the desk never answers robots.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction

from otomat.accounts.models import User
from otomat.support import tickets
from otomat.support.models import InboundEmail, Ticket, TicketMessage

log = logging.getLogger("otomat.support.inbound")
MAX_RAW_BYTES = 10 * 1024 * 1024
SIGNATURE_TOLERANCE = 300  # seconds between the timestamp and now, either way

# Mail for a higher app, named by a tag in its subject like the ticket's "[T-000123]" (the
# project board's cards: "[C-42]"): prefix → handler(reference, user=, body=, message_id=)
# returning (status, detail). Registered in that app's AppConfig.ready(); tried only when the
# message answers no ticket.
SUBJECT_HANDLERS: dict = {}


def register_subject_handler(prefix: str, handler) -> None:
    SUBJECT_HANDLERS[prefix] = handler


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature a sender puts in X-Otomat-Signature (documented in docs/support.md)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def receive_webhook(*, body: bytes, timestamp: str, signature: str) -> tuple[int, str]:
    """Verify and hand on one webhook delivery; returns (HTTP status, detail)."""
    secret = settings.SUPPORT_INBOUND_SECRET
    if not secret:
        return 404, "inbound email is not configured"
    if len(body) > MAX_RAW_BYTES:
        return 413, "message too large"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return 401, "missing or bad timestamp"
    if abs(time.time() - sent_at) > SIGNATURE_TOLERANCE:
        return 401, "timestamp too old or in the future"
    if not hmac.compare_digest(sign(secret, timestamp, body), signature or ""):
        return 401, "signature does not verify"
    return handle_raw(body, source="webhook")


def _record(**fields) -> InboundEmail:
    try:
        with transaction.atomic():
            return InboundEmail.objects.create(**fields)
    except IntegrityError:  # the same Message-ID again (a retried delivery)
        return InboundEmail.objects.get(message_id=fields["message_id"])


def _finish(row: InboundEmail, status: str, detail: str, ticket: Ticket | None = None) -> None:
    InboundEmail.objects.filter(pk=row.pk).update(status=status, detail=detail[:300], ticket=ticket)


def _find_ticket(parsed) -> Ticket | None:
    from otomat.support.mail_in import ticket_reference

    ids = [i.strip("<>") for i in [parsed.in_reply_to, *parsed.references] if i]
    if ids:
        message = (
            TicketMessage.objects.filter(email_message_id__in=ids).select_related("ticket").last()
        )
        if message is not None:
            return message.ticket
    number = ticket_reference(parsed.subject)
    return Ticket.objects.filter(number=number).first() if number else None


def handle_raw(raw: bytes, *, source: str) -> tuple[int, str]:
    """Parse, store and act on one raw email. Never raises for bad input; returns (status,
    detail) — 200 when it was handled (or deliberately ignored), 400 when it was refused."""
    from otomat.support.mail_in import MailError, parse_email

    try:
        parsed = parse_email(raw, max_bytes=MAX_RAW_BYTES)
    except MailError as exc:
        InboundEmail.objects.create(
            source=source, size=len(raw), status=InboundEmail.Status.REJECTED, detail=str(exc)[:300]
        )
        return 400, str(exc)
    message_id = (parsed.message_id or "").strip("<>")[:300]
    if (
        message_id
        and InboundEmail.objects.filter(message_id=message_id)
        .exclude(status=InboundEmail.Status.RECEIVED)
        .exists()
    ):
        return 200, "duplicate: already handled"
    row = _record(
        source=source,
        sender=parsed.sender[:254],
        subject=parsed.subject[:300],
        message_id=message_id,
        size=len(raw),
    )
    if parsed.auto_submitted:
        _finish(row, InboundEmail.Status.IGNORED, "automatic mail (auto-reply, bounce or list)")
        return 200, "ignored: automatic mail"
    user = User.objects.filter(email__iexact=parsed.sender, is_active=True).first()
    account = user.account if user else None
    body = parsed.text.strip() or "(no text)"
    if parsed.rejected_attachments:
        refused = "; ".join(f"{name} ({reason})" for name, reason in parsed.rejected_attachments)
        body += f"\n\n[Attachments not accepted: {refused}]"
    uploads = [tickets.Upload(a.filename, a.data) for a in parsed.attachments]
    ticket = _find_ticket(parsed)
    if ticket is None:
        from otomat.support.mail_in import ticket_reference

        for prefix, handler in SUBJECT_HANDLERS.items():
            reference = ticket_reference(parsed.subject, prefix=prefix)
            if reference:
                status, detail = handler(reference, user=user, body=body, message_id=message_id)
                ok = InboundEmail.Status.TICKET if status == 200 else InboundEmail.Status.REJECTED
                _finish(row, ok, detail)
                return status, detail
    try:
        if ticket is not None and account is not None and ticket.account_id == account.pk:
            result = tickets.customer_message(
                ticket,
                author=user,
                body=body,
                uploads=uploads,
                channel=Ticket.Channel.EMAIL,
                email_message_id=message_id,
            )
        elif ticket is not None:
            _finish(
                row, InboundEmail.Status.REJECTED, "sender is not a person of the ticket's account"
            )
            return 400, "sender may not write to that ticket"
        elif account is not None:
            result = tickets.open_ticket(
                account=account,
                requester=user,
                subject=parsed.subject or "(no subject)",
                body=body,
                channel=Ticket.Channel.EMAIL,
                uploads=uploads,
                email_message_id=message_id,
            )
        else:
            _finish(row, InboundEmail.Status.REJECTED, "unknown sender")
            return 400, "unknown sender"
    except tickets.TicketError as exc:
        _finish(row, InboundEmail.Status.REJECTED, str(exc))
        return 400, str(exc)
    _finish(row, InboundEmail.Status.TICKET, f"added to {result.number}", result)
    return 200, f"added to {result.number}"


def poll_imap() -> int:
    """Fetch unseen mail from the support mailbox (when configured), handle each message and
    mark it seen. Returns how many were handled."""
    if not settings.SUPPORT_IMAP_HOST:
        return 0
    from otomat.support import imap

    handled = 0
    with imap.ImapMailbox(
        host=settings.SUPPORT_IMAP_HOST,
        port=settings.SUPPORT_IMAP_PORT,
        username=settings.SUPPORT_IMAP_USER,
        password=settings.SUPPORT_IMAP_PASSWORD,
        use_ssl=settings.SUPPORT_IMAP_SSL,
    ) as mailbox:
        messages = mailbox.fetch_unseen(limit=50)
        for _uid, raw in messages:
            handle_raw(raw, source="imap")
            handled += 1
        mailbox.mark_seen([uid for uid, _raw in messages])
    return handled
