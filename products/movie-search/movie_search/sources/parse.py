"""Tolerant parsers for what sites send: HTML heads, XML (feeds, sitemaps), titles and years.

Hostile input is expected: the HTML parser is the stdlib's forgiving ``html.parser`` (it never
raises on broken markup and treats ``<script>`` bodies as text it ignores); XML with a DTD is
refused before parsing, which is what ``defusedxml`` does too — no entity expansion ("billion
laughs"), no external entities. ``defusedxml`` is used when it is installed, the stdlib otherwise.
"""

from __future__ import annotations

import html
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

try:  # pragma: no cover - depends on the environment
    from defusedxml.ElementTree import fromstring as _xml_fromstring
except ImportError:  # pragma: no cover
    _xml_fromstring = ET.fromstring

MAX_TITLE = 300
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_YEAR_IN_PARENS = re.compile(r"[(\[]\s*((?:18|19|20)\d{2})\s*[)\]]")
_YEAR = re.compile(r"(?<!\d)((?:18[89]|19\d|20\d)\d)(?!\d)")
_TAGS = re.compile(r"<[^>]*>")


class ParseError(Exception):
    """The document cannot be read; ``str(error)`` is a short reason."""


def parse_xml(body: bytes) -> ET.Element:
    """Parse an XML document, refusing DTDs and entity declarations."""
    if _DTD.search(body):
        raise ParseError("XML with a DTD or entity declarations is refused")
    try:
        return _xml_fromstring(body)
    except ET.ParseError as exc:
        raise ParseError(f"not valid XML ({exc})") from None
    except Exception as exc:  # defusedxml's own refusals, expat oddities
        raise ParseError(f"not valid XML ({type(exc).__name__})") from None


def local(tag: object) -> str:
    """``{namespace}name`` → ``name`` (feeds mix namespaces freely)."""
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if local(c.tag) == name]


def text_of(el: ET.Element | None) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def clean_title(raw: str) -> str:
    """Plain text of an HTML-ish title: tags stripped, entities decoded, spaces collapsed."""
    text = html.unescape(_TAGS.sub("", html.unescape(raw or "")))
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C" or c == " ")
    return " ".join(text.split())[:MAX_TITLE]


def normalise(text: str) -> str:
    """The search form of a title: lower case, no accents, punctuation as spaces.

    ``"Amélie (2001)!"`` → ``"amelie 2001"``. Used both when indexing and when searching, so
    both sides always agree.
    """
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = stripped.replace("ß", "ss").replace("ł", "l").replace("Ł", "l")
    cleaned = "".join(c if c.isalnum() else " " for c in stripped.casefold())
    return " ".join(cleaned.split())


def year_of(title: str, published: str = "") -> int | None:
    """The film's year: ``(1999)`` in the title first, any plausible year in the title next,
    then the year of the publication date; ``None`` when there is none."""
    for pattern in (_YEAR_IN_PARENS, _YEAR):
        match = pattern.search(title or "")
        if match:
            return int(match.group(1))
    date = parse_date(published)
    return date.year if date else None


def parse_date(value: str) -> datetime | None:
    """An ISO 8601 or RFC 822 date, or ``None``."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


@dataclass
class HtmlHead:
    """What the product reads from an HTML page."""

    title: str = ""
    meta: dict[str, str] = field(default_factory=dict)  # og:title, article:published_time, ...
    links: list[dict[str, str]] = field(default_factory=list)  # <link> attributes


class _HeadParser(HTMLParser):
    MAX_LINKS = 200

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.head = HtmlHead()
        self._in_title = False
        self._title: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "meta":
            key = (a.get("property") or a.get("name") or "").strip().lower()
            if key and key not in self.head.meta and len(self.head.meta) < 200:
                self.head.meta[key] = a.get("content", "")[:2000]
        elif tag == "link" and len(self.head.links) < self.MAX_LINKS:
            self.head.links.append(a)
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and sum(map(len, self._title)) < 2000:
            self._title.append(data)


def parse_html_head(text: str) -> HtmlHead:
    """Meta tags, links and the title of an HTML page; never raises."""
    parser = _HeadParser()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # noqa: S110 - html.parser is forgiving; keep what was read
        pass
    parser.head.title = clean_title("".join(parser._title))
    return parser.head


def looks_like_html(content_type: str, body: bytes) -> bool:
    if content_type in ("text/html", "application/xhtml+xml"):
        return True
    start = body[:1024].lstrip().lower()
    return not content_type and (start.startswith(b"<!doctype html") or start.startswith(b"<html"))


def looks_like_xml(content_type: str, body: bytes) -> bool:
    if content_type.endswith("xml") or content_type.endswith("+xml"):
        return True
    return body[:512].lstrip().startswith(b"<?xml")
