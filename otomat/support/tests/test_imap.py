"""Fetching support mail over IMAP: otomat.support.imap.ImapMailbox against the fake IMAP4rev1
server in fake_imap.py, through the real stdlib imaplib (no database)."""

from __future__ import annotations

import socket
import time

import pytest

from otomat.support.imap import ImapMailbox
from otomat.support.mail_in import MailError, parse_email
from otomat.support.tests.fake_imap import FakeImapServer

USER, PASSWORD = "desk@otomat.test", 'pa55 "w0rd\\ s3cret'


def raw(n: int, body: str = "Hello") -> bytes:
    return (
        f"From: Customer {n} <c{n}@example.com>\r\nTo: support@otomat.test\r\n"
        f"Subject: [T-00000{n}] Question {n}\r\nMessage-ID: <m{n}@example.com>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body} {n}\r\n"
    ).encode()


@pytest.fixture
def server():
    with FakeImapServer(USER, PASSWORD, [raw(1), raw(2), raw(3)]) as fake:
        yield fake


def mailbox(server: FakeImapServer, **overrides) -> ImapMailbox:
    fields = {"host": "127.0.0.1", "port": server.port, "username": USER, "password": PASSWORD}
    return ImapMailbox(**(fields | {"timeout": 5} | overrides))


def test_fetch_and_mark_seen_round_trip(server):
    with mailbox(server) as box:
        messages = box.fetch_unseen()
        assert [uid for uid, _ in messages] == ["1001", "1002", "1003"]
        assert [data for _, data in messages] == [raw(1), raw(2), raw(3)]
        assert server.seen == set()  # BODY.PEEK[]: fetching does not mark anything seen
        box.mark_seen(["1001", "1003"])
        assert server.seen == {"1001", "1003"}
        assert [uid for uid, _ in box.fetch_unseen()] == ["1002"]
    assert any("UID STORE 1001,1003 +FLAGS (\\Seen)" in c for c in server.commands)
    assert server.commands[-1].endswith("LOGOUT")


def test_fetched_mail_parses(server):
    with mailbox(server) as box:
        (uid, data), *_ = box.fetch_unseen(limit=1)
    parsed = parse_email(data)
    assert (uid, parsed.sender, parsed.subject, parsed.text) == (
        "1001",
        "c1@example.com",
        "[T-000001] Question 1",
        "Hello 1",
    )


def test_limit_takes_the_oldest_first_and_new_mail_arrives(server):
    with mailbox(server) as box:
        assert [uid for uid, _ in box.fetch_unseen(limit=2)] == ["1001", "1002"]
        box.mark_seen(["1001", "1002", "1003"])
        assert box.fetch_unseen() == []
        uid = server.add(raw(4))
        assert box.fetch_unseen() == [(uid, raw(4))]
    with mailbox(server) as box:  # a new session sees the same state
        assert [uid for uid, _ in box.fetch_unseen()] == ["1004"]
        box.mark_seen([])  # nothing to do, no command sent


def test_big_messages_arrive_cut_just_past_the_limit_and_are_then_refused(server):
    big = raw(5, body="x" * 5000)
    server.add(big)
    with mailbox(server) as box:
        messages = dict(box.fetch_unseen(max_bytes=1000))
    assert messages["1004"] == big[:1001]
    assert messages["1001"] == raw(1)
    with pytest.raises(MailError, match="too large"):
        parse_email(messages["1004"], max_bytes=1000)


def test_wrong_password_is_a_mail_error_without_the_password(server):
    with pytest.raises(MailError) as caught:
        mailbox(server, password="wrong-" + PASSWORD).open()
    message = str(caught.value)
    assert "login failed" in message and "AUTHENTICATIONFAILED" in message
    assert USER in message and "127.0.0.1" in message
    assert PASSWORD not in message and "s3cret" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_password_echoed_by_the_server_is_scrubbed():
    box = ImapMailbox(host="h", port=1, username="u", password="hunter2!")
    assert "hunter2!" not in str(box._fail("login", b"NO bad password hunter2!"))


def test_unreachable_port_is_a_mail_error():
    with FakeImapServer(USER, PASSWORD) as gone:
        port = gone.port
    started = time.perf_counter()
    with pytest.raises(MailError, match=rf"IMAP connection failed on 127\.0\.0\.1:{port}"):
        ImapMailbox(host="127.0.0.1", port=port, username=USER, password=PASSWORD).open()
    assert time.perf_counter() - started < 5


def test_silent_server_times_out_as_a_mail_error():
    with socket.socket() as listener:  # accepts connections (backlog) but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        started = time.perf_counter()
        with pytest.raises(MailError, match="connection failed"):
            ImapMailbox(
                host="127.0.0.1", port=port, username=USER, password=PASSWORD, timeout=0.5
            ).open()
        assert time.perf_counter() - started < 3


def test_ssl_against_a_plain_server_is_a_mail_error(server):
    with pytest.raises(MailError, match="connection failed"):
        mailbox(server, use_ssl=True).open()


def test_unknown_mailbox_is_a_mail_error(server):
    with pytest.raises(MailError, match=r"select 'Archive' failed.*NONEXISTENT"):
        mailbox(server, mailbox="Archive").open()


def test_misuse_is_refused(server):
    with pytest.raises(MailError, match="not open"):
        mailbox(server).fetch_unseen()
    with mailbox(server) as box, pytest.raises(ValueError):
        box.mark_seen(["1001 +FLAGS (\\Deleted)"])
    with pytest.raises(MailError, match="control characters"):
        mailbox(server, password="x\r\nA1 DELETE INBOX")
