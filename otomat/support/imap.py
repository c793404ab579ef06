"""Fetching support mail from an IMAP mailbox with the stdlib ``imaplib``.

One context manager, so that fetching, handling and marking happen in one session::

    with ImapMailbox(host=..., port=993, username=..., password=..., use_ssl=True) as box:
        messages = box.fetch_unseen(limit=50)      # [(uid, raw bytes)], oldest first
        for uid, raw in messages:
            handle(raw)
        box.mark_seen([uid for uid, _ in messages])

Fetching uses ``BODY.PEEK[]``, which leaves messages unseen: a message is only marked seen
after it was handled, so a crash in between means it is fetched again, not lost. Every
failure (connection, TLS, login, a refused command, a dropped connection) raises ``MailError``
with a message naming host, port and user, never the password.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any

from otomat.support.mail_in import MailError

MiB = 1024 * 1024


class ImapMailbox:
    """A logged-in IMAP session on one mailbox (selected read-write). Open it with ``with``
    (or ``open()``/``close()``). Plain connections are unencrypted: use ``use_ssl=True``
    (port 993) for anything but a local server."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        mailbox: str = "INBOX",
        use_ssl: bool = False,
        timeout: float = 30,
    ) -> None:
        if re.search(r"[\x00-\x1f\x7f]", mailbox + username + password):
            raise MailError(
                "IMAP mailbox, user name and password may not contain control characters"
            )
        self.host, self.port, self.username, self._password = host, port, username, password
        self.mailbox, self.use_ssl, self.timeout = mailbox, use_ssl, timeout
        self._conn: imaplib.IMAP4 | None = None

    def _fail(self, action: str, detail: object) -> MailError:
        """A MailError for ``action``; the server's or socket's words are kept (they help), the
        password is scrubbed from them in case a server echoes it."""
        if isinstance(detail, Exception) and len(detail.args) == 1:
            detail = detail.args[0]  # imaplib errors carry the server's bytes
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        if self._password:
            text = text.replace(self._password, "***")
        where = f"{self.host}:{self.port} as {self.username!r}"
        return MailError(f"IMAP {action} failed on {where}: {text[:300]}")

    def open(self) -> ImapMailbox:
        """Connect, log in and select the mailbox."""
        try:
            if self.use_ssl:
                context = ssl.create_default_context()
                conn = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=context, timeout=self.timeout
                )
            else:
                conn = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._fail("connection", exc) from None
        self._conn = conn
        try:
            conn.login(self.username, self._password)
        except UnicodeEncodeError:
            self.close()
            raise self._fail("login", "IMAP LOGIN takes ASCII user names and passwords") from None
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise self._fail("login", exc) from None
        quoted = '"' + self.mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'
        status, data = self._run("select", conn.select, quoted)
        if status != "OK":
            self.close()
            raise self._fail(f"select {self.mailbox!r}", data[-1] if data else status)
        return self

    def _run(
        self, action: str, call: Callable[..., tuple[str, list[Any]]], *args: str
    ) -> tuple[str, list[Any]]:
        """Run one imaplib call, turning socket and protocol errors into MailError."""
        try:
            return call(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self._fail(action, exc) from None

    def _session(self) -> imaplib.IMAP4:
        if self._conn is None:
            raise MailError("IMAP mailbox is not open (use it in a with block)")
        return self._conn

    def fetch_unseen(
        self, *, limit: int = 50, max_bytes: int = 10 * MiB
    ) -> list[tuple[str, bytes]]:
        """Up to ``limit`` unseen messages as (uid, raw bytes), oldest (lowest UID) first,
        without marking them seen. At most ``max_bytes + 1`` bytes of each message are
        downloaded (a partial fetch), so a huge message costs no memory and still arrives
        bigger than ``max_bytes`` — ``parse_email(max_bytes=...)`` then refuses it."""
        conn = self._session()
        status, data = self._run("search", conn.uid, "SEARCH", "UNSEEN")
        if status != "OK":
            raise self._fail("search", data[-1] if data else status)
        uids = sorted({uid.decode() for uid in (data[0] or b"").split()}, key=int)[:limit]
        messages = []
        query = f"(BODY.PEEK[]<0.{max_bytes + 1}>)"
        for uid in uids:
            # One message per command: the reply is easy to pair with its UID, and memory
            # holds one message at a time while it is read.
            status, data = self._run("fetch", conn.uid, "FETCH", uid, query)
            if status != "OK":
                raise self._fail(f"fetch of UID {uid}", data[-1] if data else status)
            raw = next((i[1] for i in data if isinstance(i, tuple) and b"BODY[" in i[0]), None)
            if raw is not None:  # None: the message was expunged since the search
                messages.append((uid, raw))
        return messages

    def mark_seen(self, uids: list[str]) -> None:
        """Add the \\Seen flag to these messages (UIDs as returned by ``fetch_unseen``)."""
        if not uids:
            return
        if not all(re.fullmatch(r"[0-9]{1,10}", uid) for uid in uids):
            raise ValueError("IMAP UIDs are decimal numbers")
        conn = self._session()
        message_set = ",".join(uids)
        status, data = self._run("store", conn.uid, "STORE", message_set, "+FLAGS", r"(\Seen)")
        if status != "OK":
            raise self._fail("store", data[-1] if data else status)

    def close(self) -> None:
        """Log out and disconnect; never raises (the connection may already be gone)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()  # imaplib closes the socket even when LOGOUT fails

    def __enter__(self) -> ImapMailbox:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
