"""Evaluating sources: parse what was fetched, compare with the last state, decide what to alert.

The de-duplication rule lives here: ``evaluate`` gets the source's previous state (a JSON dict
kept in the store) and returns the new state plus the alerts for *changes only* — down→up and
up→down, a keyword appearing or disappearing, each feed item once, a threshold crossed (and
crossed back). Parsers are bounded: input is at most the fetch limit, HTML is scanned in
linear time, XML with entity declarations is refused before parsing, and JSON depth
or giant integers end in a clear error.
"""

from __future__ import annotations

import html as htmllib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from alert_bot.fetch import FetchError, Response
from alert_bot.sources import Source

MAX_SEEN_ITEMS = 500  # feed item ids remembered per source
MAX_NEW_ITEMS_LISTED = 10  # per check; more are summarised as "and N more"
MAX_FEED_ITEMS = 1000

Fetcher = Callable[..., Awaitable[Response]]


class CheckError(Exception):
    """The fetched document cannot be used (malformed feed or JSON, missing value...)."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    id: str
    title: str
    link: str


_TAG = re.compile(r"<[^<>]*>")  # linear: a scan from one "<" stops at the next "<" or ">"


def _drop_blocks(html: str, opening: str, closing: str) -> str:
    """Remove every ``opening ... closing`` block (case-insensitive) in one forward scan.

    Hand-written rather than a regex or ``html.parser`` because both can go quadratic on hostile
    input (thousands of unclosed ``<script`` or ``<!--``); ``str.find`` only moves forward.
    """
    lowered = html.lower()
    out: list[str] = []
    position = 0
    while True:
        start = lowered.find(opening, position)
        if start < 0:
            out.append(html[position:])
            break
        out.append(html[position:start])
        stop = lowered.find(closing, start + len(opening))
        if stop < 0:
            break  # unclosed till the end: nothing after it is visible text
        position = stop + len(closing)
        if not closing.endswith(">"):  # "</script  >": skip to the end of the closing tag
            end = lowered.find(">", position)
            position = len(html) if end < 0 else end + 1
    return " ".join(out)


def page_text(html: str) -> str:
    """The visible text of ``html``, whitespace collapsed, case-folded (for matching).

    Linear in the page size whatever the markup: comments, scripts and styles are dropped,
    tags removed, entities decoded.
    """
    html = _drop_blocks(html, "<!--", "-->")
    for name in ("script", "style", "noscript", "template"):
        html = _drop_blocks(html, f"<{name}", f"</{name}")
    text = htmllib.unescape(_TAG.sub(" ", html))
    return " ".join(text.split()).casefold()


def keyword_present(html: str, text: str) -> bool:
    """Whether ``text`` (case-insensitive, whitespace-normalised) is in the page's visible text."""
    return " ".join(text.split()).casefold() in page_text(html)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _child_text(element: ET.Element, name: str) -> str:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def parse_feed(body: bytes) -> list[FeedItem]:
    """Items of an RSS 2.0 or Atom document, newest first as published. Raises CheckError."""
    # Entity declarations are how "billion laughs" and external-entity attacks start; feeds
    # never need them.
    if b"<!entity" in body.lower():
        raise CheckError("the feed declares XML entities; refused for safety")
    try:
        root = ET.fromstring(body)  # noqa: S314 - entity declarations are refused above
    except ET.ParseError as exc:
        raise CheckError(f"the feed is not well-formed XML ({exc})") from None
    root_name = _local(root.tag)
    items: list[FeedItem] = []
    if root_name == "rss" or root_name == "rdf":
        for element in root.iter():
            if _local(element.tag) != "item":
                continue
            link = _child_text(element, "link")
            title = _child_text(element, "title")
            guid = _child_text(element, "guid") or link or title
            if guid:
                items.append(FeedItem(guid[:500], title[:300], link[:1000]))
            if len(items) >= MAX_FEED_ITEMS:
                break
    elif root_name == "feed":
        for element in root:
            if _local(element.tag) != "entry":
                continue
            link = ""
            for child in element:
                if _local(child.tag) == "link" and child.get("rel", "alternate") == "alternate":
                    link = child.get("href", "")
                    break
            title = _child_text(element, "title")
            entry_id = _child_text(element, "id") or link or title
            if entry_id:
                items.append(FeedItem(entry_id[:500], title[:300], link[:1000]))
            if len(items) >= MAX_FEED_ITEMS:
                break
    else:
        raise CheckError(f"not an RSS or Atom feed (the document is <{root_name}>)")
    return items


def json_value(body: bytes, path: str) -> float:
    """The number at ``path`` (dotted; list indexes as numbers) in the JSON ``body``."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise CheckError("the JSON document is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # includes huge integer literals
        raise CheckError(f"the answer is not valid JSON ({str(exc)[:120]})") from None
    current: Any = document
    walked: list[str] = []
    for segment in path.split("."):
        walked.append(segment)
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and re.fullmatch(r"\d{1,9}", segment):
            index = int(segment)
            if index >= len(current):
                raise CheckError(f"{'.'.join(walked)}: the list has only {len(current)} items")
            current = current[index]
        else:
            raise CheckError(f"{'.'.join(walked)} is not in the JSON document")
    if isinstance(current, bool) or not isinstance(current, int | float | str):
        raise CheckError(f"{path} is not a number (it is {type(current).__name__})")
    try:
        value = float(current)
    except (ValueError, OverflowError):
        raise CheckError(f"{path} is not a number ({str(current)[:40]!r})") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise CheckError(f"{path} is not a finite number")
    return value


def compare(value: float, op: str, threshold: float) -> bool:
    return {
        ">": value > threshold,
        "<": value < threshold,
        ">=": value >= threshold,
        "<=": value <= threshold,
    }[op]


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


async def evaluate(
    source: Source,
    state: dict[str, Any],
    fetcher: Fetcher,
    *,
    timeout: float,
    max_bytes: int,
) -> tuple[dict[str, Any], list[str]]:
    """Check ``source`` once. Returns ``(new_state, alerts)``; never raises for a bad page.

    ``state`` keys: ``ok`` (the condition / up state, None before the first good check),
    ``error`` (the last problem, shown in /sources), ``seen`` (feed ids), ``value`` (json).
    """
    new = dict(state)
    timeout = source.timeout or timeout
    alerts: list[str] = []
    try:
        response = await fetcher(
            source.url, timeout=timeout, max_bytes=max_bytes, read_body=source.kind != "up"
        )
    except FetchError as exc:
        new["error"] = str(exc)
        if source.kind == "up":
            if state.get("ok") is not False:
                alerts.append(f"🔴 DOWN: {source.url}\n{exc}")
            new["ok"] = False
        return new, alerts

    try:
        if source.kind == "up":
            good = (
                response.status == source.status
                if source.status is not None
                else response.status < 400
            )
            expected = str(source.status) if source.status is not None else "below 400"
            new["error"] = None if good else f"HTTP status {response.status}, expected {expected}"
            if not good and state.get("ok") is not False:
                alerts.append(f"🔴 DOWN: {source.url}\n{new['error']}")
            elif good and state.get("ok") is False:
                alerts.append(f"🟢 UP again: {source.url} (HTTP {response.status})")
            new["ok"] = good
        elif response.status >= 400:
            raise CheckError(f"HTTP status {response.status}")
        elif source.kind == "keyword":
            present = keyword_present(response.text(), source.text)
            met = present if source.mode == "present" else not present
            was = state.get("ok")
            if met and was is not True:
                word = "appeared on" if present else "disappeared from"
                alerts.append(f'🔔 "{source.text}" {word} {source.url}')
            elif not met and was is True:
                word = "is back on" if present else "is gone from"
                alerts.append(f'↩️ "{source.text}" {word} {source.url}')
            new.update(ok=met, error=None)
        elif source.kind == "feed":
            items = parse_feed(response.body)
            seen = list(state.get("seen") or [])
            known = set(seen)
            fresh = [i for i in items if i.id not in known]
            if state.get("ok") is not None and fresh:  # the first check only records a baseline
                lines = [f"📰 {i.title or i.link or i.id}\n{i.link}".strip() for i in fresh]
                listed = lines[:MAX_NEW_ITEMS_LISTED]
                more = len(lines) - len(listed)
                text = f"New in {source.url}:\n\n" + "\n\n".join(listed)
                if more:
                    text += f"\n\n…and {more} more"
                alerts.append(text)
            new.update(ok=True, error=None, seen=([i.id for i in fresh] + seen)[:MAX_SEEN_ITEMS])
        else:  # json
            value = json_value(response.body, source.path)
            met = compare(value, source.op, source.threshold)
            was = state.get("ok")
            limit = f"{source.op} {_fmt(source.threshold)}"
            if met and was is not True:
                alerts.append(f"📈 {source.path} is {_fmt(value)} ({limit}) at {source.url}")
            elif not met and was is True:
                alerts.append(
                    f"↩️ {source.path} is back to {_fmt(value)} (no longer {limit}) at {source.url}"
                )
            new.update(ok=met, error=None, value=value)
    except CheckError as exc:
        new["error"] = str(exc)
    return new, alerts
