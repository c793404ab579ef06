"""Isolation: a person of another customer account never sees a ticket, an attachment, an
internal note, an article draft or a bug's details; HTML and scripts in messages are shown as
text, never run; uploads are checked by content."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from otomat.support import tickets
from otomat.support.models import Article, Attachment, KbCategory, ProductBug, Ticket

pytestmark = pytest.mark.smoke
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> **bold** {{ 7*7 }} {% debug %}'


@pytest.fixture
def alices_ticket(cast, department, installed):
    instance = installed()
    ticket = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Secret plans " + HOSTILE,
        body=HOSTILE,
        instance=instance,
        uploads=[tickets.Upload("shot.png", PNG)],
    )
    tickets.staff_reply(
        ticket, staff=cast.staff, body="Internal: customer is difficult", internal=True
    )
    return ticket


def test_another_customer_sees_nothing(client, cast, alices_ticket):
    attachment = Attachment.objects.get()
    category = KbCategory.objects.create(name="General", slug="general")
    draft = Article.objects.create(
        category=category, title="Draft about secrets", slug="draft", body="x"
    )
    bug = ProductBug.objects.create(product=alices_ticket.product, title="Internal bug")
    client.force_login(cast.charlie)
    for url in [
        reverse("support:ticket", args=[alices_ticket.number]),
        reverse("support:attachment", args=[attachment.pk]),
        reverse("support:kb_article", args=[draft.slug]),
        reverse("support:bug", args=[bug.pk]),
        reverse("support:workload"),
    ]:
        assert client.get(url).status_code == 404, url
    for url, data in [
        (reverse("support:reply", args=[alices_ticket.number]), {"body": "hi"}),
        (reverse("support:status", args=[alices_ticket.number]), {"status": "resolved"}),
        (reverse("support:rate", args=[alices_ticket.number]), {"rating": "1"}),
        (reverse("support:action", args=[alices_ticket.number]), {"action": "assign"}),
    ]:
        assert client.post(url, data).status_code == 404, url
    listing = client.get(reverse("support:list") + "?state=all").content.decode()
    assert alices_ticket.number not in listing
    suggestions = client.get(
        reverse("support:suggest"), {"subject": "secret plans"}
    ).content.decode()
    assert alices_ticket.number not in suggestions and "Draft about" not in suggestions
    assert alices_ticket.messages.count() == 2  # nothing was added


def test_teammates_share_the_history_but_not_internal_notes(client, cast, alices_ticket):
    client.force_login(cast.bob)
    page = client.get(reverse("support:ticket", args=[alices_ticket.number])).content.decode()
    assert "Internal: customer is difficult" not in page
    assert (
        client.get(reverse("support:attachment", args=[Attachment.objects.get().pk])).status_code
        == 200
    )
    suggestions = client.get(
        reverse("support:suggest"), {"subject": "secret plans"}
    ).content.decode()
    assert alices_ticket.number in suggestions  # Bob sees what Alice asked before
    client.force_login(cast.staff)
    assert (
        "Internal: customer is difficult"
        in client.get(reverse("support:ticket", args=[alices_ticket.number])).content.decode()
    )


def test_html_and_templates_in_messages_stay_inert(client, cast, alices_ticket):
    client.force_login(cast.alice)
    page = client.get(reverse("support:ticket", args=[alices_ticket.number])).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "{{ 7*7 }}" in page and "49" not in page.split("{{ 7*7 }}")[0][-5:]
    response = client.get(reverse("support:attachment", args=[Attachment.objects.get().pk]))
    assert response["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response["Content-Security-Policy"]


def test_uploads_are_checked_by_content_and_size(client, cast, alices_ticket, settings):
    settings.SUPPORT_ATTACHMENT_MAX_BYTES = 1000
    client.force_login(cast.alice)
    url = reverse("support:reply", args=[alices_ticket.number])
    exe = io.BytesIO(b"MZ\x90\x00" + b"\x00\xff" * 100)
    exe.name = "photo.png"
    response = client.post(url, {"body": "see file", "files": [exe]})
    assert (
        response.status_code == 400
        and "only PDF, PNG, JPEG, GIF, text and zip" in response.content.decode()
    )
    big = io.BytesIO(PNG + b"\0" * 2000)
    big.name = "big.png"
    response = client.post(url, {"body": "see file", "files": [big]})
    assert response.status_code == 400 and "too large" in response.content.decode()
    assert alices_ticket.messages.count() == 2 and Attachment.objects.count() == 1
    many = [io.BytesIO(b"hello") for _ in range(11)]
    for n, f in enumerate(many):
        f.name = f"note{n}.txt"
    assert client.post(url, {"body": "x", "files": many}).status_code == 400
    empty = client.post(url, {"body": "   "})
    assert empty.status_code == 400
    assert Ticket.objects.get().messages.count() == 2


def test_a_closed_account_cannot_open_tickets_or_order(cast, department, greeter):
    from otomat.support.relationships import end_relationship

    end_relationship(
        cast.alice.account,
        message="We no longer work together; export your data.",
        actor=cast.staff,
    )
    cast.alice.account.refresh_from_db()
    with pytest.raises(tickets.TicketError, match="no longer work together"):
        tickets.open_ticket(
            account=cast.alice.account, requester=cast.alice, subject="Hi", body="?"
        )
