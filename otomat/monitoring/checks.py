"""Instance checks the scan runs besides the instances' recorded states (``alerts.scan``):

* **Telegram's side** (:func:`telegram_signals`): a bot whose process looks alive can still be
  dead to its users — its token revoked at @BotFather (``getMe`` answers 401 Unauthorized), or,
  in webhook mode, Telegram failing to deliver to it (``getWebhookInfo`` shows pending updates
  and a recent delivery error). Each running customer bot is asked at the configured Bot API
  every ``OTOMAT_TELEGRAM_CHECK_SECONDS``, at most ``OTOMAT_TELEGRAM_CHECK_BATCH`` bots per scan
  (the longest unchecked first), ``OTOMAT_TELEGRAM_CHECK_CONCURRENCY`` requests at a time, for
  at most 30 seconds per scan (the bots not asked by then are first the next time). What
  Telegram said is kept in :class:`~otomat.monitoring.models_uptime.TelegramStatus` (also the
  bot's @username for the pages) and reported as a ``telegram`` signal. A Bot API that cannot be
  reached says nothing about the bot: no signal then. Tokens travel only in the request URL and
  are never logged (httpx's log lines are redacted by ``otomat.catalog.checks``).
* **Stuck provisioning** (:func:`provisioning_timeouts`): an instance asked to run that has not
  answered within ``OTOMAT_PROVISION_TIMEOUT_SECONDS`` — while a runner was alive all that time —
  becomes ``failed`` through ``instances.services.transition``, with the reason and its last log
  lines (seen with a Bot API whose ``getMe`` answer lacked a field the bot's library needs: the
  bot retried for ever and the install stayed ``provisioning``).

Both are registered with ``alerts.register_check`` by :func:`connect`, together with the uptime
aggregation (``otomat.monitoring.uptime.record_hours``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection
from django.db.models import F, OuterRef, Q, Subquery

from otomat.instances.models import Instance
from otomat.monitoring.models_uptime import TelegramStatus
from otomat.monitoring.signals import Signal
from otomat.monitoring.uptime import group_of

log = logging.getLogger("otomat.monitoring")
S = Instance.State
ACTOR = "system:monitoring"
REQUEST_TIMEOUT = 5.0
# The Telegram checks of one scan stop asking after this long (a Bot API that hangs must not
# hold the scan, and its lease, for batch × timeout): the bots not asked are first next time.
TELEGRAM_BUDGET_SECONDS = 30.0
FAILED_LOG_LINES = 20
# Instances failed per scan at most (a runner that was wedged for a while: the rest next scan).
PROVISION_BATCH = 200


# -- Telegram ----------------------------------------------------------------------------------


@dataclass
class _Target:
    instance_id: str
    name: str
    account_id: int
    group: str
    token: str  # never logged, never stored here
    webhook: bool


@dataclass
class _Answer:
    """What the Bot API said about one bot; ``ok`` None = it could not be asked."""

    ok: bool | None
    summary: str = ""
    skipped: bool = False  # not asked at all (the scan's time budget was spent)
    username: str = ""
    pending: int | None = None
    last_error: str = ""
    last_error_at: datetime | None = None


def _token(schema: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The value of the first ``telegram_token`` field of ``config`` (the field the install
    form checks with getMe), or ""."""
    from otomat.catalog.schema_form import field_specs

    for spec in field_specs(schema):
        if spec.check != "telegram_token":
            continue
        value: Any = config
        for key in spec.path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value:
            return value
    return ""


def _due(now: datetime) -> list[_Target]:
    """The running customer bots whose last check is older than the interval, the longest
    unchecked first, at most a batch (one query, plus the secrets decrypted for these only)."""
    cutoff = now - timedelta(seconds=settings.TELEGRAM_CHECK_SECONDS)
    last = TelegramStatus.objects.filter(instance=OuterRef("pk")).values("checked_at")[:1]
    rows = (
        Instance.objects.filter(
            kind=Instance.Kind.CUSTOMER,
            state=S.RUNNING,
            desired=Instance.Desired.RUNNING,
        )
        .exclude(bot_id="")
        .annotate(checked=Subquery(last))
        .filter(Q(checked__isnull=True) | Q(checked__lte=cutoff))
        .order_by(F("checked").asc(nulls_first=True), "id")
        .select_related("version__product")
        .only(
            "id",
            "name",
            "account_id",
            "config",
            "secrets",
            "version__version",
            "version__runtime",
            "version__config_schema",
            "version__product__slug",
        )[: settings.TELEGRAM_CHECK_BATCH]
    )
    webhook_mode = bool(settings.INGRESS_PUBLIC_URL)
    targets = []
    for instance in rows:
        version = instance.version
        token = _token(version.config_schema, instance.full_config())
        if not token:
            continue
        targets.append(
            _Target(
                instance_id=str(instance.pk),
                name=instance.name,
                account_id=instance.account_id,
                group=group_of(version.product.slug, version.version, version.runtime),
                token=token,
                # Shared hosts take their updates through the webhook ingress when it has a
                # public URL; process bots and polling hosts have no webhook to ask about.
                webhook=webhook_mode and version.runtime == "shared",
            )
        )
    return targets


def _call(client: httpx.Client, token: str, method: str) -> tuple[int, dict] | None:
    """(HTTP status, JSON body) of a Bot API call, or None when the server could not be
    reached or did not answer JSON. The URL holds the token: never put it in a message."""
    try:
        response = client.get(f"{settings.BOT_API_URL}/bot{token}/{method}")
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.info("Bot API %s not answered (%s)", method, type(exc).__name__)
        return None
    return response.status_code, body if isinstance(body, dict) else {}


def _ask(client: httpx.Client, target: _Target, now: datetime, deadline: float) -> _Answer:
    if time.monotonic() > deadline:
        return _Answer(ok=None, skipped=True)
    got = _call(client, target.token, "getMe")
    if got is None:
        return _Answer(ok=None)
    status, body = got
    if status in (401, 404) or (body.get("error_code") in (401, 404)):
        return _Answer(
            ok=False,
            summary=f"{target.name}: the Bot API refuses the bot's token ({status} "
            f"{str(body.get('description', 'Unauthorized'))[:80]}): it was revoked or "
            "replaced at @BotFather",
        )
    result = body.get("result")
    if status != 200 or not body.get("ok") or not isinstance(result, dict):
        return _Answer(ok=None)  # a server error (5xx, 429): nothing known about the bot
    answer = _Answer(ok=True, username=str(result.get("username") or "")[:64])
    if not target.webhook:
        return answer
    got = _call(client, target.token, "getWebhookInfo")
    if got is None or got[0] != 200 or not isinstance(got[1].get("result"), dict):
        return answer
    info = got[1]["result"]
    pending = info.get("pending_update_count")
    answer.pending = pending if isinstance(pending, int) and pending >= 0 else None
    error_date = info.get("last_error_date")
    if isinstance(error_date, int) and error_date > 0:
        answer.last_error_at = datetime.fromtimestamp(error_date, UTC)
        answer.last_error = str(info.get("last_error_message") or "")[:300]
    # Telegram keeps the last error after deliveries work again; with updates waiting and an
    # error since the last check, deliveries are failing now.
    recent = now - timedelta(seconds=max(2 * settings.TELEGRAM_CHECK_SECONDS, 600))
    if answer.pending and answer.last_error_at and answer.last_error_at >= recent:
        answer.ok = False
        answer.summary = (
            f"{target.name}: Telegram cannot deliver to the webhook "
            f"({answer.last_error or 'no reason given'}; {answer.pending} updates waiting)"
        )
    return answer


def _store(targets: list[_Target], answers: list[_Answer], now: datetime) -> None:
    """Upsert what the Bot API said (one bulk statement); for a bot it could not be asked
    about, only the time of the attempt (what was known — its @username — stays)."""
    reached, unreachable = [], []
    for target, answer in zip(targets, answers, strict=True):
        if answer.skipped:
            continue  # not asked: stays due
        if answer.ok is None:
            unreachable.append(target.instance_id)
            continue
        reached.append(
            TelegramStatus(
                instance_id=target.instance_id,
                checked_at=now,
                ok=answer.ok,
                summary=answer.summary[:300],
                username=answer.username,
                pending_updates=answer.pending,
                last_error=answer.last_error,
                last_error_at=answer.last_error_at,
            )
        )
    fields = ["checked_at", "ok", "summary", "username", "pending_updates", "last_error"]
    key = ["instance"] if connection.features.supports_update_conflicts_with_target else None
    TelegramStatus.objects.bulk_create(
        reached,
        batch_size=500,
        update_conflicts=True,
        unique_fields=key,
        update_fields=[*fields, "last_error_at"],
    )
    if unreachable:
        known = {
            str(pk)
            for pk in TelegramStatus.objects.filter(instance_id__in=unreachable).values_list(
                "instance_id", flat=True
            )
        }
        TelegramStatus.objects.filter(instance_id__in=known).update(checked_at=now)
        TelegramStatus.objects.bulk_create(
            [
                TelegramStatus(
                    instance_id=iid, checked_at=now, summary="The Bot API did not answer."
                )
                for iid in unreachable
                if iid not in known
            ],
            ignore_conflicts=True,
        )


def telegram_signals(now: datetime) -> list[Signal]:
    """Ask the Bot API about the bots due for a check; one ``telegram`` signal per bot that
    answered (registered with the scan)."""
    targets = _due(now)
    if not targets:
        return []
    workers = min(settings.TELEGRAM_CHECK_CONCURRENCY, len(targets))
    with (
        httpx.Client(timeout=REQUEST_TIMEOUT) as client,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="telegram-check") as pool,
    ):
        deadline = time.monotonic() + TELEGRAM_BUDGET_SECONDS
        answers = list(pool.map(lambda t: _ask(client, t, now, deadline), targets))
    _store(targets, answers, now)
    return [
        Signal(
            check="telegram",
            subject=f"instance:{target.instance_id}",
            ok=bool(answer.ok),
            summary=answer.summary,
            details=f"last delivery error: {answer.last_error}" if answer.last_error else "",
            group=target.group,
            account_id=target.account_id,
            instance_id=target.instance_id,
            value=float(answer.pending) if answer.pending is not None else None,
            at=now,
        )
        for target, answer in zip(targets, answers, strict=True)
        if answer.ok is not None
    ]


# -- stuck provisioning ------------------------------------------------------------------------


def _runner_up_since(now: datetime) -> datetime | None:
    """Since when a runner has been beating without a break (the oldest live runner's first
    beat), or None when no runner is alive."""
    from otomat.ops.models import ServiceHeartbeat

    fresh = now - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    return (
        ServiceHeartbeat.objects.filter(service=ServiceHeartbeat.Service.RUNNER, seen_at__gte=fresh)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )


def provisioning_timeouts(now: datetime) -> list[Signal]:
    """Fail the instances provisioning for longer than ``OTOMAT_PROVISION_TIMEOUT_SECONDS``
    while a runner was alive (without one nobody tried to start them: that is the runner's
    alert). Returns a failing ``instance`` signal per customer instance failed here."""
    from otomat.instances.services import InstanceError, transition
    from otomat.runtime.logs import tail

    timeout = settings.PROVISION_TIMEOUT_SECONDS
    cutoff = now - timedelta(seconds=timeout)
    since = _runner_up_since(now)
    if since is None or since > cutoff:
        return []
    stuck = (
        Instance.objects.filter(
            state=S.PROVISIONING, desired=Instance.Desired.RUNNING, state_changed_at__lte=cutoff
        )
        .select_related("version__product")
        .defer("config", "secrets")
        .order_by("state_changed_at")[:PROVISION_BATCH]
    )
    signals = []
    for instance in stuck:
        lines = tail(instance.log_path, FAILED_LOG_LINES)
        reason = f"did not answer within {timeout} s of being started"
        message = reason + "\n" + "\n".join(lines) if lines else reason + " (the log is empty)"
        try:
            transition(
                instance,
                S.FAILED,
                cause=reason,
                actor_label=ACTOR,
                expected_from={S.PROVISIONING},
                status_message=message[-4000:],
            )
        except InstanceError:
            continue  # it answered, or someone stopped it, meanwhile
        log.warning("instance %s failed: %s", instance.pk, reason)
        if instance.kind != Instance.Kind.CUSTOMER:
            continue
        version = instance.version
        signals.append(
            Signal(
                check="instance",
                subject=f"instance:{instance.pk}",
                ok=False,
                summary=f"{instance.name}: {reason}",
                details="\n".join(lines)[-2000:],
                group=group_of(version.product.slug, version.version, version.runtime),
                account_id=instance.account_id,
                instance_id=str(instance.pk),
                at=now,
            )
        )
    return signals


def connect() -> None:
    """Register the instance checks and the uptime aggregation with the scan (from ready())."""
    from otomat.monitoring import alerts, uptime

    alerts.register_check(telegram_signals)
    # After the instances' own signals: a stuck instance failed here speaks in the same scan.
    alerts.register_check(provisioning_timeouts)
    alerts.register_check(uptime.record_hours)
