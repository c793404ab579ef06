"""The one shape every health check speaks: a :class:`Signal` handed to ``alerts.report()``.

A plain dataclass so that checks (platform, Telegram, uptime, the instance scan) import no
monitoring model. ``subject`` is the stable key of what is checked; ``ok`` is one observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Signal:
    # "instance" | "instance.backoff" | "telegram" | "host.disk" | "host.memory" | "host.load"
    # | "service.worker" | "service.scheduler" | "service.runner" | "service.web" | "queue.lag"
    check: str
    subject: str  # e.g. "instance:<uuid>", "host:<name>", "service:worker", "disk:/var/lib/otomat"
    ok: bool  # this observation: healthy or not
    summary: str = ""  # one line for people ("disk 93 % full (threshold 90 %)")
    details: str = ""  # e.g. the last log lines (never secrets)
    group: str = ""  # grouping key: "host:<runner host>" or "version:<product>@<version>"
    account_id: int | None = None
    instance_id: str | None = None
    value: float | None = None  # the measured value, when there is one
    at: datetime | None = None  # observation time (default: now)
