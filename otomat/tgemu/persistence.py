"""The emulator's state store: SQLite (standard library), written incrementally off the loop.

Only what changed is written: the state records what changed (:class:`~.state.Changes`: ids and
keys, not copies), and a short while after a change :class:`Persister` turns those into rows on
the event loop (a few records, never the whole history) and hands them to a writer thread, which
applies every waiting batch in one transaction. The store is in WAL mode, so a crash (even
``kill -9``) loses at most the last fraction of a second of changes and never corrupts it: every
batch commits whole or not at all.

Tables hold one JSON object per record: ``bots`` (without pending updates), ``updates``,
``users``, ``groups``, ``conversations`` (without messages), ``messages`` and ``meta`` (format,
schema version, the clock offset). Everything is loaded into memory at start.

``--state PATH`` ending in ``.json`` is the state file of earlier versions: the store is then
``PATH`` with the suffix ``.sqlite3``; if that store does not exist yet, the JSON file is migrated
into it once and renamed to ``PATH.migrated``. A JSON file that cannot be read is refused (nothing
is written), as is a ``PATH`` that is not an emulator store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .state import STATE_VERSION, Changes, EmulatorState, Limits

log = logging.getLogger("otomat.tgemu.persistence")

STORE_FORMAT = "otomat-tgemu"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bots (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    bot_id INTEGER NOT NULL, update_id INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (bot_id, update_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    conv TEXT NOT NULL, message_id INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (conv, message_id)) WITHOUT ROWID;
"""
TABLES = ("bots", "updates", "users", "groups", "conversations", "messages")
SQLITE_HEADER = b"SQLite format 3\x00"
# One batch is a list of (sql, rows) pairs run with executemany.
Batch = list[tuple[str, list[tuple[Any, ...]]]]


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _conv_key(key: tuple[Any, ...]) -> str:
    return _dumps(list(key))


def store_path_for(path: Path) -> Path:
    """Where the store for ``--state path`` lives (a ``.json`` path names the old file)."""
    return path.with_suffix(".sqlite3") if path.suffix.lower() == ".json" else path


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Tokens inside: private from the start (SQLite gives -wal/-shm the same mode).
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process crashes
        conn.execute("PRAGMA busy_timeout=5000")
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn


def _check_or_create_schema(conn: sqlite3.Connection, path: Path) -> bool:
    """Create the schema in an empty database; returns False when it already held a store.

    Raises ValueError when the database is something else.
    """
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path}: not an emulator state store ({exc})") from exc
    if not names:
        conn.executescript(SCHEMA)
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("format", STORE_FORMAT), ("schema_version", str(SCHEMA_VERSION))],
        )
        return True
    if "meta" not in names:
        raise ValueError(f"{path}: not an emulator state store (no meta table)")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("format") != STORE_FORMAT:
        raise ValueError(f"{path}: not an emulator state store")
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise ValueError(
            f"{path}: unsupported store schema {meta.get('schema_version')!r} "
            f"(expected {SCHEMA_VERSION})"
        )
    missing = set(TABLES) - names
    if missing:
        raise ValueError(f"{path}: damaged emulator state store (missing {sorted(missing)})")
    return False


def _read_store(conn: sqlite3.Connection) -> dict[str, Any]:
    """The store's content in the shape of the JSON state file (:meth:`EmulatorState.to_json`)."""
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    updates: dict[int, list[Any]] = {}
    for bot_id, data in conn.execute("SELECT bot_id, data FROM updates ORDER BY bot_id, update_id"):
        updates.setdefault(bot_id, []).append(json.loads(data))
    bots = []
    for bot_id, data in conn.execute("SELECT id, data FROM bots"):
        bot = json.loads(data)
        bot["updates"] = updates.get(bot_id, [])
        bots.append(bot)
    messages: dict[str, list[Any]] = {}
    for conv, data in conn.execute("SELECT conv, data FROM messages ORDER BY conv, message_id"):
        messages.setdefault(conv, []).append(json.loads(data))
    conversations = []
    for key, data in conn.execute("SELECT key, data FROM conversations"):
        conv = json.loads(data)
        conv["messages"] = messages.get(key, [])
        conversations.append(conv)
    return {
        "version": STATE_VERSION,
        "bots": bots,
        "users": [json.loads(d) for (d,) in conn.execute("SELECT data FROM users")],
        "groups": [json.loads(d) for (d,) in conn.execute("SELECT data FROM groups")],
        "conversations": conversations,
        "clock_offset": float(meta.get("clock_offset") or 0.0),
    }


def full_batch(state: EmulatorState) -> Batch:
    """Rows that replace the whole store with ``state`` (reset, migration)."""
    batch: Batch = [(f"DELETE FROM {table}", [()]) for table in TABLES]  # noqa: S608 - fixed names
    batch.append(
        (
            "INSERT INTO bots VALUES (?, ?)",
            [(b.id, _dumps(b.to_json(updates=False))) for b in state.bots.values()],
        )
    )
    batch.append(
        (
            "INSERT INTO updates VALUES (?, ?, ?)",
            [
                (b.id, u.update_id, _dumps(u.to_json()))
                for b in state.bots.values()
                for u in b.updates
            ],
        )
    )
    batch.append(
        (
            "INSERT INTO users VALUES (?, ?)",
            [(u.id, _dumps(u.to_json())) for u in state.users.values()],
        )
    )
    batch.append(
        (
            "INSERT INTO groups VALUES (?, ?)",
            [(g.id, _dumps(g.to_json())) for g in state.groups.values()],
        )
    )
    batch.append(
        (
            "INSERT INTO conversations VALUES (?, ?)",
            [
                (_conv_key(c.key), _dumps(c.to_json(messages=False)))
                for c in state.conversations.values()
            ],
        )
    )
    batch.append(
        (
            "INSERT INTO messages VALUES (?, ?, ?)",
            [
                (_conv_key(c.key), m.message_id, _dumps(m.to_json()))
                for c in state.conversations.values()
                for m in c.messages.values()
            ],
        )
    )
    batch.append(_meta_rows(state))
    return batch


def _meta_rows(state: EmulatorState) -> tuple[str, list[tuple[Any, ...]]]:
    return (
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [("clock_offset", repr(state.clock_offset)), ("saved_at", str(state.now()))],
    )


def _apply(conn: sqlite3.Connection, batches: list[Batch]) -> None:
    """Run ``batches`` in one transaction: all of them are in the store afterwards, or none."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for batch in batches:
            for sql, rows in batch:
                if rows:
                    conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _migrate_json(json_path: Path, store: Path) -> EmulatorState | None:
    """Load the old JSON state file into a new store at ``store``; None if there is none.

    The store is built under a temporary name and renamed into place, then the JSON file is
    renamed to ``<name>.migrated``: a crash midway leaves the JSON file to migrate again.
    Raises ValueError (naming the file) when it is not a valid state file; nothing is written.
    """
    try:
        raw = json_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    if not raw.strip():
        return None
    state = EmulatorState()
    try:
        state.load_json(json.loads(raw))
    except ValueError as exc:
        raise ValueError(f"{json_path}: {exc}") from exc
    tmp = store.with_name(f".{store.name}.migrating")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    conn = _connect(tmp)
    try:
        _check_or_create_schema(conn, tmp)
        _apply(conn, [full_batch(state)])
    finally:
        conn.close()  # the last connection checkpoints the WAL into the file
    os.replace(tmp, store)
    os.replace(json_path, json_path.with_name(json_path.name + ".migrated"))
    log.info("migrated state file %s into %s", json_path, store)
    return state


def load_state(path: Path, state: EmulatorState) -> bool:
    """Load the store for ``--state path`` into ``state`` (migrating an old JSON file first).

    Returns False when there was nothing to load. Raises ValueError (naming the file) when the
    file exists but is not a valid store or state file: starting empty would lose every token.
    """
    store = store_path_for(path)
    if store != path and store.exists() and path.exists():
        log.warning("%s exists: ignoring the old state file %s", store, path)
    if store != path and not store.exists():
        migrated = _migrate_json(path, store)
        if migrated is None:
            return False
        state.load_json(migrated.to_json())
        return True
    if not store.exists() or store.stat().st_size == 0:
        return False
    with store.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise ValueError(f"{store}: not an emulator state store (not an SQLite database)")
    try:
        conn = _connect(store)
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{store}: not an emulator state store ({exc})") from exc
    try:
        _check_or_create_schema(conn, store)
        try:
            data = _read_store(conn)
        except (sqlite3.DatabaseError, ValueError, TypeError) as exc:
            raise ValueError(f"{store}: damaged emulator state store ({exc})") from exc
    finally:
        conn.close()
    try:
        state.load_json(data)
    except ValueError as exc:
        raise ValueError(f"{store}: {exc}") from exc
    return True


def open_state(path: Path | None, *, limits: Limits | None = None) -> EmulatorState:
    """A state bound to the store for ``path`` (loaded from it), or an in-memory one for None.

    Raises ValueError when the file exists but is not a valid store (or old state file).
    """
    state = EmulatorState(path=store_path_for(path) if path is not None else None, limits=limits)
    if path is not None:
        load_state(path, state)
    return state


_STOP = object()


class Persister:
    """Writes what changed in ``state`` to the store at ``path``, ``delay`` seconds after it does.

    Call :meth:`attach` on the running loop (it starts the writer thread and installs
    ``state.changes``/``state.on_change``) and :meth:`flush` at shutdown. Write errors are logged
    and retried, never raised into request handlers.
    """

    def __init__(self, state: EmulatorState, path: Path, *, delay: float = 0.1) -> None:
        self.state = state
        self.path = path
        self.delay = delay
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        # Per bot, the highest update id already in the store (updates never change).
        self._stored_update: dict[int, int] = {}
        self.batches_written = 0

    def attach(self) -> None:
        """Start writing on the running loop; the store must exist (:func:`open_state`)."""
        self._loop = asyncio.get_running_loop()
        conn = _connect(self.path)
        try:
            created = _check_or_create_schema(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._stored_update = {
            bot.id: bot.updates[-1].update_id if bot.updates else bot.next_update_id - 1
            for bot in self.state.bots.values()
        }
        self.state.changes = Changes()
        if created and (self.state.bots or self.state.users or self.state.conversations):
            self.state.changes.full = True  # a state given in memory, written to a new store
        self.state.on_change = self.schedule
        self._thread = threading.Thread(
            target=self._writer, args=(conn,), name="tgemu-store-writer", daemon=True
        )
        self._thread.start()
        if self.state.changes:
            self.schedule()

    def schedule(self) -> None:
        """Make sure a write of the recorded changes is coming."""
        if self._loop is None or self._handle is not None:
            return
        self._handle = self._loop.call_later(self.delay, self._collect)

    def _collect(self) -> None:
        self._handle = None
        changes = self.state.changes
        if changes is None or not changes:
            return
        self.state.changes = Changes()
        self._queue.put(self._batch(changes))

    def _batch(self, changes: Changes) -> Batch:
        """The rows for ``changes``, built on the loop from the live records (few of them)."""
        state = self.state
        if changes.full:
            self._stored_update = {bot.id: bot.next_update_id - 1 for bot in state.bots.values()}
            return full_batch(state)
        batch: Batch = []
        upsert_bots, delete_bots = [], []
        trim_updates, new_updates = [], []
        for bot_id in changes.bots:
            bot = state.bots.get(bot_id)
            if bot is None:
                delete_bots.append((bot_id,))
                self._stored_update.pop(bot_id, None)
                continue
            upsert_bots.append((bot_id, _dumps(bot.to_json(updates=False))))
            head = bot.updates[0].update_id if bot.updates else bot.next_update_id
            trim_updates.append((bot_id, head))
            stored = self._stored_update.get(bot_id, head - 1)
            fresh = []
            for update in reversed(bot.updates):  # new updates are at the end
                if update.update_id <= stored:
                    break
                fresh.append((bot_id, update.update_id, _dumps(update.to_json())))
            new_updates.extend(reversed(fresh))
            self._stored_update[bot_id] = bot.next_update_id - 1
        batch.append(("DELETE FROM bots WHERE id = ?", delete_bots))
        batch.append(("DELETE FROM updates WHERE bot_id = ?", delete_bots))
        batch.append(("INSERT OR REPLACE INTO bots VALUES (?, ?)", upsert_bots))
        batch.append(("DELETE FROM updates WHERE bot_id = ? AND update_id < ?", trim_updates))
        batch.append(("INSERT OR REPLACE INTO updates VALUES (?, ?, ?)", new_updates))
        batch.append(
            (
                "DELETE FROM updates WHERE bot_id = ? AND update_id = ?",
                sorted(changes.removed_updates),
            )
        )
        for table, ids, records in (
            ("users", changes.users, state.users),
            ("groups", changes.groups, state.groups),
        ):
            batch.append(
                (
                    f"INSERT OR REPLACE INTO {table} VALUES (?, ?)",  # noqa: S608 - fixed names
                    [(i, _dumps(records[i].to_json())) for i in ids if i in records],
                )
            )
            batch.append(
                (
                    f"DELETE FROM {table} WHERE id = ?",  # noqa: S608 - fixed names
                    [(i,) for i in ids if i not in records],
                )
            )
        upsert_convs, delete_convs, trim_messages = [], [], []
        for key in changes.conversations:
            conv = state.conversations.get(key)
            text_key = _conv_key(key)
            if conv is None:
                delete_convs.append((text_key,))
                continue
            upsert_convs.append((text_key, _dumps(conv.to_json(messages=False))))
            # Evicted messages are the oldest: everything below the first one kept goes.
            first = next(iter(conv.messages), conv.next_message_id)
            trim_messages.append((text_key, first))
        batch.append(("DELETE FROM conversations WHERE key = ?", delete_convs))
        batch.append(("DELETE FROM messages WHERE conv = ?", delete_convs))
        batch.append(("INSERT OR REPLACE INTO conversations VALUES (?, ?)", upsert_convs))
        batch.append(("DELETE FROM messages WHERE conv = ? AND message_id < ?", trim_messages))
        rows = []
        for key, message_id in changes.messages:
            conv = state.conversations.get(key)
            record = conv.messages.get(message_id) if conv is not None else None
            if record is not None:
                rows.append((_conv_key(key), message_id, _dumps(record.to_json())))
        batch.append(("INSERT OR REPLACE INTO messages VALUES (?, ?, ?)", rows))
        if changes.meta:
            batch.append(_meta_rows(state))
        return batch

    def _writer(self, conn: sqlite3.Connection) -> None:
        """The writer thread: apply every waiting batch in one transaction, until told to stop."""
        pending: list[Batch] = []
        stopping = False
        try:
            while True:
                if not pending:
                    item = self._queue.get()
                    if item is _STOP:
                        return
                    pending.append(item)
                while True:  # take everything already waiting: one commit for all of it
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                    else:
                        pending.append(item)
                try:
                    _apply(conn, pending)
                    self.batches_written += len(pending)
                    pending = []
                except sqlite3.Error:
                    log.exception("could not write the state store %s; retrying", self.path)
                    if stopping:
                        return
                    time.sleep(1.0)
                if stopping:
                    return
        finally:
            conn.close()

    async def flush(self) -> None:
        """Write pending changes now and stop the writer; called at shutdown."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._collect()
        self._queue.put(_STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self.state.on_change = None
        self.state.changes = None
