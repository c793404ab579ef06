"""Email into the desk: a signed webhook opens tickets and threads replies; forged, stale,
huge or hostile mail changes nothing (or is stored inert); people write only into their own
account's tickets; robots are never answered; the IMAP poller reads the mailbox once."""

from __future__ import annotations

import time
from email.message import EmailMessage

import pytest
from django.core import mail
from django.urls import reverse

from otomat.notify.models import Notification
from otomat.notify.services import deliver_pending
from otomat.support.inbound import sign
from otomat.support.models import InboundEmail, Ticket, TicketMessage

pytestmark = pytest.mark.smoke
SECRET = "inbound-test-secret"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.SUPPORT_INBOUND_SECRET = SECRET
    settings.SUPPORT_FROM_EMAIL = "support@seller.example"


def email(sender, subject, body, *, message_id=None, in_reply_to=None, html=None, headers=None):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@seller.example"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or f"<{time.time_ns()}@mail.example>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def post(client, raw, *, secret=SECRET, timestamp=None):
    timestamp = str(timestamp or int(time.time()))
    return client.post(
        reverse("support:inbound_email"),
        data=raw,
        content_type="message/rfc822",
        HTTP_X_OTOMAT_TIMESTAMP=timestamp,
        HTTP_X_OTOMAT_SIGNATURE=sign(secret, timestamp, raw),
    )


def test_an_email_opens_a_ticket_and_the_reply_comes_back_to_it(client, cast, department):
    raw = email("Alice Anders <alice@example.com>", "Bot stopped", "It does not answer since 9:00.")
    assert post(client, raw).status_code == 200
    ticket = Ticket.objects.get()
    assert ticket.channel == "email" and ticket.requester == cast.alice
    assert ticket.messages.get().body == "It does not answer since 9:00."
    # Staff answer; the email goes out in the thread (subject tag, Message-ID).
    from otomat.support import tickets

    tickets.staff_reply(ticket, staff=cast.staff, body="Restarted it, try now.")
    deliver_pending()
    sent = [m for m in mail.outbox if m.subject.startswith(f"[{ticket.number}]")]
    reply_mail = sent[-1]
    assert reply_mail.extra_headers["Message-ID"].startswith(f"<{ticket.number.lower()}.")
    assert reply_mail.extra_headers["Reply-To"] == "support@seller.example"
    # The customer's mail program answers to that Message-ID: same ticket, quoted text removed.
    answer = email(
        "alice@example.com",
        f"Re: [{ticket.number}] Bot stopped",
        "Works again, thanks!\n\nOn Tue, Support wrote:\n> Restarted it, try now.",
        in_reply_to=reply_mail.extra_headers["Message-ID"],
    )
    assert post(client, answer).status_code == 200
    assert Ticket.objects.count() == 1
    last = ticket.messages.filter(kind="customer").last()
    assert last.body == "Works again, thanks!" and last.channel == "email"
    # A teammate (same account) may write into it by subject alone.
    assert (
        post(client, email("bob@example.com", f"[{ticket.number}] also", "Me too")).status_code
        == 200
    )
    assert ticket.messages.filter(author=cast.bob).exists()


def test_forged_stale_or_oversized_deliveries_change_nothing(client, cast, department):
    raw = email("alice@example.com", "Hello", "Hi")
    assert post(client, raw, secret="wrong").status_code == 401
    assert post(client, raw, timestamp=int(time.time()) - 3600).status_code == 401
    response = client.post(
        reverse("support:inbound_email"), data=raw, content_type="message/rfc822"
    )
    assert response.status_code == 401
    assert post(client, b"x" * (11 * 1024 * 1024)).status_code == 413
    assert not Ticket.objects.exists() and not InboundEmail.objects.exists()


def test_no_one_writes_into_another_accounts_ticket(client, cast, department):
    post(client, email("alice@example.com", "Private question", "Our numbers..."))
    ticket = Ticket.objects.get()
    hijack = email("charlie@example.com", f"Re: [{ticket.number}] Private question", "Show me")
    assert post(client, hijack).status_code == 400
    assert ticket.messages.count() == 1
    stored = InboundEmail.objects.get(sender="charlie@example.com")
    assert stored.status == "rejected" and "not a person of the ticket's account" in stored.detail
    stranger = email("mallory@evil.example", "Hi", "Free money")
    assert post(client, stranger).status_code == 400
    assert InboundEmail.objects.get(sender="mallory@evil.example").detail == "unknown sender"
    assert Ticket.objects.count() == 1


def test_robots_duplicates_and_hostile_html(client, cast, department):
    auto = email(
        "alice@example.com",
        "Out of office",
        "I am away",
        headers={"Auto-Submitted": "auto-replied"},
    )
    assert post(client, auto).status_code == 200
    assert not Ticket.objects.exists()
    assert InboundEmail.objects.get().status == "ignored"
    html = email(
        "alice@example.com",
        "Styled <b>mail</b>",
        "",
        message_id="<same@mail.example>",
        html='<p>Hello<script>steal()</script><img src=x onerror="alert(1)"><a href="https://x.example">link</a></p>',
    )
    assert post(client, html).status_code == 200
    assert post(client, html).status_code == 200  # delivered twice: handled once
    ticket = Ticket.objects.get()
    body = ticket.messages.get().body
    assert "steal()" not in body and "onerror" not in body and "https://x.example" in body
    client.force_login(cast.alice)
    page = client.get(reverse("support:ticket", args=[ticket.number])).content.decode()
    assert "<b>mail</b>" not in page and "&lt;b&gt;mail&lt;/b&gt;" in page
    assert Notification.objects.filter(kind="support/ticket_opened").count() == 1


def test_the_imap_poller_reads_new_mail_once(cast, department, settings):
    from otomat.support.inbound import poll_imap
    from otomat.support.tests.fake_imap import FakeImapServer

    server = FakeImapServer(
        "desk", "pw", [email("alice@example.com", "Via IMAP", "Hello desk")]
    ).start()
    try:
        settings.SUPPORT_IMAP_HOST, settings.SUPPORT_IMAP_PORT = "127.0.0.1", server.port
        settings.SUPPORT_IMAP_SSL, settings.SUPPORT_IMAP_USER, settings.SUPPORT_IMAP_PASSWORD = (
            False,
            "desk",
            "pw",
        )
        assert poll_imap() == 1
        assert poll_imap() == 0  # marked seen
        assert Ticket.objects.get().subject == "Via IMAP"
        assert TicketMessage.objects.get().channel == "email"
    finally:
        server.close()


def test_attachments_by_email_are_kept_or_refused_with_a_note(client, cast, department):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.com", "support@seller.example", "Logs"
    msg["Message-ID"] = "<att@mail.example>"
    msg.set_content("Attached.")
    msg.add_attachment(
        b"%PDF-1.4\n" + b"0" * 3_000_000,
        maintype="application",
        subtype="pdf",
        filename="report.pdf",
    )
    msg.add_attachment(
        b"MZ\x90\x00" + b"\x00" * 500, maintype="image", subtype="png", filename="virus.png"
    )
    assert post(client, msg.as_bytes()).status_code == 200  # 4 MB: above the 2 MB form limit
    message = Ticket.objects.get().messages.get()
    assert [a.filename for a in message.attachments.all()] == ["report.pdf"]
    assert "virus.png" in message.body and "not accepted" in message.body
