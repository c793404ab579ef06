"""Message text formatting: parse modes, automatic entities and UTF-16 offsets.

Telegram returns a sent message with the markup *removed* and described as ``entities`` instead, and
it detects commands, mentions, hashtags and links in every message. Bot frameworks depend on that:
aiogram's ``Command`` filter and python-telegram-bot's ``CommandHandler`` only match a message whose
first entity is a ``bot_command`` at offset 0. Offsets and lengths are counted in UTF-16 code units,
as in the Bot API.

The parsers reject what Telegram rejects (unknown HTML tags, unescaped MarkdownV2 reserved
characters, unclosed entities) with Telegram's ``can't parse entities`` wording, so a bot that
would fail in production also fails here.
"""

from __future__ import annotations

import html
import re
from typing import Any

from .errors import ApiError, bad_request

Entity = dict[str, Any]

# Reserved characters of MarkdownV2 that must be escaped outside code (Bot API docs).
_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")

_AUTO_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    # "/" + name, optionally "@bot_name" (/start, /start@my_bot). Like TDLib, not next to word
    # characters, "/", "<", ">" or "\", so "</b>" and "a/b" are not commands.
    (
        "bot_command",
        re.compile(r"(?<![\w/<>\\@])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>\\@])"),
    ),
    ("url", re.compile(r"(?<![\w@/])https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]}]", re.IGNORECASE)),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z][A-Za-z0-9_]{3,31}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#(?!\d+\b)\w{1,256}")),
]


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def detect_entities(text: str) -> list[Entity]:
    """Entities Telegram adds by itself: bot commands, URLs, @mentions and #hashtags.

    Overlapping matches are resolved in favour of the earlier pattern in the list (a URL's path
    segment is not also a command).
    """
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in _AUTO_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e, _ in spans):
                continue
            spans.append((start, end, kind))
    spans.sort()
    return [
        {"type": kind, "offset": utf16_len(text[:start]), "length": utf16_len(text[start:end])}
        for start, end, kind in spans
    ]


def merge_entities(explicit: list[Entity], automatic: list[Entity]) -> list[Entity]:
    """Add automatic entities that do not overlap formatting or links given by the sender."""
    result = list(explicit)
    for auto in automatic:
        a_start, a_end = auto["offset"], auto["offset"] + auto["length"]
        if any(
            e["offset"] < a_end
            and a_start < e["offset"] + e["length"]
            and e["type"] in ("code", "pre", "text_link", "url", "bot_command")
            for e in explicit
        ):
            continue
        result.append(auto)
    result.sort(key=lambda e: (e["offset"], -e["length"]))
    return result


def _parse_error(message: str) -> ApiError:
    return bad_request(f"can't parse entities: {message}")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class _Builder:
    """Collects plain text and the entities opened and closed while parsing markup."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0  # UTF-16 units emitted so far
        self.entities: list[Entity] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def close(self, kind: str, start: int, **extra: Any) -> None:
        length = self.length - start
        if length > 0:  # Telegram drops empty entities silently.
            self.entities.append({"type": kind, "offset": start, "length": length, **extra})

    def result(self) -> tuple[str, list[Entity]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


_HTML_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}  # fmt: skip
_HTML_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*?)?)\s*(/?)>")
_HTML_ATTR_RE = re.compile(r"([a-zA-Z_-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'>]+))")


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Parse Telegram's HTML subset into plain text and entities.

    Raises ``400 Bad Request: can't parse entities: ...`` for unsupported or unbalanced tags and
    for a bare ``<``, like Telegram.
    """
    out = _Builder()
    stack: list[tuple[str, int, dict[str, Any]]] = []
    pos = 0
    while pos < len(source):
        lt = source.find("<", pos)
        chunk = source[pos : lt if lt >= 0 else len(source)]
        if chunk:
            out.add(html.unescape(chunk))
        if lt < 0:
            break
        match = _HTML_TAG_RE.match(source, lt)
        if not match:
            raise _parse_error(
                f'Unsupported start tag "" at byte offset {_byte_offset(source, lt)}'
            )
        closing, name, attrs, _ = match.groups()
        name = name.lower()
        offset = _byte_offset(source, lt)
        if name not in _HTML_TAGS:
            raise _parse_error(f'Unsupported start tag "{name}" at byte offset {offset}')
        if closing:
            if not stack or stack[-1][0] != name:
                raise _parse_error(
                    f'Unmatched end tag at byte offset {offset}, expected "</{stack[-1][0]}>", found "</{name}>"'
                    if stack
                    else f"Unexpected end tag at byte offset {offset}"
                )
            _, start, extra = stack.pop()
            kind = _HTML_TAGS[name]
            if name == "code" and stack and stack[-1][0] == "pre":
                # <pre><code class="language-x"> sets the language of the enclosing pre block.
                if extra.get("language"):
                    stack[-1][2]["language"] = extra["language"]
                pos = match.end()
                continue
            if kind != "pre" or "language" not in extra:
                extra.pop("language", None)
            out.close(kind, start, **extra)
        else:
            parsed = {
                k.lower(): html.unescape(a or b or c or "")
                for k, a, b, c in _HTML_ATTR_RE.findall(attrs)
            }
            extra: dict[str, Any] = {}
            if name == "a":
                href = parsed.get("href", "")
                if not href:
                    raise _parse_error(f"Can't find URL of the link at byte offset {offset}")
                extra["url"] = href
            elif name == "span" and parsed.get("class") != "tg-spoiler":
                raise _parse_error(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {offset}'
                )
            elif name == "code" and parsed.get("class", "").startswith("language-"):
                extra["language"] = parsed["class"][len("language-") :]
            elif name == "tg-emoji":
                extra["custom_emoji_id"] = parsed.get("emoji-id", "")
            elif name == "blockquote" and "expandable" in attrs:
                extra["expandable"] = True
            stack.append((name, out.length, extra))
        pos = match.end()
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    text, entities = out.result()
    for entity in entities:
        if entity["type"] == "blockquote" and entity.pop("expandable", False):
            entity["type"] = "expandable_blockquote"
    return text, entities


_MDV2_MARKS = [("||", "spoiler"), ("__", "underline"), ("*", "bold"), ("_", "italic"),
               ("~", "strikethrough")]  # fmt: skip
_MD_MARKS = [("*", "bold"), ("_", "italic")]
_ENTITY_TITLES = {"bold": "Bold", "italic": "Italic", "underline": "Underline", "code": "Code",
                  "pre": "Pre", "strikethrough": "Strikethrough", "spoiler": "Spoiler"}  # fmt: skip
_LINK_RE = re.compile(r"\[(?:[^\]\\]|\\.)*\]\((?:[^)\\]|\\.)*\)", re.DOTALL)


def _reserved_error(ch: str) -> ApiError:
    return _parse_error(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")


def _find_closing(source: str, mark: str, start: int) -> int:
    """Index of the next unescaped ``mark`` at or after ``start``, or -1."""
    i = start
    while i < len(source):
        if source[i] == "\\":
            i += 2
            continue
        if source.startswith(mark, i):
            return i
        i += 1
    return -1


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def parse_markdown(source: str, *, v2: bool) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2 (``v2=True``) or legacy Markdown into plain text and entities.

    MarkdownV2 demands that reserved characters outside entities be escaped with a backslash and
    raises Telegram's ``character 'x' is reserved`` error otherwise; both modes raise
    ``can't find end of ... entity`` for unclosed markup.
    """
    marks = _MDV2_MARKS if v2 else _MD_MARKS
    out = _Builder()
    stack: list[tuple[str, str, int, int]] = []  # (mark, kind, utf16 start, source index)
    links: list[int] = []  # utf16 starts of open "[...](...)" links
    quote_start: int | None = None
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        line_start = i == 0 or source[i - 1] == "\n"
        if v2 and line_start and ch == ">":
            # Consecutive ">"-prefixed lines form one blockquote.
            if quote_start is None:
                quote_start = out.length
            i += 1
            continue
        if v2 and line_start and quote_start is not None and ch != ">":
            out.close("blockquote", quote_start)
            quote_start = None
        if ch == "\\" and i + 1 < n and (v2 or source[i + 1] in "_*`["):
            out.add(source[i + 1])
            i += 2
            continue
        if ch == "`":
            # Code and pre blocks are verbatim up to their closing mark.
            mark, kind = ("```", "pre") if source.startswith("```", i) else ("`", "code")
            end = (
                _find_closing(source, mark, i + len(mark))
                if v2
                else source.find(mark, i + len(mark))
            )
            if end < 0:
                raise _unclosed(kind, source, i, v2)
            body = source[i + len(mark) : end]
            body = _unescape(body) if v2 else body
            extra: dict[str, Any] = {}
            first, sep, rest = body.partition("\n")
            if kind == "pre" and sep and first and not any(c.isspace() for c in first):
                extra["language"], body = first, rest
            start = out.length
            out.add(body)
            out.close(kind, start, **extra)
            i = end + len(mark)
            continue
        mark = next((m for m, _ in marks if source.startswith(m, i)), None)
        if mark is not None:
            if stack and stack[-1][0] == mark:
                _, kind, start, _ = stack.pop()
                out.close(kind, start)
            else:
                kind = next(k for m, k in marks if m == mark)
                stack.append((mark, kind, out.length, i))
            i += len(mark)
            continue
        if ch == "[" and _LINK_RE.match(source, i):
            links.append(out.length)
            i += 1
            continue
        if ch == "]" and links:
            close = _find_closing(source, ")", i + 2)
            url = _unescape(source[i + 2 : close])
            out.close("text_link", links.pop(), url=url)
            i = close + 1
            continue
        if v2 and ch in _MDV2_RESERVED:
            raise _reserved_error(ch)
        out.add(ch)
        i += 1
    if quote_start is not None:
        out.close("blockquote", quote_start)
    if stack:
        _, kind, _, index = stack[-1]
        raise _unclosed(kind, source, index, v2)
    return out.result()


def _unclosed(kind: str, source: str, index: int, v2: bool) -> ApiError:
    offset = _byte_offset(source, index)
    if v2:
        return _parse_error(
            f"Can't find end of {_ENTITY_TITLES[kind]} entity at byte offset {offset}"
        )
    return _parse_error(f"Can't find end of the entity starting at byte offset {offset}")


PARSE_MODES = {"html": "HTML", "markdown": "Markdown", "markdownv2": "MarkdownV2"}


def render_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Apply ``parse_mode`` to ``text`` and add Telegram's automatic entities.

    Returns the plain text and its entities. Raises ``400 Bad Request: unsupported parse_mode``
    for an unknown mode and ``can't parse entities`` for malformed markup.
    """
    mode = PARSE_MODES.get(parse_mode.lower()) if parse_mode else None
    if parse_mode and mode is None:
        raise bad_request("unsupported parse_mode")
    if mode == "HTML":
        plain, entities = parse_html(text)
    elif mode in ("Markdown", "MarkdownV2"):
        plain, entities = parse_markdown(text, v2=mode == "MarkdownV2")
    else:
        plain, entities = text, []
    return plain, merge_entities(entities, detect_entities(plain))


_ALLOWED_ENTITY_TYPES = {
    "mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bold",
    "italic", "underline", "strikethrough", "spoiler", "blockquote", "expandable_blockquote",
    "code", "pre", "text_link", "text_mention", "custom_emoji",
}  # fmt: skip


def clean_entities(raw: list[Any], text: str) -> list[Entity]:
    """Validate explicit ``entities`` sent instead of a parse mode and keep the well-formed ones.

    Telegram silently drops entities that fall outside the text; malformed objects are a 400.
    """
    limit = utf16_len(text)
    result: list[Entity] = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request("can't parse entities JSON object")
        kind, offset, length = item.get("type"), item.get("offset"), item.get("length")
        if (
            kind not in _ALLOWED_ENTITY_TYPES
            or not isinstance(offset, int)
            or not isinstance(length, int)
            or isinstance(offset, bool)
            or isinstance(length, bool)
        ):
            raise bad_request("can't parse MessageEntity")
        if offset < 0 or length <= 0 or offset + length > limit:
            continue
        entity: Entity = {"type": kind, "offset": offset, "length": length}
        for key in ("url", "language", "custom_emoji_id"):
            if isinstance(item.get(key), str):
                entity[key] = item[key]
        result.append(entity)
    return result
