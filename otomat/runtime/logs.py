"""Instance log files: a size-rotated writer used by the backends and ``tail`` for the pages/API.

Layout: ``<log_path>`` is the current file, ``<log_path>.1`` … ``<log_path>.N`` the rotated ones
(``.1`` the newest). Every line starts with a UTC timestamp (``2025-01-31T12:00:00.123Z``); the
text after it is what the program printed, with the instance's secrets replaced by
``[redacted]``. Writers never write the configuration itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_BACKUPS = 3
MAX_LINE_BYTES = 16 * 1024  # a runaway line (a dumped blob) is cut, not allowed to fill the file
REDACTED = "[redacted]"

_SECRET_KEY = re.compile(r"token|secret|passw|api_?key|private|credential", re.IGNORECASE)
_TELEGRAM_TOKEN = re.compile(r"^\d{5,16}:[A-Za-z0-9_-]{20,}$")
_MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


def secret_values(config: Mapping[str, Any]) -> set[str]:
    """Strings in ``config`` (nested) that look secret: under a key naming a token, password,
    key or secret, or shaped like a Telegram bot token. Used to scrub captured output."""
    found: set[str] = set()

    def walk(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v, key)
        elif (
            isinstance(value, str)
            and len(value) >= _MIN_SECRET_LEN
            and (_SECRET_KEY.search(key) or _TELEGRAM_TOKEN.match(value))
        ):
            found.add(value)

    walk(config, "")
    return found


def timestamp(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class LogWriter:
    """Appends timestamped lines to ``path``, rotating it by size.

    Not thread-safe; used from the runner's event loop. Each :meth:`write` call ends with one
    flush, so a reader (``tail``) sees complete lines as soon as the call returns.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        secrets: Iterable[str] = (),
    ) -> None:
        if max_bytes < 1024 or backups < 1:
            raise ValueError("max_bytes must be at least 1024 and backups at least 1")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        # Longest first, so a secret containing another one is replaced whole.
        self._secrets = sorted(set(secrets), key=len, reverse=True)
        self._file: Any = None
        self._size = 0

    def set_secrets(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(set(secrets), key=len, reverse=True)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across writes
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self._file.close()
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def write(self, lines: Iterable[str], *, at: datetime | None = None) -> None:
        """Append ``lines`` (without newlines) stamped with ``at`` (default: now)."""
        stamp = timestamp(at)
        if self._file is None:
            self._open()
        for line in lines:
            data = f"{stamp} {self.scrub(line)}".encode(errors="replace")
            if len(data) > MAX_LINE_BYTES:
                data = data[:MAX_LINE_BYTES] + " …[cut]".encode()
            data += b"\n"
            if self._size > 0 and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._size += len(data)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _tail_file(path: Path, wanted: int, block: int = 8192) -> list[bytes]:
    """The last ``wanted`` lines of one file, read backwards in blocks (no full read)."""
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return []
    with f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        chunks: list[bytes] = []
        newlines = 0
        while pos > 0 and newlines <= wanted:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
        data = b"".join(reversed(chunks))
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if pos > 0:
        lines = lines[1:]  # the first line may be a fragment
    return lines[-wanted:] if wanted else []


def tail(log_path: Path, lines: int = 100) -> list[str]:
    """The last ``lines`` lines of an instance log, oldest first, across rotated files.

    Reads only the ends of the files it needs; missing files count as empty. Undecodable bytes
    are replaced, so the result is always displayable.
    """
    if lines <= 0:
        return []
    log_path = Path(log_path)
    collected: list[bytes] = []
    n = 0
    while len(collected) < lines:
        path = log_path if n == 0 else log_path.with_name(f"{log_path.name}.{n}")
        if n > 0 and not path.exists():
            break
        collected = _tail_file(path, lines - len(collected)) + collected
        n += 1
    return [line.decode("utf-8", errors="replace") for line in collected]
