"""An email backend that sends nothing: it stores every message as an ``OutboxMessage`` for
staff to read at /notify/outbox/. The main command selects it when no mail server is
configured (``OTOMAT_EMAIL_BACKEND=otomat.notify.outbox.OutboxBackend``)."""

from __future__ import annotations

from email.message import Message

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

BACKEND = "otomat.notify.outbox.OutboxBackend"
KEEP = 5000  # the newest messages kept; older ones go (checked every PRUNE_EVERY messages)
PRUNE_EVERY = 100


def in_use() -> bool:
    return settings.EMAIL_BACKEND == BACKEND


def _payload_text(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    return payload.decode(part.get_content_charset() or "utf-8", "replace")


def _parts(message: EmailMessage) -> tuple[str, str, list[dict]]:
    """The text body, the HTML body and the attachments' names, types and sizes, read from the
    MIME message Django builds (so alternatives and attachments of every kind are covered)."""
    mime = message.message()
    text = html = ""
    attachments: list[dict] = []
    for part in mime.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        content_type = part.get_content_type()
        if filename or disposition == "attachment":
            attachments.append(
                {
                    "filename": filename or "",
                    "content_type": content_type,
                    "size": len(part.get_payload(decode=True) or b""),
                }
            )
        elif content_type == "text/plain" and not text:
            text = _payload_text(part)
        elif content_type == "text/html" and not html:
            html = _payload_text(part)
    return text, html, attachments


class OutboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages: list[EmailMessage]) -> int:
        from otomat.notify.models import OutboxMessage

        stored = 0
        for message in email_messages:
            if not message.recipients():
                continue
            try:
                text, html, attachments = _parts(message)
                kept = OutboxMessage.objects.create(
                    from_email=str(message.from_email or ""),
                    to=[str(a) for a in message.to],
                    cc=[str(a) for a in message.cc],
                    bcc=[str(a) for a in message.bcc],
                    reply_to=[str(a) for a in message.reply_to],
                    subject=str(message.subject or "")[:500],
                    text_body=text,
                    html_body=html,
                    headers={str(k): str(v) for k, v in (message.extra_headers or {}).items()},
                    attachments=attachments,
                    raw=message.message().as_bytes(linesep="\r\n"),
                )
            except Exception:
                if not self.fail_silently:
                    raise
                continue
            stored += 1
            if kept.pk % PRUNE_EVERY == 0:
                prune()
        return stored


def prune(keep: int | None = None) -> int:
    """Delete all but the newest ``keep`` (default KEEP) messages; returns how many went."""
    from otomat.notify.models import OutboxMessage

    keep = KEEP if keep is None else keep
    newest = OutboxMessage.objects.order_by("-id").values_list("id", flat=True)[keep : keep + 1]
    if not newest:
        return 0
    deleted, _ = OutboxMessage.objects.filter(id__lte=newest[0]).delete()
    return deleted
