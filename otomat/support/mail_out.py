"""Outbound support email (plain Python, no database): staff replies and the desk's automatic
acknowledgements, as stdlib ``EmailMessage`` objects ready for any SMTP sender.

Threading: every message gets ``Message-ID: <{message_key}@{message_id_domain}>`` (store the key
with the ticket message; inbound replies name it in In-Reply-To/References), answers the given
``in_reply_to`` and carries ``References`` (deduplicated, at most ``MAX_REFERENCES``). The
subject carries the ticket tag "[T-000123]" exactly once.

Every header value is made single-line before it is set (CR/LF and control characters become
spaces), so names and subjects from customers cannot inject headers; addresses that are not
plain ``local@domain`` raise ``ValueError`` instead of being sent somewhere unexpected.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from otomat.support.mail_in import safe_filename

MAX_REFERENCES = 20
MAX_SUBJECT = 250
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_DOMAIN = r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){0,8}"
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]{1,64}@" + _DOMAIN)
_MESSAGE_KEY = re.compile(r"[A-Za-z0-9_-]{1,200}(\.[A-Za-z0-9_-]{1,200})*")
_MESSAGE_ID = re.compile(r"[^<>\s\x00-\x1f\x7f]{1,250}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")
# "Re:", "RE[2]:", "Fwd:", "FW:", "AW:", "SV:", "Odp:" (Polish), "PD:" (Polish forward),
# "Balas:" (Indonesian), "TR:" and "WG:" — stacked any number of times.
_PREFIXES = re.compile(r"^(\s*(re|fwd?|aw|sv|odp|pd|balas|tr|wg)\s*(\[\d+\])?\s*:)+\s*", re.I)


def new_message_key() -> str:
    """A unique, random, URL-safe key for the left part of a Message-ID (and for URLs)."""
    return secrets.token_urlsafe(24)


def _clean(value: str) -> str:
    """A header value on one line: CR/LF and other control characters become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def _address(value: str, what: str) -> Address:
    """ "Name <addr>" or "addr" as a header Address. The address is whatever the last <…>
    holds (or the whole value) and must be a plain local@domain; everything before it is
    the name, quoted on output. (``email.utils.parseaddr`` is not used: it can read
    "Name Bcc: victim@x <customer@y>" as victim@x.)"""
    value = _clean(value)
    found = re.fullmatch(r"(.*?)\s*<([^<>]*)>", value)
    name, addr = (found[1].strip().strip('"'), found[2].strip()) if found else ("", value)
    if not _ADDRESS.fullmatch(addr):
        raise ValueError(f"{what}: not a usable email address: {value[:100]!r}")
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name[:100], username=local, domain=domain.lower())


def _message_id(value: str) -> str:
    """A message id as "<id>", accepting it with or without brackets; "" if it is unusable."""
    bare = value.strip().strip("<>")
    return f"<{bare}>" if _MESSAGE_ID.fullmatch(bare) else ""


def tag_subject(subject: str, ticket_number: str, *, reply: bool = True) -> str:
    """The subject with the ticket tag exactly once: "Re: [T-000123] Printer broken".

    Any copies of the tag and any stacked reply/forward prefixes ("Re: Fwd: RE:") are removed
    first, so the subject does not grow as the thread goes back and forth; ``reply`` adds a
    single "Re: " in front."""
    tag = f"[{_clean(ticket_number)}]"
    core = re.sub(rf"\[\s*{re.escape(tag[1:-1])}\s*\]", " ", _clean(subject), flags=re.I)
    core = _PREFIXES.sub("", _clean(core))  # after the tag: "Re: [T-1] Re: x" -> "x"
    tagged = f"{tag} {core[:MAX_SUBJECT]}".strip()
    return f"Re: {tagged}" if reply else tagged


def _build(
    *,
    ticket_number: str,
    subject: str,
    body: str,
    to: Sequence[str],
    from_addr: str,
    reply_to: str,
    message_id_domain: str,
    message_key: str,
    in_reply_to: str,
    references: Iterable[str],
    attachments: Iterable[tuple[str, str, bytes]],
) -> EmailMessage:
    if not _MESSAGE_KEY.fullmatch(message_key):
        raise ValueError("message_key must be URL-safe characters (see new_message_key())")
    if not re.fullmatch(_DOMAIN, message_id_domain):
        raise ValueError(f"message_id_domain is not a domain name: {message_id_domain[:100]!r}")
    recipients = [_address(addr, "to") for addr in to]
    if not recipients:
        raise ValueError("to: at least one recipient is needed")

    parent = _message_id(in_reply_to)
    # RFC 5322: the parent's References followed by the parent's own id. When trimming, keep
    # the thread's root (the first id) and the most recent ones.
    ids = [i for i in map(_message_id, [*references, parent]) if i]
    ids = list(dict.fromkeys(ids))
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]

    msg = EmailMessage()
    msg["Subject"] = tag_subject(subject, ticket_number, reply=bool(parent))
    msg["From"] = _address(from_addr, "from_addr")
    msg["To"] = recipients
    if reply_to:
        msg["Reply-To"] = _address(reply_to, "reply_to")
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{message_key}@{message_id_domain.lower()}>"
    if parent:
        msg["In-Reply-To"] = parent
    if ids:
        msg["References"] = " ".join(ids)
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)
    # Quoted-printable keeps non-ASCII text safe through any relay, 8BITMIME or not.
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    for filename, content_type, data in attachments:
        content_type = content_type.strip().lower()
        if not _CONTENT_TYPE.fullmatch(content_type) or content_type.startswith("multipart/"):
            content_type = "application/octet-stream"
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(
            bytes(data), maintype=maintype, subtype=subtype, filename=safe_filename(filename)
        )
    return msg


def build_reply(
    *,
    ticket_number: str,
    subject: str,
    body: str,
    to: Sequence[str],
    from_addr: str,
    reply_to: str,
    message_id_domain: str,
    message_key: str,
    in_reply_to: str = "",
    references: Iterable[str] = (),
    attachments: Iterable[tuple[str, str, bytes]] = (),
) -> EmailMessage:
    """A staff reply on a ticket: plain UTF-8 text, the ticket tag in the subject ("Re: " when
    ``in_reply_to`` is given), threading headers, optional (filename, content type, bytes)
    attachments. ``in_reply_to``/``references`` take ids with or without angle brackets;
    unusable ids are dropped. Staff replies are written by people, so no Auto-Submitted."""
    return _build(
        ticket_number=ticket_number,
        subject=subject,
        body=body,
        to=to,
        from_addr=from_addr,
        reply_to=reply_to,
        message_id_domain=message_id_domain,
        message_key=message_key,
        in_reply_to=in_reply_to,
        references=references,
        attachments=attachments,
    )


def build_autoreply(
    *,
    ticket_number: str,
    subject: str,
    body: str,
    to: Sequence[str],
    from_addr: str,
    reply_to: str,
    message_id_domain: str,
    message_key: str,
    in_reply_to: str = "",
    references: Iterable[str] = (),
) -> EmailMessage:
    """The desk's automatic acknowledgement: like ``build_reply`` (without attachments) but
    marked ``Auto-Submitted: auto-replied`` (RFC 3834) so that other robots do not answer it,
    and ``X-Auto-Response-Suppress: All`` so that Exchange sends no out-of-office back."""
    msg = _build(
        ticket_number=ticket_number,
        subject=subject,
        body=body,
        to=to,
        from_addr=from_addr,
        reply_to=reply_to,
        message_id_domain=message_id_domain,
        message_key=message_key,
        in_reply_to=in_reply_to,
        references=references,
        attachments=(),
    )
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    return msg
