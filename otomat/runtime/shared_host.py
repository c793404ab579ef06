"""``python -m otomat.runtime.shared_host``: many bot instances of one product version in one
process (the ``shared`` runtime's host; the runner side is ``otomat.runtime.backends.shared``).

Protocol (full description in docs/runtime.md, "The shared backend")::

    python -u -m otomat.runtime.shared_host --source DIR --entry package.module:factory

* **stdin**: commands, one JSON object per line. Secrets (the bot token in ``config``) travel
  only here, never in argv, environment or logs::

      {"cmd": "add", "instance_id": "...", "generation": 1, "config": {...}, "api_url": "...",
       "data_dir": "...", "log_path": "..." | null, "store": "<token>" | null,
       "webhook": null | {"url": "...", "secret": "..."}}
      {"cmd": "remove", "instance_id": "..."}

  A spare host (``--spare``, started without ``--source``/``--entry``) imports and warms up,
  says ``host_ready`` {spare: true}, beats with ``host_heartbeat`` and waits for
  ``{"cmd": "adopt", "source": DIR, "entry": "package.module:factory"}``; it then imports the
  product (``fatal`` and exit 3 when it cannot), says ``adopted`` and serves as above.

  ``log_path`` null (what the backend sends): the instance's log lines go to the runner as
  ``log`` events, since a sandboxed host cannot see the platform's log directory. ``store``: the
  instance's capability token for the store the runner serves (``--store remote``, see
  ``otomat.runtime.hoststore``); the host holds no database credentials.

  stdin closed means the backend is gone: every instance is stopped and the host exits 0.
* **control fd** (``OTOMAT_CONTROL_FD``): events, JSON lines, each naming its instance:
  ``host_ready``; ``ready`` {instance_id, generation, username, bot_id}; ``heartbeat``
  {instance_id, generation, updates, errors, last_update}; ``error`` {instance_id, message};
  ``fatal`` {instance_id, reason, message} (the instance is dropped: invalid token, broken
  router factory); ``removed`` {instance_id}; ``rejected`` {instance_id, message} (bad command);
  ``host_heartbeat`` {instances} with every round of heartbeats; ``log`` {instance_id, lines}
  (already scrubbed of the instance's secrets; the runner stamps and writes them).
  A host-wide ``fatal`` without instance_id precedes exit code 3 (entry not importable).
* **updates fd** (``OTOMAT_UPDATES_FD``, optional): webhook updates forwarded by the ingress,
  framed as ``!HI`` (id length, body length) + instance id + the update's JSON body.
* **store fd** (``OTOMAT_STORE_FD``, with ``--store remote``): the socket to the runner's store
  service (``otomat.runtime.hoststore``).

Isolation inside the process: every update is handled in its own task with a per-instance
concurrency bound and a timeout, so a slow or failing handler only affects its own bot;
exceptions are counted and logged for that instance only. Log records are routed to the
instance's own log file by a context variable set in each instance's tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import importlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otomat.botkit.context import BotContext
from otomat.botkit.host import InvalidTokenError, get_me, load_entry
from otomat.botkit.protocol import CONTROL_FD_ENV, EXIT_CONFIG_ERROR
from otomat.botkit.store import SQLiteStore, Store
from otomat.runtime.hoststore import STORE_FD_ENV, RemoteStore, StoreChannel
from otomat.runtime.logs import MAX_LINE_BYTES, LogWriter, secret_values

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession

    from otomat.botkit.host import RouterFactory

log = logging.getLogger("otomat.shared_host")

UPDATES_FD_ENV = "OTOMAT_UPDATES_FD"
FRAME_HEADER = struct.Struct("!HI")  # instance id length, body length
MAX_COMMAND_LINE = 1 << 20  # a configuration is a few KiB
MAX_UPDATE_BYTES = 1 << 20
MAX_ERROR_MESSAGE = 500
DEFAULT_HEARTBEAT_SECONDS = 5.0
DEFAULT_UPDATE_TIMEOUT = 60.0
DEFAULT_CONCURRENCY = 4  # updates of one instance handled at the same time (see bench/README.md)
# Updates of one instance queued or running. Polling stops fetching at this bound (back-pressure
# on that instance only); webhook updates beyond it are dropped with an error, since the
# ingress already answered 200. Each waiting update costs about 2 KiB.
DEFAULT_MAX_PENDING = 10_000
POLL_TIMEOUT = 25  # long-poll seconds
API_CONNECTIONS = 100  # pooled connections per Bot API URL for everything but long polls
POLL_BACKLOG = 100  # a polling instance with this many updates in flight stops fetching
POLL_BACKOFF_MAX = 30.0
REMOVE_GRACE = 2.0  # running handlers of a removed instance get this long before cancellation

# The instance whose code is running in the current task (None: host-level code).
_current: contextvars.ContextVar[Instance | None] = contextvars.ContextVar(
    "otomat_instance", default=None
)


class InstanceLog:
    """An instance's log, secrets scrubbed (``runtime.logs``): ``log`` events to the runner
    (``path`` None, what the backend asks for), or a file of the host's own (a host run by hand).

    The file is closed after every write: a host may carry a thousand mostly silent instances,
    and an open buffered file per instance would cost a descriptor and 8 KiB each. Reopening
    also picks up the current size if the runner appended or rotated meanwhile.
    """

    LINES_PER_EVENT = 64  # keeps one event far below the runner's 1 MiB line limit

    def __init__(
        self,
        path: Path | None,
        config: dict[str, Any],
        *,
        control: Control | None = None,
        instance_id: str = "",
    ) -> None:
        # A path is only needed for rotation; scrub() works without a file.
        self.writer = LogWriter(path or Path("/dev/null"), secrets=secret_values(config))
        self.to_file = path is not None
        self.control = control
        self.instance_id = instance_id

    def write(self, lines: list[str]) -> None:
        if not self.to_file:
            if self.control is not None:
                cut = [self.writer.scrub(line)[:MAX_LINE_BYTES] for line in lines]
                for i in range(0, len(cut), self.LINES_PER_EVENT):
                    chunk = cut[i : i + self.LINES_PER_EVENT]
                    self.control.send("log", instance_id=self.instance_id, lines=chunk)
            return
        try:
            self.writer.write(lines)
        except OSError as exc:
            print(f"otomat: cannot write {self.writer.path}: {exc}", file=sys.stderr)
        finally:
            self.writer.close()


class RoutingHandler(logging.Handler):
    """Sends a record to the log of the instance whose task emitted it, else to stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            inst = _current.get()
            if inst is None:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
            else:
                inst.log.write(text.splitlines())
        except Exception:
            self.handleError(record)


class Control:
    """JSON-line events on the control fd through an asyncio pipe transport.

    Unlike botkit's single-bot channel, batches can be large (a heartbeat for every instance),
    so writes are buffered by the transport instead of being written whole or dropped; when the
    buffer passes ``MAX_BUFFER`` (the runner stopped reading) heartbeats are dropped, not other
    events.
    """

    MAX_BUFFER = 4 << 20

    def __init__(self) -> None:
        self.transport: asyncio.WriteTransport | None = None

    async def open(self, fd: int | None) -> None:
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(fd, "wb", buffering=0)
        self.transport, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe)

    def send(self, event: str, **fields: Any) -> None:
        self.send_many([{"event": event, **fields}])

    def send_many(self, events: list[dict[str, Any]]) -> None:
        if self.transport is None or self.transport.is_closing() or not events:
            return
        if self.transport.get_write_buffer_size() > self.MAX_BUFFER:
            # The runner stopped reading: counters and log lines are what may be lost.
            events = [e for e in events if e.get("event") not in ("heartbeat", "log")]
            if not events:
                return
        data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        self.transport.write(data.encode())


@dataclass(frozen=True)
class AddCommand:
    """A checked ``add`` command. ``parse`` never includes the line in its error (secrets)."""

    instance_id: str
    generation: int
    config: dict[str, Any] = field(repr=False)
    api_url: str
    data_dir: Path
    log_path: Path | None
    store_token: str | None = field(default=None, repr=False)
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AddCommand:
        """Raise ``ValueError`` with a message safe to log when a field is missing or wrong."""
        for key, kind in (
            ("instance_id", str),
            ("config", dict),
            ("api_url", str),
            ("data_dir", str),
        ):
            if not isinstance(data.get(key), kind):
                raise ValueError(f"add: {key} must be a {kind.__name__}")
        for key in ("log_path", "store"):
            if data.get(key) is not None and not (isinstance(data[key], str) and data[key]):
                raise ValueError(f"add: {key} must be a non-empty string or null")
        if not data["instance_id"] or not data["api_url"].startswith(("http://", "https://")):
            raise ValueError("add: instance_id must be non-empty and api_url an http(s) URL")
        if not isinstance(data["config"].get("bot_token"), str):
            raise ValueError("add: config has no bot_token string")
        generation = data.get("generation", 1)
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise ValueError("add: generation must be an integer")
        hook = data.get("webhook")
        url = secret = None
        if hook is not None:
            if not (
                isinstance(hook, dict)
                and isinstance(hook.get("url"), str)
                and isinstance(hook.get("secret"), str)
                and hook["secret"]
            ):
                raise ValueError("add: webhook must be {url, secret} strings")
            url, secret = hook["url"], hook["secret"]
        return cls(
            instance_id=data["instance_id"],
            generation=generation,
            config=data["config"],
            api_url=data["api_url"],
            data_dir=Path(data["data_dir"]),
            log_path=Path(data["log_path"]) if data.get("log_path") else None,
            store_token=data.get("store"),
            webhook_url=url,
            webhook_secret=secret,
        )


@dataclass(eq=False)
class Instance:
    """One bot living in this host."""

    cmd: AddCommand
    log: InstanceLog
    ctx: BotContext
    sem: asyncio.Semaphore
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    bot: Bot | None = None
    dp: Dispatcher | None = None
    ready: bool = False
    updates: int = 0
    errors: int = 0
    last_update: float | None = None  # epoch seconds when the last update was handled
    main: asyncio.Task[None] | None = None
    jobs: asyncio.Task[None] | None = None  # ctx.scheduler.run, when the product has jobs
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> str:
        return self.cmd.instance_id


# Where instances keep their data: "sqlite" (a file in each instance's data directory) or
# "remote" (the store the runner serves over the store fd: the platform's "database" store,
# reached without any database credentials; see otomat.runtime.hoststore).
STORES = ("sqlite", "remote")


class SharedHost:
    """Runs the instances of one product version. Methods run on the host's event loop."""

    def __init__(
        self,
        factory: RouterFactory,
        control: Control,
        *,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        update_timeout: float = DEFAULT_UPDATE_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_pending: int = DEFAULT_MAX_PENDING,
        poll_timeout: int = POLL_TIMEOUT,
        store: str = "sqlite",
        store_channel: StoreChannel | None = None,
    ) -> None:
        if store not in STORES or (store == "remote" and store_channel is None):
            raise ValueError(f"store must be one of {', '.join(STORES)} (remote with a channel)")
        self.store_kind = store
        self.store_channel = store_channel
        self.factory = factory
        self.control = control
        self.heartbeat_seconds = heartbeat_seconds
        self.update_timeout = update_timeout
        self.concurrency = concurrency
        self.max_pending = max_pending
        self.poll_timeout = poll_timeout
        self.instances: dict[str, Instance] = {}
        self._sessions: dict[str, AiohttpSession] = {}
        self._removing: dict[str, asyncio.Task[None]] = {}

    # -- sessions -----------------------------------------------------------------------------

    def session(self, api_url: str, *, polling: bool = False) -> AiohttpSession:
        """HTTP sessions (connection pools) per Bot API URL, shared by every bot: aiogram
        sessions are token-agnostic, and one pool per bot would cost ~100 KiB each.

        Long polls get their own pool without a size limit (each polling bot keeps one request
        open); everything else shares a pool of ``API_CONNECTIONS``, so a burst of answers
        reuses warm connections instead of opening hundreds.
        """
        key = ("poll:" if polling else "api:") + api_url
        found = self._sessions.get(key)
        if found is None:
            from aiogram.client.session.aiohttp import AiohttpSession
            from aiogram.client.telegram import TelegramAPIServer

            limit = 0 if polling else API_CONNECTIONS
            from otomat.botkit.flood import honour_flood_limits

            found = AiohttpSession(api=TelegramAPIServer.from_base(api_url), limit=limit)
            honour_flood_limits(found)
            self._sessions[key] = found
        return found

    # -- commands -----------------------------------------------------------------------------

    async def command(self, raw: bytes) -> None:
        """Apply one stdin line; a bad line is answered with a ``rejected`` event."""
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.reject(None, f"command is not JSON ({type(exc).__name__})")
            return
        if not isinstance(data, dict):
            self.reject(None, "command must be a JSON object")
            return
        iid = data.get("instance_id") if isinstance(data.get("instance_id"), str) else None
        cmd = data.get("cmd")
        if cmd == "add":
            try:
                add = AddCommand.parse(data)
            except ValueError as exc:
                self.reject(iid, str(exc))
                return
            await self.add(add)
        elif cmd == "remove" and iid:
            await self.remove(iid)
        else:
            self.reject(iid, "command must be add or remove (with an instance_id)")

    def reject(self, instance_id: str | None, message: str) -> None:
        log.error("rejected a command: %s", message)
        self.control.send("rejected", instance_id=instance_id, message=message)

    def _store(self, cmd: AddCommand) -> Store:
        """The instance's data store: its own SQLite file, or the store the runner serves for
        the token it granted this instance (``--store remote``)."""
        if self.store_kind == "remote":
            assert self.store_channel is not None and cmd.store_token is not None
            return RemoteStore(self.store_channel, cmd.store_token)
        return SQLiteStore(cmd.data_dir / "store.sqlite3")

    async def add(self, cmd: AddCommand) -> None:
        """Start an instance (replacing one with the same id); returns at once, the instance
        reports ``ready`` or ``fatal`` later."""
        if self.store_kind == "remote" and not cmd.store_token:
            self.reject(cmd.instance_id, "add: store token missing")
            return
        if cmd.instance_id in self.instances:
            await self.remove(cmd.instance_id, report=False)
        pending = self._removing.get(cmd.instance_id)
        if pending is not None:
            await pending
        ilog = InstanceLog(
            cmd.log_path, cmd.config, control=self.control, instance_id=cmd.instance_id
        )
        cmd.data_dir.mkdir(parents=True, exist_ok=True)
        ctx = BotContext(
            instance_id=cmd.instance_id,
            config=cmd.config,
            store=self._store(cmd),
            log=logging.getLogger("bot"),
            api_url=cmd.api_url,
            data_dir=cmd.data_dir,
        )
        inst = Instance(cmd=cmd, log=ilog, ctx=ctx, sem=asyncio.Semaphore(self.concurrency))
        self.instances[cmd.instance_id] = inst
        inst.main = asyncio.create_task(self._guard(inst), name=f"instance-{cmd.instance_id}")

    async def remove(self, instance_id: str, *, report: bool = True) -> None:
        """Stop an instance: polling ends, running handlers get ``REMOVE_GRACE`` seconds, a
        webhook is deleted; then ``removed`` is reported. Unknown ids are reported removed."""
        inst = self.instances.pop(instance_id, None)
        if inst is not None:
            task = asyncio.create_task(self._stop(inst))
            self._removing[instance_id] = task
            try:
                await task
            finally:
                self._removing.pop(instance_id, None)
        if report:
            self.control.send("removed", instance_id=instance_id)

    async def _stop(self, inst: Instance) -> None:
        _current.set(inst)
        inst.stop.set()
        if inst.main is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(inst.main, REMOVE_GRACE)
        if inst.jobs is not None:
            grace = getattr(inst.ctx.scheduler, "stop_grace", REMOVE_GRACE) + 1.0
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(inst.jobs, grace)
        if inst.tasks:
            _, late = await asyncio.wait(set(inst.tasks), timeout=REMOVE_GRACE)
            for task in late:
                task.cancel()
        if inst.cmd.webhook_url and inst.bot is not None and inst.ready:
            try:
                await asyncio.wait_for(inst.bot.delete_webhook(), 5)
            except Exception as exc:
                log.warning("deleteWebhook failed: %s", type(exc).__name__)
        inst.log.write([f"[otomat] removed from shared host pid {os.getpid()}"])
        inst.ctx.store.close()

    # -- one instance -------------------------------------------------------------------------

    def _fatal(self, inst: Instance, reason: str, message: str) -> None:
        self.instances.pop(inst.id, None)
        inst.stop.set()  # ends its scheduler, if it started one
        inst.ctx.store.close()
        self.control.send(
            "fatal", instance_id=inst.id, generation=inst.cmd.generation, reason=reason,
            message=message,
        )  # fmt: skip

    async def _guard(self, inst: Instance) -> None:
        """``_run`` with a last line of defence: an unexpected error ends this instance only."""
        try:
            await self._run(inst)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _current.set(inst)
            log.exception("the instance stopped on an unexpected error")
            if self.instances.get(inst.id) is inst:
                self._fatal(inst, "crash", f"{type(exc).__name__}"[:MAX_ERROR_MESSAGE])

    async def _run(self, inst: Instance) -> None:
        """getMe, the router, webhook or polling: the instance's main task."""
        from aiogram import Bot, Dispatcher
        from aiogram.exceptions import TelegramUnauthorizedError
        from aiogram.utils.token import TokenValidationError

        from otomat.botkit.instrument import Counters, instrument

        _current.set(inst)
        cmd = inst.cmd
        inst.log.write(
            [f"[otomat] starting in shared host pid {os.getpid()} (generation {cmd.generation})"]
        )
        try:
            try:
                inst.bot = Bot(cmd.config["bot_token"], session=self.session(cmd.api_url))
            except TokenValidationError:
                raise InvalidTokenError("malformed token") from None
            me = await get_me(inst.bot, inst.stop)
        except InvalidTokenError as exc:
            log.error("invalid bot token: the Bot API refused it (%s); not restarting", exc)
            self._fatal(inst, "invalid_token", f"invalid bot token ({exc})")
            return
        if me is None:
            return  # removed while starting

        counters = Counters()
        dp = Dispatcher()
        dp["ctx"] = inst.ctx

        def on_error(message: str) -> None:
            inst.errors += 1
            self.control.send("error", instance_id=inst.id, message=message)

        instrument(dp, counters, log=log, on_error=on_error)
        try:
            dp.include_router(self.factory(inst.ctx))
        except Exception:
            log.exception("the product's router factory failed")
            self._fatal(inst, "config", "router factory failed")
            return
        inst.dp = dp
        allowed = dp.resolve_used_update_types()
        try:
            if cmd.webhook_url:
                await inst.bot.set_webhook(
                    cmd.webhook_url, secret_token=cmd.webhook_secret, allowed_updates=allowed
                )
            else:
                await inst.bot.delete_webhook()
        except TelegramUnauthorizedError:
            self._fatal(inst, "invalid_token", "invalid bot token (revoked)")
            return
        except Exception as exc:
            # Not fatal: polling retries on its own, and the runner re-adds on a host restart.
            log.error("cannot configure updates delivery: %s: %s", type(exc).__name__, exc)
        inst.ready = True
        log.info("%s as @%s", "webhook" if cmd.webhook_url else "polling", me.username)
        self.control.send(
            "ready", instance_id=inst.id, generation=cmd.generation, username=me.username,
            bot_id=me.id,
        )  # fmt: skip
        scheduler = getattr(inst.ctx, "scheduler", None)
        # A scheduler without registered handlers has nothing to run; skipping it keeps an idle
        # instance from opening its store and polling its job table every few seconds.
        if scheduler is not None and scheduler.kinds:
            inst.jobs = asyncio.create_task(scheduler.run(inst.bot, inst.stop))
        if not cmd.webhook_url:
            await self._poll(inst, allowed)
        else:
            await inst.stop.wait()

    async def _poll(self, inst: Instance, allowed: list[str]) -> None:
        """Long polling for one instance: one request open at a time, handlers in tasks."""
        from aiogram.exceptions import TelegramUnauthorizedError
        from aiogram.methods import GetUpdates

        assert inst.bot is not None
        offset: int | None = None
        delay = 1.0
        poller = self.session(inst.cmd.api_url, polling=True)
        stopping = asyncio.create_task(inst.stop.wait())
        try:
            while not inst.stop.is_set():
                method = GetUpdates(
                    offset=offset, timeout=self.poll_timeout, allowed_updates=allowed
                )
                asking = asyncio.create_task(
                    poller(inst.bot, method, timeout=self.poll_timeout + 10)
                )
                await asyncio.wait({asking, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not asking.done():
                    asking.cancel()
                    return
                try:
                    updates = asking.result()
                    delay = 1.0
                except TelegramUnauthorizedError:
                    log.error("the Bot API refused the token while polling; not restarting")
                    self._fatal(inst, "invalid_token", "invalid bot token (refused while polling)")
                    return
                except Exception as exc:
                    log.warning("getUpdates failed (%s: %s); retrying in %.0f s",
                                type(exc).__name__, exc, delay)  # fmt: skip
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopping), delay)
                    delay = min(delay * 2, POLL_BACKOFF_MAX)
                    continue
                for update in updates:
                    offset = update.update_id + 1
                    self.dispatch(inst, update)
                while len(inst.tasks) >= POLL_BACKLOG and not inst.stop.is_set():
                    inst.drained.clear()  # back-pressure on this instance only
                    await inst.drained.wait()
        finally:
            stopping.cancel()

    def dispatch(self, inst: Instance, update: Any) -> bool:
        """Handle ``update`` in its own task; False (and an error) when the instance already has
        ``max_pending`` updates in flight."""
        if len(inst.tasks) >= self.max_pending:
            inst.errors += 1
            inst.log.write([f"ERROR otomat: overloaded, update {update.update_id} dropped"])
            return False
        task = asyncio.create_task(self._handle(inst, update))
        inst.tasks.add(task)
        task.add_done_callback(lambda t: self._done(inst, t))
        return True

    def _done(self, inst: Instance, task: asyncio.Task[Any]) -> None:
        inst.tasks.discard(task)
        if len(inst.tasks) < POLL_BACKLOG:
            inst.drained.set()

    async def _handle(self, inst: Instance, update: Any) -> None:
        _current.set(inst)
        inst.updates += 1
        async with inst.sem:
            assert inst.dp is not None and inst.bot is not None
            try:
                # asyncio.timeout, not wait_for: no extra task per update.
                async with asyncio.timeout(self.update_timeout):
                    await inst.dp.feed_update(inst.bot, update)
            except TimeoutError:
                inst.errors += 1
                message = (
                    f"update {update.update_id} took over {self.update_timeout:g} s; cancelled"
                )
                log.error("%s", message)
                self.control.send("error", instance_id=inst.id, message=message)
            except Exception as exc:  # outside handlers (middlewares): still this instance's
                inst.errors += 1
                log.exception("update %s failed", update.update_id)
                text = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_MESSAGE]
                self.control.send("error", instance_id=inst.id, message=inst.log.writer.scrub(text))
        inst.last_update = time.time()

    def feed_raw(self, instance_id: str, body: bytes) -> None:
        """A webhook update forwarded by the ingress. Unknown or not-ready instances and bad JSON
        are logged and counted, never raised: one bad body must not stop the reader."""
        inst = self.instances.get(instance_id)
        if inst is None or not inst.ready or inst.bot is None:
            log.warning("webhook update for an instance that is not running here; dropped")
            return
        from aiogram.types import Update

        try:
            update = Update.model_validate_json(body, context={"bot": inst.bot})
        except ValueError as exc:
            inst.errors += 1
            token = _current.set(inst)
            log.error("webhook body is not a valid update (%s)", type(exc).__name__)
            _current.reset(token)
            return
        self.dispatch(inst, update)

    # -- background ---------------------------------------------------------------------------

    def heartbeat_events(self) -> list[dict[str, Any]]:
        return [
            {
                "event": "heartbeat",
                "instance_id": inst.id,
                "generation": inst.cmd.generation,
                "updates": inst.updates,
                "errors": inst.errors,
                "last_update": inst.last_update,
            }
            for inst in self.instances.values()
            if inst.ready
        ]

    async def heartbeats(self) -> None:
        """Per-instance heartbeats plus one for the host itself, so that an empty (warm) host
        is not mistaken for a hung one."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            host = {"event": "host_heartbeat", "instances": len(self.instances)}
            self.control.send_many([*self.heartbeat_events(), host])

    async def read_updates(self, fd: int) -> None:
        """Read framed webhook updates from the ingress until the socket closes."""
        sock = socket.socket(fileno=fd)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=MAX_UPDATE_BYTES * 2)
        try:
            while True:
                try:
                    header = await reader.readexactly(FRAME_HEADER.size)
                except asyncio.IncompleteReadError:
                    return
                id_len, body_len = FRAME_HEADER.unpack(header)
                if body_len > MAX_UPDATE_BYTES:
                    log.error("update frame of %d bytes refused; closing the channel", body_len)
                    return
                payload = await reader.readexactly(id_len + body_len)
                self.feed_raw(payload[:id_len].decode(errors="replace"), payload[id_len:])
        finally:
            writer.close()

    async def close(self) -> None:
        """Remove every instance (bounded by the removal grace) and close the sessions."""
        await asyncio.gather(
            *(self.remove(iid) for iid in list(self.instances)), return_exceptions=True
        )
        self.control.send_many(self.heartbeat_events())
        for session in self._sessions.values():
            with contextlib.suppress(Exception):
                await session.close()


def warm_up() -> None:
    """Pay before ``host_ready`` for what the first instance would otherwise wait for: aiogram
    builds many pydantic validators and dispatcher parts lazily on first use (~2 s)."""
    from aiogram import Bot, Dispatcher, Router
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.methods import GetUpdates, SendMessage
    from aiogram.types import Update

    dp = Dispatcher()
    dp.include_router(Router())
    dp.resolve_used_update_types()
    bot = Bot("1:warm-up-token-not-real", session=AiohttpSession())
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1, "date": 0, "text": "/start", "chat": {"id": 1, "type": "private"},
            "from": {"id": 1, "is_bot": False, "first_name": "W"},
        },
    }  # fmt: skip
    Update.model_validate(update, context={"bot": bot})
    GetUpdates(offset=1, timeout=1)
    SendMessage(chat_id=1, text="x")


async def stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_COMMAND_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def wait_for_adopt(
    reader: asyncio.StreamReader, control: Control, heartbeat_seconds: float
) -> tuple[Path, str] | None:
    """A spare host: say ``host_ready`` (spare), beat while idle, and return the ``source`` and
    ``entry`` of the first ``{"cmd": "adopt", "source": ..., "entry": ...}`` line (anything
    else is rejected); None when stdin closes first."""
    control.send("host_ready", pid=os.getpid(), spare=True)

    async def beat() -> None:
        while True:
            await asyncio.sleep(heartbeat_seconds)
            control.send("host_heartbeat", instances=0)

    beating = asyncio.create_task(beat())
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                control.send("rejected", instance_id=None, message="command line too long")
                continue
            if not line:
                return None
            try:
                data = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                data = None
            if (
                isinstance(data, dict)
                and data.get("cmd") == "adopt"
                and isinstance(data.get("source"), str)
                and isinstance(data.get("entry"), str)
            ):
                return Path(data["source"]), data["entry"]
            if line.strip():
                message = "a spare host takes an adopt command first"
                control.send("rejected", instance_id=None, message=message)
    finally:
        beating.cancel()


async def serve(
    host: SharedHost, updates_fd: int | None, reader: asyncio.StreamReader | None = None
) -> int:
    """Read commands until stdin closes or SIGTERM/SIGINT; return the exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if reader is None:
        reader = await stdin_reader()
    background = [asyncio.create_task(host.heartbeats())]
    if updates_fd is not None:
        background.append(asyncio.create_task(host.read_updates(updates_fd)))
    host.control.send("host_ready", pid=os.getpid())

    async def commands() -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line over the limit: skip it, it is not a command
                host.reject(None, "command line too long")
                continue
            if not line:
                log.info("stdin closed: the backend is gone; stopping")
                return
            if line.strip():
                await host.command(line)

    reading = asyncio.create_task(commands())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({reading, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for task in (reading, stopper, *background):
        task.cancel()
    await host.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (3 when the entry point cannot be loaded)."""
    parser = argparse.ArgumentParser(
        prog="python -m otomat.runtime.shared_host", description=__doc__
    )
    parser.add_argument("--source", type=Path, help="product version directory")
    parser.add_argument("--entry", help="package.module:factory")
    parser.add_argument(
        "--spare",
        action="store_true",
        help="import and warm up, then wait for an adopt command naming --source and --entry",
    )
    parser.add_argument("--heartbeat-seconds", type=float, default=DEFAULT_HEARTBEAT_SECONDS)
    parser.add_argument("--update-timeout", type=float, default=DEFAULT_UPDATE_TIMEOUT)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--max-pending", type=int, default=DEFAULT_MAX_PENDING)
    parser.add_argument("--store", choices=STORES, default="sqlite", help="instance data store")
    args = parser.parse_args(argv)
    if (args.source is None or args.entry is None) != args.spare or (
        args.spare and (args.source or args.entry)
    ):
        parser.error("give --source and --entry, or --spare (they come in the adopt command)")
    if not (0.1 <= args.heartbeat_seconds <= 3600 and args.update_timeout > 0):
        parser.error("--heartbeat-seconds must be within 0.1..3600, --update-timeout positive")
    if args.concurrency < 1 or args.max_pending < args.concurrency:
        parser.error("--concurrency must be >= 1 and --max-pending >= --concurrency")

    root = logging.getLogger()
    root.handlers[:] = [RoutingHandler()]
    root.setLevel(logging.INFO)
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)  # one line per update
    control = Control()

    def fd_from_env(name: str) -> int | None:
        try:
            fd = int(os.environ.get(name, ""))
            os.fstat(fd)
        except (ValueError, OSError):
            return None
        return fd

    control_fd, updates_fd = fd_from_env(CONTROL_FD_ENV), fd_from_env(UPDATES_FD_ENV)
    store_fd = fd_from_env(STORE_FD_ENV)
    if args.store == "remote" and store_fd is None:
        parser.error(f"--store remote needs the store socket in {STORE_FD_ENV}")

    def load(source: Path, entry: str) -> RouterFactory | None:
        try:
            factory = load_entry(source, entry)
            if not args.spare:  # a spare warmed up before it said host_ready
                warm_up()
        except Exception:
            log.exception("cannot load entry point %s from %s", entry, source)
            if control_fd is not None:
                line = json.dumps({"event": "fatal", "reason": "entry", "message": "bad entry"})
                with contextlib.suppress(OSError):
                    os.write(control_fd, (line + "\n").encode())
            return None
        return factory

    factory: RouterFactory | None = None
    if args.spare:
        warm_up()  # what every product pays for; the product's own imports come with adopt
    else:
        factory = load(args.source, args.entry)
        if factory is None:
            return EXIT_CONFIG_ERROR

    async def run() -> int:
        nonlocal factory
        await control.open(control_fd)
        reader = None
        if args.spare:
            reader = await stdin_reader()
            adopted = await wait_for_adopt(reader, control, args.heartbeat_seconds)
            if adopted is None:
                return 0  # stdin closed before any adopt: the backend is gone
            importlib.invalidate_caches()  # the product's files appeared after the start
            factory = load(*adopted)
            if factory is None:
                return EXIT_CONFIG_ERROR
            control.send("adopted", source=str(adopted[0]), entry=adopted[1])
        host = SharedHost(
            factory,
            control,
            heartbeat_seconds=args.heartbeat_seconds,
            update_timeout=args.update_timeout,
            concurrency=args.concurrency,
            max_pending=args.max_pending,
            store=args.store,
            store_channel=StoreChannel.from_fd(store_fd) if store_fd is not None else None,
        )
        code = await serve(host, updates_fd, reader)
        await asyncio.sleep(0)  # let the transport flush the last events
        return code

    return asyncio.run(run())


if __name__ == "__main__":
    exit_code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation (~0.6 s with aiogram's pydantic classes), as botkit.host does.
    os._exit(exit_code)
