"""One JSON object per log line (``OTOMAT_LOG_FORMAT=json``), for log shippers (Loki, Vector,
journald's JSON export, Elasticsearch). Standard library only.

Each line has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``,
``process``, ``thread`` and, when there is one, ``exc`` (the formatted traceback), plus any
``extra={...}`` fields a caller passed that are plain JSON values. The message is formatted
exactly as the plain format would show it, so nothing the plain format keeps out (the bot
token that httpx would log at INFO is silenced by the LOGGING levels) gets in here.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_") or key in entry:
                continue
            if isinstance(value, str | int | float | bool) or value is None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
