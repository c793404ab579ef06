"""Safe parsing of inbound support email (plain Python, no database).

``parse_email(raw)`` turns the bytes of one message into a ``ParsedEmail`` the desk can store as
it is: one-line subject, lower-cased sender, the *new* text of the message (quoted history
removed, HTML turned into inert text), vetted attachments, threading ids and a robot flag.

Hostile input is refused (``MailError``) or trimmed, never slow: the size is checked before
parsing; the raw bytes are then scanned for MIME containers and part delimiters, so nesting and
part-count bombs are refused before the stdlib parser (recursive, ~0.1 ms per part) sees them.
Attachments that are too large, too many or of a type not allowed (judged on the bytes, not the
declared type) go to ``rejected_attachments`` with a reason and never fail the message.

Forwarded messages (``message/rfc822`` parts) become text: each is appended to ``text`` after
a "---------- Forwarded message ----------" line with its From/Date/Subject; its attachments
are vetted like the outer message's.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import TypeVar

T = TypeVar("T")
MiB = 1024 * 1024
PDF, PNG, JPEG, GIF = "application/pdf", "image/png", "image/jpeg", "image/gif"
TEXT, ZIP, UNKNOWN = "text/plain", "application/zip", "application/octet-stream"
DEFAULT_ALLOWED_TYPES = frozenset({PDF, PNG, JPEG, GIF, TEXT, ZIP})

MAX_SUBJECT = 300
MAX_TEXT = 50_000
MAX_FILENAME = 150
MAX_CONTAINERS = 100  # multipart + message/* parts; the stdlib parser recurses once per level
MAX_PARTS = 500  # part delimiters in the whole message
MAX_DEPTH = 20  # levels the walk follows (deeper parts are ignored)
MAX_HEADER_LINES = 5_000  # in the top-level header block
MAX_REFERENCES = 50
# The stdlib header parser takes time quadratic in a header's length (15 s for a 64 KB From
# of nested comments), so headers are cut before it sees them, and MIME headers, which it
# parses while splitting the message, are limited before parsing.
MAX_HEADER_CHARS = 2_000  # of From, To, Cc, Date: the rest is ignored
MAX_SUBJECT_CHARS = 8_000  # unstructured, so parsed in linear time; ~300 characters decoded
MAX_MIME_HEADER = 1_000  # any one Content-* header
MAX_MIME_COST = 25 * MAX_MIME_HEADER**2  # all of them: the sum of their squared lengths
_MAX_TEXT_WORK, _MAX_HTML_WORK = 4 * MAX_TEXT, 1_000_000  # characters worth looking at


class MailError(ValueError):
    """The message cannot be taken in at all; the text says why and is safe to show or log."""


@dataclass
class ParsedAttachment:
    filename: str  # sanitised: no path, no control characters, at most 150 characters
    content_type: str  # sniffed from the bytes when recognisable, else the declared type
    data: bytes


@dataclass
class ParsedEmail:
    sender: str  # lower-cased address only
    sender_name: str
    to: list[str]  # lower-cased addresses from To, then Cc
    subject: str  # decoded, single line, at most 300 characters
    text: str  # the new text of the message, at most 50,000 characters
    message_id: str  # ids are bare ("abc@example.com"), without angle brackets
    in_reply_to: str
    references: list[str]
    attachments: list[ParsedAttachment] = field(default_factory=list)
    rejected_attachments: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    auto_submitted: bool = False  # auto-reply, bounce or list mail: never answer it


_SURROGATES = re.compile("[\ud800-\udfff]")
# Control characters and the invisible characters used to disguise text (bidi overrides as in
# "Trojan source", zero-width spaces, byte-order marks); tab and newline survive.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


def _decode(data: bytes, charset: str | None) -> str:
    """Bytes as text: the declared charset, else UTF-8, else Windows-1252 (which never fails)."""
    for candidate in (charset, "utf-8"):
        try:
            return data.decode(candidate or "utf-8")
        except (LookupError, ValueError):  # unknown codec, bad bytes, NUL in the name
            continue
    return data.decode("cp1252", errors="replace")


def _unescape(text: str) -> str:
    """Raw 8-bit header bytes reach us as surrogate escapes; most such mail is UTF-8."""
    if not _SURROGATES.search(text):
        return text
    try:
        return _decode(text.encode("utf-8", "surrogateescape"), "utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)


def _one_line(text: str, limit: int) -> str:
    """Visible text on one line: CR/LF, controls and whitespace runs become single spaces."""
    return " ".join(_INVISIBLE.sub(" ", _unescape(text)).split())[:limit].strip()


def _raw_header(msg: Message, name: str) -> str:
    """The first raw (undecoded, unfolded) value of a header, or ""."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return _unescape(re.sub(r"\r?\n", "", str(value)))
    return ""


def _safe(call: Callable[[], T], default: T) -> T:
    """``call()``, or ``default`` if it raises: the stdlib's header and MIME parsers have
    edge-case bugs on hostile input, and one bad part must not lose the whole message."""
    try:
        return call()
    except Exception:
        return default


def _parsed_header(msg: Message, name: str) -> object | None:
    """The policy's header object for a header cut to its limit (after a whole address, or a
    whole word), or None if it is missing or the parser fails."""
    name = name.lower()
    raw = _raw_header(msg, name)
    limit = MAX_SUBJECT_CHARS if name == "subject" else MAX_HEADER_CHARS
    if len(raw) > limit:
        raw = raw[:limit].rpartition("," if name in ("from", "to", "cc") else " ")[0]
    return _safe(lambda: policy.default.header_factory(name, raw), None) if raw else None


def _header(msg: Message, name: str) -> str:
    """A header decoded (RFC 2047), or its raw value if the decoder fails."""
    value = _parsed_header(msg, name)
    return str(value) if value is not None else _raw_header(msg, name)[:MAX_HEADER_CHARS]


_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]{1,64}@[^@\s<>()\[\],;:\"\\]{1,190}")


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs of an address header; unusable ones dropped."""
    header = _parsed_header(msg, name)
    pairs = _safe(lambda: [(a.display_name, a.addr_spec) for a in header.addresses], None)
    if pairs is None:  # not parsed: try the lenient legacy parser
        pairs = getaddresses([_raw_header(msg, name)[:MAX_HEADER_CHARS]])
    pairs = [(name, _unescape(addr).strip().lower()) for name, addr in pairs]
    return [
        (_one_line(name, 200), addr)
        for name, addr in pairs
        if _ADDRESS.fullmatch(addr) and not _INVISIBLE.search(addr)
    ]


def _message_ids(value: str) -> list[str]:
    """Bare ids ("a@b") in a Message-ID/In-Reply-To/References value, deduplicated."""
    ids = re.findall(r"<([^<>\s\x00-\x1f\x7f]{1,250})>", value)
    if not ids and re.fullmatch(r"[^<>\s\x00-\x1f\x7f]{1,250}", value.strip()):
        ids = [value.strip()]  # some mailers forget the angle brackets
    return list(dict.fromkeys(ids))


_MAGIC = {b"%PDF-": PDF, b"\x89PNG\r\n\x1a\n": PNG, b"\xff\xd8\xff": JPEG, b"GIF8": GIF}
_MAGIC |= {b"PK\x03\x04": ZIP, b"PK\x05\x06": ZIP}  # an archive, or an empty one
# Recognised only so that a rejection can say what the file really is.
_MAGIC |= {b"MZ": "application/x-msdownload", b"\x7fELF": "application/x-executable"}
# Files that run or render when opened, whatever their bytes look like.
_DANGEROUS_EXTENSION = re.compile(
    r"exe|com|bat|cmd|scr|pif|msi|msp|dll|cpl|lnk|hta|jse?|vbe?|vbs|wsf|wsh|ps1|psm1|jar|sh|"
    r"app|apk|reg|html?|xhtml|svg"
)
_SIGNATURES = ("application/pgp-signature", "application/pkcs7-signature")


def sniff_type(data: bytes) -> str | None:
    """The type the bytes show (PDF, PNG, JPEG, GIF, ZIP, executables, plain text), or None."""
    for magic, content_type in _MAGIC.items():
        if data.startswith(magic):
            return content_type
    sample = data[:8192]
    controls = sum(1 for byte in sample if byte < 32 and byte not in b"\t\n\r\f\x1b")
    return TEXT if b"\x00" not in sample and controls <= len(sample) // 100 else None


def safe_filename(name: str | None, content_type: str = UNKNOWN) -> str:
    """A file name safe to store and show: last path component only, no control or invisible
    characters, no leading dots, at most 150 characters (keeping the extension)."""
    name = _unescape(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(re.sub(r'[<>:"|?*]', "_", name).split()).strip(". ")
    if not name:
        name = "attachment" + (mimetypes.guess_extension(content_type) or ".bin")
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        keep = MAX_FILENAME - len(ext) - 1
        name = f"{stem[:keep]}.{ext}" if dot and len(ext) <= 16 else name[:MAX_FILENAME]
    return name


def _size(n: int) -> str:
    if n < 10_240:
        return f"{n:,} bytes"
    return f"{n / MiB:.1f} MB" if n >= MiB else f"{n / 1024:.0f} KB"


class _HtmlText(HTMLParser):
    """Collects the readable text of an HTML body. Nothing of the markup survives: scripts,
    styles and other non-text elements go with their content, attributes are never copied (so
    ``onerror=`` and friends vanish), entities are decoded. Links keep their target as "text
    (url)", for http(s)/mailto only. Blockquotes come out as "> " lines, so quoted history is
    removed as in plain-text mail."""

    SKIP = {"script", "style", "head", "title", "template", "noscript", "svg", "math", "iframe"}
    PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol", "pre"}
    LINE = {"div", "li", "tr", "dl", "dt", "dd", "hr", "section", "article", "header", "footer"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = self.pre = self.quote = 0
        self.newlines = 2  # at the start of a paragraph
        self.link: tuple[str | None, int] | None = None

    def _break(self, lines: int) -> None:
        """End the line (``lines=2``: leave a blank line); repeated boundaries do not stack."""
        if lines > self.newlines:
            self.out.append("\n" * (lines - self.newlines))
            self.newlines = lines

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skip += tag in self.SKIP
        if self.skip:
            return
        self.quote += tag == "blockquote"
        self.pre += tag == "pre"
        if tag == "br":  # always a new line, so that <br><br> leaves a blank one
            self.out.append("\n")
            self.newlines += 1
        elif tag in self.PARAGRAPH or tag in self.LINE:
            self._break(2 if tag in self.PARAGRAPH else 1)
        if tag == "li":
            self.handle_data("- ")
        elif tag in ("td", "th"):
            self.handle_data(" ")
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            safe = re.match(r"(?i)(https?://|mailto:)\S{1,2000}$", href)
            self.link = (href if safe else None, len(self.out))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP or self.skip:
            self.skip = max(0, self.skip - (tag in self.SKIP))
            return
        if tag == "a" and self.link is not None:
            (href, start), self.link = self.link, None
            text = "".join(self.out[start:]).strip()
            if href and href.removeprefix("mailto:") not in text:
                self.handle_data(f" ({href})" if text else href)
        if tag in self.PARAGRAPH or tag in self.LINE:
            self.quote = max(0, self.quote - (tag == "blockquote"))
            self.pre = max(0, self.pre - (tag == "pre"))
            self._break(2 if tag in self.PARAGRAPH else 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
            data = data.lstrip() if self.newlines else data
        if data:  # a line inside a blockquote starts with "> " per level
            prefix = "> " * self.quote
            self.out.append((prefix if self.newlines else "") + data.replace("\n", "\n" + prefix))
            self.newlines = 0


_DECLARATION = re.compile(r"<[!?][^<>]*+>")  # <!DOCTYPE …>, <![CDATA[…>, <?xml …>
_UNCLOSED = re.compile(r"<(?![^<>]*+>)")  # a "<" that no ">" closes before the next "<"


def _defuse(markup: str) -> str:
    """Markup that html.parser gets through in linear time. Python 3.11's parser rescans to
    the end of the document for every unterminated tag, comment or declaration (a minute for
    300 KB of "<a"), so comments go (an unclosed one runs to the end, as in browsers), and so
    do declarations, and a "<" that no ">" closes before the next "<" becomes text."""
    kept, pos = [], 0
    while (start := markup.find("<!--", pos)) >= 0:
        kept.append(markup[pos:start])
        end = markup.find("-->", start + 4)
        pos = end + 3 if end >= 0 else len(markup)
    kept.append(markup[pos:])
    return _UNCLOSED.sub("&lt;", _DECLARATION.sub("", "".join(kept)))


def html_to_text(markup: str) -> str:
    """The readable, inert text of an HTML document (see ``_HtmlText``)."""
    parser = _HtmlText()
    parser.feed(_defuse(markup[:_MAX_HTML_WORK]))
    parser.close()
    return normalise_text("".join(parser.out))


_REPLY_HEADERS = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"on\b.{1,300}\bwrote:",  # English (Gmail, Thunderbird, Apple Mail)
        r"w dniu\b.{1,300}\bpisze:",  # Polish (Thunderbird)
        r".{1,300}\bnapisał(\(a\)|a)?:",  # Polish (Gmail)
        r"pada\b.{1,300}\bmenulis:",  # Indonesian (Gmail)
        r"-{3,}\s*(original message|wiadomość oryginalna|pesan asli)\s*-{3,}",  # Outlook
    )
]
_OUTLOOK_FROM = re.compile(r"(from|od|dari):\s.+", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"(sent|wysłano|wysłane|dikirim):\s.+", re.IGNORECASE)


def _is_reply_header(lines: list[str], i: int) -> bool:
    line, following = lines[i].strip(), [s.strip() for s in lines[i + 1 : i + 3]]
    # Gmail wraps a long "On <date> <name> <address> wrote:" over two lines.
    candidates = [line, f"{line} {following[0]}"] if line and following else [line]
    if any(p.fullmatch(c) for p in _REPLY_HEADERS for c in candidates):
        return True
    # Outlook's reply block: "From: …" followed by "Sent: …".
    return bool(_OUTLOOK_FROM.fullmatch(line) and any(map(_OUTLOOK_SENT.fullmatch, following)))


def strip_quoted(text: str) -> str:
    """The new part of a reply: everything from a reply header ("On … wrote:", "W dniu …
    pisze:", "Pada … menulis:", "-----Original Message-----", Outlook's "From:/Sent:") on is
    cut, and lines starting with ">" are dropped (which keeps interleaved answers). If nothing
    is left, the text is returned unchanged: better to show the quote than an empty message."""
    lines, kept = text.split("\n"), []
    for i, line in enumerate(lines):
        if _is_reply_header(lines, i):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line)
    while kept and not kept[-1].strip(" _-*="):  # separators left above the cut
        kept.pop()
    return "\n".join(kept).strip() or text.strip()


def normalise_text(text: str) -> str:
    """Unix newlines, no control/invisible characters, no trailing spaces, at most one blank
    line in a row; indentation is kept (customers paste logs and code)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = _INVISIBLE.sub("", text.replace("\t", "    "))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_ROBOT_SENDER = re.compile(
    r"(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|auto-?reply|"
    r"autoresponder|vacation)([-+._=].*)?@.*"
)
_ROBOT_SUBJECT = re.compile(
    r"(automatic reply|out of office|odpowiedź automatyczna|balasan otomatis|undeliverable)\s*:",
    re.IGNORECASE,
)


def _is_automatic(msg: Message, sender: str, subject: str) -> bool:
    """Whether a machine sent the message (RFC 3834 and common conventions), so that the desk
    never answers it and no two robots ping-pong through the support address."""

    def value(name: str) -> str:
        return _raw_header(msg, name).split(";")[0].strip().lower()

    robot_flags = ("x-autoreply", "x-autorespond", "x-autogenerated")
    return (
        value("auto-submitted") not in ("", "no")
        or value("precedence") in ("bulk", "junk", "list", "auto_reply")
        or any(value(name) not in ("", "no", "false", "0") for name in robot_flags)
        or bool(value("x-failed-recipients"))
        or value("return-path") == "<>"  # bounces
        or _content_type(msg) == "multipart/report"  # delivery and read reports
        or bool(_ROBOT_SENDER.fullmatch(sender) or _ROBOT_SUBJECT.match(subject))
    )


_BOUNDARY = re.compile(rb'boundary\*?\s*=\s*"?([^"\s;]{1,200})', re.IGNORECASE)
_MESSAGE_PART = re.compile(rb"content-type:\s*message/", re.IGNORECASE)
_MIME_HEADER = re.compile(rb"^content-[a-z-]*:[^\n]*(?:\n[ \t][^\n]*)*", re.IGNORECASE | re.M)


def _prescan(raw: bytes) -> None:
    """Refuse, from the raw bytes alone, messages whose structure would make the stdlib parser
    slow or recurse too deeply. Counts are upper bounds (a body may mention "boundary=")."""
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\r\n\r\n")) if i >= 0]
    if raw.count(b"\n", 0, min(ends, default=len(raw))) > MAX_HEADER_LINES:
        raise MailError(f"message has more than {MAX_HEADER_LINES} header lines")
    boundaries = _BOUNDARY.findall(raw)
    containers = len(boundaries) + len(_MESSAGE_PART.findall(raw))
    if containers > MAX_CONTAINERS:
        raise MailError(f"message has too many nested MIME parts ({containers} containers)")
    parts = sum(raw.count(b"\n--" + boundary) for boundary in set(boundaries))
    if parts > MAX_PARTS:
        raise MailError(f"message has too many MIME parts ({parts}; the limit is {MAX_PARTS})")
    sizes = [len(header) for header in _MIME_HEADER.findall(raw)]
    if max(sizes, default=0) > MAX_MIME_HEADER or sum(n * n for n in sizes) > MAX_MIME_COST:
        raise MailError("message has MIME headers that are too long")


def _content_type(part: Message) -> str:
    return _safe(part.get_content_type, UNKNOWN)


def _payload(part: Message) -> bytes:
    return _safe(lambda: part.get_payload(decode=True), None) or b""


@dataclass
class _Body:
    """Body texts found at one level of the tree; plain text wins over HTML."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)

    def text(self) -> str:
        plain = [normalise_text(p[:_MAX_TEXT_WORK]) for p in self.plain]
        texts = plain if any(plain) else map(html_to_text, self.html)
        return "\n\n".join(t for t in texts if t)


class _Walker:
    """Walks the parsed tree once, sorting leaves into body text, forwarded messages and
    attachments (accepted, or rejected with a reason)."""

    def __init__(self, max_attachments: int, max_bytes: int, allowed: frozenset[str]) -> None:
        self.max_attachments, self.max_bytes, self.allowed = max_attachments, max_bytes, allowed
        self.attachments: list[ParsedAttachment] = []
        self.rejected: list[tuple[str, str]] = []
        self.forwarded: list[str] = []
        self.parts = 0

    def walk(self, part: Message, body: _Body, depth: int = 0) -> None:
        self.parts += 1
        if depth > MAX_DEPTH or self.parts > MAX_PARTS:
            return
        content_type = _content_type(part)
        if content_type == "multipart/alternative" and part.is_multipart():
            # Every alternative is walked (pasted images may sit beside the HTML), but only one
            # version of the text is kept: plain if it says anything, else HTML.
            versions = _Body()
            for child in part.get_payload():
                self.walk(child, versions, depth + 1)
            if any(p.strip() for p in versions.plain):
                body.plain.extend(versions.plain)
            else:
                body.html.extend(versions.html)
        elif content_type.startswith("multipart/") and part.is_multipart():
            for child in part.get_payload():
                self.walk(child, body, depth + 1)
        elif content_type in ("message/rfc822", "message/global") and _safe(part.get_payload, []):
            # A forwarded message: its text is kept whole (not quote-stripped) after a header.
            inner, forwarded = part.get_payload()[0], _Body()
            self.walk(inner, forwarded, depth + 1)
            lines = ["---------- Forwarded message ----------"]
            for label in ("From", "Date", "Subject"):
                if value := _one_line(_header(inner, label), MAX_SUBJECT):
                    lines.append(f"{label}: {value}")
            self.forwarded.append("\n".join(lines) + "\n\n" + forwarded.text())
        elif content_type in ("text/plain", "text/html") and not self._is_attachment(part):
            text = _decode(_payload(part), _safe(part.get_content_charset, None))
            (body.plain if content_type == "text/plain" else body.html).append(text)
        elif not content_type.startswith("multipart/") and content_type not in _SIGNATURES:
            self._attachment(part, content_type)

    @staticmethod
    def _is_attachment(part: Message) -> bool:
        disposition = _safe(part.get_content_disposition, "attachment")
        return disposition == "attachment" or bool(_safe(part.get_filename, "attachment"))

    def _attachment(self, part: Message, declared: str) -> None:
        raw_name, data = _safe(part.get_filename, None), _payload(part)
        # Trust the bytes, not the label. A type we can recognise but did not is a disguise
        # (an .exe declared as image/png), so the file counts as unknown.
        sniffed = sniff_type(data)
        checkable = declared in (PDF, PNG, JPEG, GIF, ZIP, TEXT)
        content_type = sniffed or (UNKNOWN if checkable else declared)
        name = safe_filename(raw_name, content_type)
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        if len(data) > self.max_bytes:
            reason = f"too large ({_size(len(data))}; the limit is {_size(self.max_bytes)})"
        elif content_type not in self.allowed and checkable and not sniffed:
            reason = f"its content is not the declared {declared}"
        elif content_type not in self.allowed:
            reason = f"file type {content_type} is not accepted"
        elif _DANGEROUS_EXTENSION.fullmatch(extension):
            reason = f"files ending in .{extension} are not accepted"
        elif len(self.attachments) >= self.max_attachments:
            reason = f"too many attachments (at most {self.max_attachments} per message)"
        else:
            self.attachments.append(ParsedAttachment(name, content_type, data))
            return
        self.rejected.append((name, reason))


def parse_email(
    raw: bytes,
    *,
    max_bytes: int = 10 * MiB,
    max_attachments: int = 10,
    max_attachment_bytes: int = 5 * MiB,
    allowed_types: frozenset[str] = DEFAULT_ALLOWED_TYPES,
) -> ParsedEmail:
    """Parse one raw message (the module docstring has the contract and the limits).

    Raises ``MailError`` when the message is larger than ``max_bytes`` (checked before any
    parsing), structurally abusive, unparsable, or has no usable From address. Everything else
    is tolerated: unknown or missing charsets, broken encodings, malformed headers."""
    if len(raw) > max_bytes:
        raise MailError(f"message too large ({_size(len(raw))}; the limit is {_size(max_bytes)})")
    raw = bytes(raw)
    if not raw.strip():
        raise MailError("message is empty")
    _prescan(raw)
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # RecursionError included, though the prescan should prevent it
        raise MailError(f"message could not be parsed ({type(exc).__name__})") from exc
    if not msg.keys():
        raise MailError("message could not be parsed: it has no headers")
    senders = _addresses(msg, "from")
    if not senders:
        raise MailError("message has no usable From address")
    sender_name, sender = senders[0]
    subject = _one_line(_header(msg, "subject"), MAX_SUBJECT)

    walker, body = _Walker(max_attachments, max_attachment_bytes, allowed_types), _Body()
    walker.walk(msg, body)
    blocks = [strip_quoted(body.text()), *map(normalise_text, walker.forwarded)]
    references = _message_ids(_raw_header(msg, "references"))
    if len(references) > MAX_REFERENCES:  # keep the thread's root and the most recent ids
        references = [references[0], *references[-(MAX_REFERENCES - 1) :]]
    return ParsedEmail(
        sender=sender,
        sender_name=sender_name,
        to=list(dict.fromkeys(a for _, a in _addresses(msg, "to") + _addresses(msg, "cc"))),
        subject=subject,
        text="\n\n".join(b for b in blocks if b)[:MAX_TEXT].rstrip(),
        message_id=next(iter(_message_ids(_raw_header(msg, "message-id"))), ""),
        in_reply_to=next(iter(_message_ids(_raw_header(msg, "in-reply-to"))), ""),
        references=references,
        attachments=walker.attachments,
        rejected_attachments=walker.rejected,
        auto_submitted=_is_automatic(msg, sender, subject),
    )


def ticket_reference(subject: str, *, prefix: str = "T-") -> str | None:
    """The ticket number tagged in a subject ("Re: [T-000123] Help" -> "T-000123"), the first
    one if there are several, or None. The prefix is matched case-insensitively."""
    found = re.search(rf"\[\s*{re.escape(prefix)}([0-9]{{1,12}})\s*\]", subject, re.IGNORECASE)
    return f"{prefix}{found.group(1)}" if found else None
