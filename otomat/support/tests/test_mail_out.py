"""Outbound support email: otomat.support.mail_out builds threaded, injection-safe messages
(no database). Round trips go through the stdlib parser and otomat.support.mail_in."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

import pytest

from otomat.support.mail_in import parse_email, ticket_reference
from otomat.support.mail_out import (
    MAX_REFERENCES,
    build_autoreply,
    build_reply,
    new_message_key,
    tag_subject,
)

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(64)


def reply(**overrides):
    fields = {
        "ticket_number": "T-000123",
        "subject": "Printer broken",
        "body": "Dzień dobry,\n\nplease restart the bot.\n\n— Otomat Support",
        "to": ["Alice Anders <alice@example.com>"],
        "from_addr": "Otomat Support <support@otomat.test>",
        "reply_to": "support+T-000123@otomat.test",
        "message_id_domain": "otomat.test",
        "message_key": "k3y_AbC-123",
    }
    return build_reply(**(fields | overrides))


def reparse(msg):
    """The message as a receiving mail client sees it."""
    return BytesParser(policy=policy.default).parsebytes(msg.as_bytes(policy=policy.SMTP))


def test_plain_text_utf8_body_and_basic_headers():
    msg = reparse(reply())
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    body = msg.get_content().replace("\r\n", "\n")
    assert body == "Dzień dobry,\n\nplease restart the bot.\n\n— Otomat Support\n"
    assert msg["From"].addresses[0].addr_spec == "support@otomat.test"
    assert msg["To"].addresses[0].display_name == "Alice Anders"
    assert str(msg["Reply-To"]) == "support+T-000123@otomat.test"
    assert msg["Date"].datetime is not None
    assert msg["Message-ID"] == "<k3y_AbC-123@otomat.test>"
    assert msg["Auto-Submitted"] is None  # staff replies are written by people


def test_serialised_lines_are_crlf_and_short():
    raw = reply(body="x" * 5000 + " ą" * 500).as_bytes(policy=policy.SMTP)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    ("subject", "in_reply_to", "expected"),
    [
        ("Printer broken", "", "[T-000123] Printer broken"),
        ("Printer broken", "m1@example.com", "Re: [T-000123] Printer broken"),
        ("Re: [T-000123] Printer broken", "m1@example.com", "Re: [T-000123] Printer broken"),
        ("[T-000123] Printer broken", "", "[T-000123] Printer broken"),
        ("RE: Re: Fwd: [t-000123] Re: Printer broken", "m1@x", "Re: [T-000123] Printer broken"),
        ("Odp: Odp: Drukarka", "m1@x", "Re: [T-000123] Drukarka"),
        ("Balas: [T-000123] Pembayaran gagal", "m1@x", "Re: [T-000123] Pembayaran gagal"),
        ("Re[2]: AW: SV: help", "", "[T-000123] help"),
        ("Printer [T-000123] broken [T-000123]", "", "[T-000123] Printer broken"),
        ("Regarding the invoice", "", "[T-000123] Regarding the invoice"),  # not a prefix
        ("", "", "[T-000123]"),
    ],
)
def test_subject_carries_the_tag_once(subject, in_reply_to, expected):
    assert reply(subject=subject, in_reply_to=in_reply_to)["Subject"] == expected


def test_the_tag_survives_a_round_trip_through_the_customers_reply():
    subject = reply(in_reply_to="m1@example.com")["Subject"]
    assert ticket_reference("Re: " + subject) == "T-000123"
    assert tag_subject("Re: " + subject, "T-000123") == subject


def test_threading_headers():
    msg = reply(
        in_reply_to="<m3@example.com>",
        references=["m1@example.com", "<m2@example.com>", "m1@example.com", "bad id", ""],
    )
    assert msg["In-Reply-To"] == "<m3@example.com>"
    # The parent's references, then the parent; duplicates and unusable ids dropped.
    assert msg["References"] == "<m1@example.com> <m2@example.com> <m3@example.com>"


def test_references_are_capped_keeping_the_root_and_the_newest():
    refs = [f"r{i}@example.com" for i in range(50)]
    msg = reparse(reply(in_reply_to="parent@example.com", references=refs))
    ids = re.findall(r"<([^>]+)>", str(msg["References"]))
    assert len(ids) == MAX_REFERENCES
    assert ids[0] == "r0@example.com"
    assert ids[-2:] == ["r49@example.com", "parent@example.com"]


def test_no_threading_headers_for_a_new_thread():
    msg = reply()
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_autoreply_is_marked_automatic():
    msg = build_autoreply(
        ticket_number="T-000123",
        subject="Printer broken",
        body="We got your message.",
        to=["alice@example.com"],
        from_addr="support@otomat.test",
        reply_to="",
        message_id_domain="otomat.test",
        message_key=new_message_key(),
        in_reply_to="m1@example.com",
    )
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Reply-To"] is None
    # The desk's own parser recognises it as a robot, so two desks cannot loop.
    assert parse_email(msg.as_bytes()).auto_submitted is True


@pytest.mark.parametrize(
    "field",
    ["subject", "ticket_number"],
)
def test_header_injection_through_text_fields_is_neutralised(field):
    evil = "Hello\r\nBcc: victim@example.com\r\n\r\nInjected body"
    msg = reply(**{field: evil})
    raw = msg.as_bytes(policy=policy.SMTP)
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", headers, re.M | re.I)
    assert msg["Bcc"] is None
    assert "\r" not in msg["Subject"] and "\n" not in msg["Subject"]
    assert "Hello Bcc: victim@example.com Injected body" in reparse(msg)["Subject"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", ["Evil\r\nBcc: victim@example.com <alice@example.com>"]),
        ("from_addr", "Support\nBcc: victim@example.com <support@otomat.test>"),
        ("reply_to", "Support\r\nBcc: victim@example.com <support@otomat.test>"),
    ],
)
def test_header_injection_through_names_is_neutralised(field, value):
    msg = reply(**{field: value})
    raw = msg.as_bytes(policy=policy.SMTP)
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", headers, re.M | re.I)
    parsed = reparse(msg)
    addresses = [a.addr_spec for name in ("To", "From", "Reply-To") for a in parsed[name].addresses]
    assert "victim@example.com" not in addresses


def test_body_cannot_smuggle_headers_or_control_characters():
    msg = reparse(reply(body="line1\r\n.\r\nBcc: x@y.z\x00\x07\rend"))
    assert msg["Bcc"] is None
    assert msg.get_content().replace("\r\n", "\n") == "line1\n.\nBcc: x@y.z\nend\n"


@pytest.mark.parametrize(
    "overrides",
    [
        {"to": []},
        {"to": ["not an address"]},
        {"to": ["alice@example.com, bob@example.com"]},
        {"to": ["alice@."]},
        {"from_addr": "support"},
        {"message_key": "a b"},
        {"message_key": "a>\r\nBcc: x@y.z"},
        {"message_id_domain": "otomat.test>\r\nX: y"},
    ],
)
def test_unusable_addresses_and_ids_are_refused(overrides):
    with pytest.raises(ValueError):
        reply(**overrides)


def test_attachments_round_trip_through_the_inbound_parser():
    msg = reply(
        in_reply_to="m1@example.com",
        attachments=[
            ("../screen shot.png", "image/png", PNG_BYTES),
            ("raport zażółć.txt", "text/plain", "treść\n".encode()),
            ("odd.bin", "not a type\r\nX: y", b"\x00\x01"),
        ],
    )
    parsed = parse_email(msg.as_bytes(policy=policy.SMTP))
    assert parsed.subject == "Re: [T-000123] Printer broken"
    assert parsed.message_id == "k3y_AbC-123@otomat.test"
    assert parsed.in_reply_to == "m1@example.com"
    assert parsed.text == "Dzień dobry,\n\nplease restart the bot.\n\n— Otomat Support"
    assert [(a.filename, a.content_type, a.data) for a in parsed.attachments] == [
        ("screen shot.png", "image/png", PNG_BYTES),
        ("raport zażółć.txt", "text/plain", "treść\n".encode()),
    ]
    assert parsed.rejected_attachments == [
        ("odd.bin", "file type application/octet-stream is not accepted")
    ]


def test_new_message_key_is_unique_and_url_safe():
    keys = {new_message_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", key) for key in keys)
    assert reply(message_key=next(iter(keys)))["Message-ID"].startswith("<")
