"""A fake IMAP4rev1 server for tests: a threaded socket server on 127.0.0.1 (a free port) that
speaks just enough of the protocol for ``imaplib`` — CAPABILITY, LOGIN, SELECT/EXAMINE of
INBOX, UID SEARCH (UNSEEN/SEEN/ALL), UID FETCH of BODY[]/BODY.PEEK[] (whole or partial, as a
literal), UID STORE +FLAGS/-FLAGS (\\Seen), NOOP and LOGOUT.

UIDs start at 1001 so that a client mixing up UIDs and sequence numbers fails; plain (non-UID)
SEARCH/FETCH/STORE answer BAD for the same reason. Fetching BODY[] without PEEK marks the
message seen, as a real server does. ``commands`` records every line received.

    with FakeImapServer("desk", "secret", [raw1, raw2]) as server:
        ... ImapMailbox(host="127.0.0.1", port=server.port, ...) ...
        assert server.seen == {"1001"}
"""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterable
from types import TracebackType

FIRST_UID = 1001
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


def _tokens(text: str) -> list[str]:
    """IMAP arguments: atoms and quoted strings (unescaped)."""
    return [atom or re.sub(r"\\(.)", r"\1", quoted) for quoted, atom in _TOKEN.findall(text)]


class _Handler(socketserver.StreamRequestHandler):
    timeout = 10  # a stuck client must not keep a server thread forever
    disable_nagle_algorithm = True  # small replies go out at once, not after a delayed ACK

    def send(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def handle(self) -> None:
        fake: FakeImapServer = self.server.fake  # type: ignore[attr-defined]
        self.send("* OK [CAPABILITY IMAP4rev1] Fake IMAP ready")
        authenticated = selected = readonly = False
        while line := self.rfile.readline(65536):
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            fake.commands.append(text)
            tag, _, rest = text.partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "CAPABILITY":
                self.send("* CAPABILITY IMAP4rev1")
            elif command == "NOOP":
                pass
            elif command == "LOGOUT":
                self.send("* BYE Fake IMAP closing")
                self.send(f"{tag} OK LOGOUT completed")
                return
            elif command == "LOGIN":
                user, password = ([*_tokens(args), "", ""])[:2]
                if (user, password) != (fake.username, fake.password):
                    self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
                    continue
                authenticated = True
            elif not authenticated:
                self.send(f"{tag} BAD Log in first")
                continue
            elif command in ("SELECT", "EXAMINE"):
                if (_tokens(args) or [""])[0].upper() != "INBOX":
                    selected = False
                    self.send(f"{tag} NO [NONEXISTENT] No such mailbox")
                    continue
                selected, readonly = True, command == "EXAMINE"
                with fake.lock:
                    count, next_uid = len(fake.messages), FIRST_UID + len(fake.messages)
                self.send(f"* {count} EXISTS")
                self.send("* 0 RECENT")
                self.send("* FLAGS (\\Seen)")
                self.send("* OK [UIDVALIDITY 1] UIDs valid")
                self.send(f"* OK [UIDNEXT {next_uid}] Predicted next UID")
                mode = "READ-ONLY" if readonly else "READ-WRITE"
                self.send(f"{tag} OK [{mode}] {command} completed")
                continue
            elif not selected:
                self.send(f"{tag} BAD Select a mailbox first")
                continue
            elif command == "UID":
                self._uid(fake, tag, args, readonly)
                continue
            else:
                self.send(f"{tag} BAD Command not supported by the fake server")
                continue
            self.send(f"{tag} OK {command} completed")

    def _uid(self, fake: FakeImapServer, tag: str, args: str, readonly: bool) -> None:
        sub, _, args = args.partition(" ")
        sub = sub.upper()
        with fake.lock:
            numbered = [(seq, uid, raw) for seq, (uid, raw) in enumerate(fake.messages, 1)]
            if sub == "SEARCH":
                key = args.strip().upper()
                if key not in ("UNSEEN", "SEEN", "ALL"):
                    self.send(f"{tag} BAD Search key not supported by the fake server")
                    return
                found = [
                    uid
                    for _, uid, _ in numbered
                    if key == "ALL" or (uid in fake.seen) == (key == "SEEN")
                ]
                self.send(" ".join(["* SEARCH", *found]))
            elif sub == "FETCH":
                message_set, _, items = args.partition(" ")
                body = re.search(r"BODY(\.PEEK)?\[\](?:<(\d+)\.(\d+)>)?", items, re.IGNORECASE)
                if body is None:
                    self.send(f"{tag} BAD Only BODY[] and BODY.PEEK[] are supported")
                    return
                for seq, uid, raw in numbered:
                    if uid not in _uid_set(message_set, len(fake.messages)):
                        continue
                    name, data = "BODY[]", raw
                    if body.group(2) is not None:  # partial: <start.count>
                        start, count = int(body.group(2)), int(body.group(3))
                        name, data = f"BODY[]<{start}>", raw[start : start + count]
                    self.send(f"* {seq} FETCH (UID {uid} {name} {{{len(data)}}}".encode())
                    self.wfile.write(data)
                    self.send(")")
                    if body.group(1) is None and not readonly:
                        fake.seen.add(uid)
            elif sub == "STORE":
                message_set, flags_op, flags = ([*_tokens(args), "", "", ""])[:3]
                if readonly:
                    self.send(f"{tag} NO Mailbox is read-only")
                    return
                silent = flags_op.upper().endswith(".SILENT")
                if flags_op.upper().removesuffix(".SILENT") not in ("+FLAGS", "-FLAGS"):
                    self.send(f"{tag} BAD Only +FLAGS and -FLAGS are supported")
                    return
                for seq, uid, _ in numbered:
                    if (
                        uid in _uid_set(message_set, len(fake.messages))
                        and "\\seen" in flags.lower()
                    ):
                        if flags_op.startswith("+"):
                            fake.seen.add(uid)
                        else:
                            fake.seen.discard(uid)
                        if not silent:
                            state = "\\Seen" if uid in fake.seen else ""
                            self.send(f"* {seq} FETCH (UID {uid} FLAGS ({state}))")
            else:
                self.send(f"{tag} BAD UID {sub} not supported by the fake server")
                return
        self.send(f"{tag} OK UID {sub} completed")


def _uid_set(message_set: str, count: int) -> set[str]:
    """The UIDs named by an IMAP set such as "1001,1003:1005" or "1002:*"."""
    last = FIRST_UID + count - 1
    uids: set[str] = set()
    for item in message_set.split(","):
        low, _, high = item.partition(":")
        low_n = last if low == "*" else int(low)
        high_n = low_n if not high else last if high == "*" else int(high)
        low_n, high_n = sorted((low_n, high_n))
        uids.update(str(uid) for uid in range(max(low_n, FIRST_UID), min(high_n, last) + 1))
    return uids


class FakeImapServer:
    """The fake server; ``messages`` are raw bytes, given UIDs 1001, 1002, … in order."""

    def __init__(self, username: str, password: str, messages: Iterable[bytes] = ()) -> None:
        self.username, self.password = username, password
        self.lock = threading.Lock()
        self.messages: list[tuple[str, bytes]] = []
        self.seen: set[str] = set()
        self.commands: list[str] = []
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        for raw in messages:
            self.add(raw)

    def add(self, raw: bytes) -> str:
        """Deliver one more message; returns its UID."""
        with self.lock:
            uid = str(FIRST_UID + len(self.messages))
            self.messages.append((uid, raw))
        return uid

    @property
    def port(self) -> int:
        """The listening port (kept after ``close()``: a port where nobody listens now)."""
        if self._port is None:
            raise RuntimeError("the fake IMAP server is not started")
        return self._port

    def start(self) -> FakeImapServer:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server, self._port = server, server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeImapServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
