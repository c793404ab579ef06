"""The mail outbox: with no mail server (the main command's default), every message is kept for
staff to read (text, HTML in a sandboxed frame, attachments), newest first; customers never see
it."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from otomat.notify.models import OutboxMessage
from otomat.notify.outbox import BACKEND

pytestmark = pytest.mark.smoke


@pytest.fixture
def outbox(settings):
    settings.EMAIL_BACKEND = BACKEND
    return settings


def send_invoice_mail(n: int = 1) -> None:
    message = EmailMultiAlternatives(
        f"Invoice INV/2026/{n:04d}",
        "Hello Alice,\nyour invoice is ready.",
        "billing@otomat.local",
        ["alice@example.com"],
        cc=["bob@example.com"],
        reply_to=["support@otomat.local"],
        headers={"X-Otomat-Kind": "invoice"},
    )
    message.attach_alternative(
        '<p>Hello <b>Alice</b></p><script>alert("x")</script><img src="https://tracker.example/p.gif">',
        "text/html",
    )
    message.attach("INV-2026-0001.pdf", b"%PDF-1.4 fake", "application/pdf")
    message.send()


def test_the_backend_keeps_the_whole_message_and_sends_nothing(db, outbox):
    send_invoice_mail()
    kept = OutboxMessage.objects.get()
    assert kept.subject == "Invoice INV/2026/0001"
    assert kept.from_email == "billing@otomat.local"
    assert kept.to == ["alice@example.com"] and kept.cc == ["bob@example.com"]
    assert kept.reply_to == ["support@otomat.local"]
    assert kept.text_body == "Hello Alice,\nyour invoice is ready."
    assert "<b>Alice</b>" in kept.html_body
    assert kept.attachments == [
        {"filename": "INV-2026-0001.pdf", "content_type": "application/pdf", "size": 13}
    ]
    assert kept.headers == {"X-Otomat-Kind": "invoice"}
    assert b"Subject: Invoice INV/2026/0001" in bytes(kept.raw)
    assert not hasattr(mail, "outbox") or mail.outbox == []  # not the test backend's list


def test_a_message_without_recipients_is_not_kept(db, outbox):
    assert mail.EmailMessage("Nobody", "text", "a@example.com", []).send() == 0
    assert OutboxMessage.objects.count() == 0


def test_staff_read_the_outbox_newest_first_with_pages(client, cast, outbox):
    for n in range(1, 53):
        send_invoice_mail(n)
    client.force_login(cast.staff)
    home = client.get(reverse("web:home")).content.decode()
    assert reverse("notify:outbox") in home  # the staff menu links it while it is in use
    first = client.get(reverse("notify:outbox")).content.decode()
    assert first.index("INV/2026/0052") < first.index("INV/2026/0051")
    assert "INV/2026/0002" not in first and "Page 1 of 2" in first
    second = client.get(reverse("notify:outbox"), {"page": 2}).content.decode()
    assert "INV/2026/0002" in second and "INV/2026/0001" in second
    assert "INV/2026/0052" not in second


def test_staff_read_one_message_and_its_html_cannot_run(client, cast, outbox):
    send_invoice_mail()
    kept = OutboxMessage.objects.get()
    client.force_login(cast.staff)
    page = client.get(reverse("notify:outbox_message", args=[kept.pk])).content.decode()
    assert "Invoice INV/2026/0001" in page and "alice@example.com" in page
    assert "your invoice is ready." in page
    assert "INV-2026-0001.pdf" in page and "application/pdf" in page
    # The HTML body is never inlined in our page: only in a sandboxed frame of its own.
    assert "<script>alert" not in page
    assert (
        f'<iframe class="mail-html" sandbox src="{reverse("notify:outbox_html", args=[kept.pk])}"'
        in page
    )
    html = client.get(reverse("notify:outbox_html", args=[kept.pk]))
    assert html.status_code == 200 and "<b>Alice</b>" in html.content.decode()
    policy = html["Content-Security-Policy"]
    assert policy.startswith("sandbox") and "default-src 'none'" in policy
    assert "script-src" not in policy and "img-src data:" in policy
    assert html["X-Frame-Options"] == "SAMEORIGIN"
    raw = client.get(reverse("notify:outbox_raw", args=[kept.pk]))
    assert raw["Content-Disposition"].startswith("attachment;")
    assert b"INV-2026-0001.pdf" in raw.content


def test_the_empty_outbox_says_so(client, cast, outbox):
    client.force_login(cast.staff)
    page = client.get(reverse("notify:outbox")).content.decode()
    assert "No mail yet." in page and "<table" not in page


def test_customers_and_visitors_are_refused(client, cast, outbox):
    send_invoice_mail()
    kept = OutboxMessage.objects.get()
    urls = [
        reverse("notify:outbox"),
        reverse("notify:outbox_message", args=[kept.pk]),
        reverse("notify:outbox_html", args=[kept.pk]),
        reverse("notify:outbox_raw", args=[kept.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(cast.alice)  # the customer the mail was for
    for url in urls:
        response = client.get(url)
        assert response.status_code == 404
        assert b"INV/2026/0001" not in response.content
    assert reverse("notify:outbox") not in client.get(reverse("web:home")).content.decode()


def test_a_missing_message_or_html_body_is_404(client, cast, outbox):
    mail.EmailMessage("Plain", "only text", "a@example.com", ["alice@example.com"]).send()
    kept = OutboxMessage.objects.get()
    client.force_login(cast.staff)
    assert client.get(reverse("notify:outbox_message", args=[kept.pk + 1])).status_code == 404
    assert client.get(reverse("notify:outbox_html", args=[kept.pk])).status_code == 404
    assert client.get(reverse("notify:outbox"), {"page": "nonsense"}).status_code == 200


def test_without_the_outbox_the_menu_has_no_link(client, cast, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.force_login(cast.staff)
    assert reverse("notify:outbox") not in client.get(reverse("web:home")).content.decode()
    page = client.get(reverse("notify:outbox")).content.decode()
    assert "sent through the configured mail server" in page


def test_only_the_newest_messages_are_kept(db, outbox, monkeypatch):
    from otomat.notify import outbox as backend

    monkeypatch.setattr(backend, "KEEP", 3)
    monkeypatch.setattr(backend, "PRUNE_EVERY", 1)
    for n in range(1, 6):
        send_invoice_mail(n)
    subjects = list(OutboxMessage.objects.values_list("subject", flat=True))
    assert subjects == ["Invoice INV/2026/0005", "Invoice INV/2026/0004", "Invoice INV/2026/0003"]
    assert backend.prune() == 0  # nothing more to drop
