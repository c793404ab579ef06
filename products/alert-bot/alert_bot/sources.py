"""The source line format: one watched thing per line, parsed with errors that name the problem.

::

    up URL [status N] [timeout S] [every T]
    keyword URL "some text" [present|absent] [timeout S] [every T]
    feed URL [timeout S] [every T]
    json URL dotted.path OP NUMBER [timeout S] [every T]      (OP: > < >= <=)

``T`` is seconds, or a number with ``s``, ``m`` or ``h`` (``every 5m``); without ``every`` a
source is checked every 300 s. Pure functions only: no I/O, no state.
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = ("up", "keyword", "feed", "json")
OPERATORS = (">=", "<=", ">", "<")
DEFAULT_EVERY = 300.0
MAX_EVERY = 7 * 86400.0
MAX_URL_LENGTH = 2000
MAX_LINE_LENGTH = 2500
MAX_KEYWORD_LENGTH = 200
MAX_TIMEOUT = 60.0
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_$@-]{1,100}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh]?)$")


class SourceError(ValueError):
    """A source line that cannot be used; the message says why (shown to the customer)."""


@dataclass(frozen=True, slots=True)
class Source:
    """One parsed source line. ``line`` is its canonical spelling (the id is derived from it)."""

    kind: str
    url: str
    every: float = DEFAULT_EVERY
    timeout: float | None = None
    status: int | None = None  # up: the expected status; None means "any status below 400"
    text: str = ""  # keyword
    mode: str = "present"  # keyword: alert when the text is "present" or "absent"
    path: str = ""  # json: dotted path, list indexes as numbers
    op: str = ""  # json
    threshold: float = 0.0  # json

    @property
    def id(self) -> str:
        """A short stable id (the same line always gets the same id)."""
        return hashlib.sha256(self.line.encode()).hexdigest()[:8]

    @property
    def line(self) -> str:
        parts = [self.kind, self.url]
        if self.kind == "up" and self.status is not None:
            parts += ["status", str(self.status)]
        elif self.kind == "keyword":
            parts += [shlex.quote(self.text), self.mode]
        elif self.kind == "json":
            parts += [self.path, self.op, _number(self.threshold)]
        if self.timeout is not None:
            parts += ["timeout", _number(self.timeout)]
        parts += ["every", _number(self.every)]
        return " ".join(parts)

    def describe(self) -> str:
        """A short human description for alerts and /sources."""
        if self.kind == "up":
            return f"{self.url} is up"
        if self.kind == "keyword":
            return f'"{self.text}" {self.mode} on {self.url}'
        if self.kind == "feed":
            return f"new items in {self.url}"
        return f"{self.path} {self.op} {_number(self.threshold)} at {self.url}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def check_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host; else :class:`SourceError`."""
    if len(url) > MAX_URL_LENGTH:
        raise SourceError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise SourceError(f"{url!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise SourceError(f"only http:// and https:// URLs can be watched, not {url!r}")
    if not parts.hostname:
        raise SourceError(f"{url!r} has no host name")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise SourceError("the URL contains spaces or control characters")
    return url


def parse_duration(text: str) -> float:
    """``60``, ``90s``, ``5m``, ``2h`` → seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise SourceError(f"{text!r} is not a duration (use seconds, or e.g. 90s, 5m, 2h)")
    value = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if value > MAX_EVERY:
        raise SourceError("the interval is at most 7 days")
    return value


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SourceError(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SourceError(f"{what} must be a positive number")
    return value


def parse_line(line: str, *, min_every: float = 30.0) -> Source:
    """Parse one source line (see the module docstring). Raises :class:`SourceError`."""
    if not isinstance(line, str):
        raise SourceError("a source must be a line of text")
    if len(line) > MAX_LINE_LENGTH:
        raise SourceError(f"the line is longer than {MAX_LINE_LENGTH} characters")
    try:
        tokens = shlex.split(line)
    except ValueError as exc:  # an unclosed quote
        raise SourceError(f"cannot split the line into words ({exc})") from None
    if not tokens:
        raise SourceError("the line is empty")
    kind = tokens[0].lower()
    if kind not in KINDS:
        raise SourceError(f"unknown source type {tokens[0]!r}; use one of {', '.join(KINDS)}")
    if len(tokens) < 2:
        raise SourceError(f"{kind} needs a URL")
    url = check_url(tokens[1])
    rest = tokens[2:]

    # Options that every kind accepts, taken from the end: "timeout S", "every T".
    fields: dict[str, object] = {}
    options = ("every", "timeout", "status") if kind == "up" else ("every", "timeout")
    while len(rest) >= 2 and rest[-2].lower() in options:
        name, value = rest[-2].lower(), rest[-1]
        if name in fields:
            raise SourceError(f"{name} is given twice")
        if name == "every":
            fields["every"] = parse_duration(value)
        elif name == "timeout":
            timeout = _positive(value, "timeout")
            if timeout > MAX_TIMEOUT:
                raise SourceError(f"timeout is at most {MAX_TIMEOUT:.0f} seconds")
            fields["timeout"] = timeout
        else:
            if not value.isdigit() or not 100 <= int(value) <= 599:
                raise SourceError(f"status must be an HTTP status code (100-599), not {value!r}")
            fields["status"] = int(value)
        rest = rest[:-2]
    every = float(fields.get("every", DEFAULT_EVERY))  # type: ignore[arg-type]
    if every < min_every:
        raise SourceError(f"the interval must be at least {min_every:.0f} seconds")
    fields["every"] = every

    if kind in ("up", "feed"):
        if rest:
            raise SourceError(f"unexpected words after the URL: {' '.join(rest)!r}")
    elif kind == "keyword":
        if not rest:
            raise SourceError('keyword needs the text to look for, in quotes: "sold out"')
        text = rest[0].strip()
        if not text or len(text) > MAX_KEYWORD_LENGTH:
            raise SourceError(f"the keyword must be 1 to {MAX_KEYWORD_LENGTH} characters")
        mode = rest[1].lower() if len(rest) > 1 else "present"
        if mode not in ("present", "absent") or len(rest) > 2:
            raise SourceError(f"after the keyword write present or absent, not {rest[1:]!r}")
        fields.update(text=text, mode=mode)
    else:  # json
        if len(rest) != 3:
            raise SourceError("json needs: a dotted path, an operator (> < >= <=) and a number")
        path, op, number = rest
        segments = path.split(".")
        if len(segments) > 20 or not all(_PATH_SEGMENT.match(s) for s in segments):
            raise SourceError(f"{path!r} is not a dotted path like data.items.0.price")
        if op not in OPERATORS:
            raise SourceError(f"{op!r} is not one of > < >= <=")
        try:
            threshold = float(number)
        except ValueError:
            raise SourceError(f"{number!r} is not a number") from None
        if not math.isfinite(threshold):
            raise SourceError("the threshold must be a finite number")
        fields.update(path=path, op=op, threshold=threshold)
    return Source(kind=kind, url=url, **fields)  # type: ignore[arg-type]


def parse_lines(lines: list[str], *, min_every: float = 30.0) -> tuple[list[Source], list[str]]:
    """Parse configured lines: the good sources (duplicates once) and one error per bad line,
    each naming the line's number and text."""
    sources: dict[str, Source] = {}
    errors: list[str] = []
    for number, line in enumerate(lines, 1):
        if not isinstance(line, str) or not line.strip() or line.strip().startswith("#"):
            continue
        try:
            source = parse_line(line, min_every=min_every)
        except SourceError as exc:
            errors.append(f"line {number} ({line.strip()[:80]!r}): {exc}")
            continue
        sources.setdefault(source.id, source)
    return list(sources.values()), errors


def check_source_line(value: str) -> str:
    """The install form's live check of one ``sources`` line (``x-otomat-check``): a short
    confirmation, or ``ValueError`` with the reason. Parses only (no network: it must answer
    while the customer types; reachability shows in /sources after the first check)."""
    try:
        source = parse_line(value, min_every=10)
    except SourceError as exc:
        raise ValueError(str(exc)) from None
    return f"{source.describe()}, every {_number(source.every)} s"
