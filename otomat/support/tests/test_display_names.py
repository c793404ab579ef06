"""Customers see who answered by name — the staff member's full name, their first name, or
the seller's name for staff without one — never the staff member's email address: on the
ticket page, in the API, in the reply email and in the Telegram notice."""

from __future__ import annotations

import pytest
from django.urls import reverse

from otomat.accounts.models import ApiToken
from otomat.billing.models import BillingSettings
from otomat.notify import services as notify_services
from otomat.notify.models import Notification, TelegramLink
from otomat.support import people, tickets
from otomat.support.models import TicketMessage


@pytest.fixture
def ticket(cast, department, sla_policy):
    return tickets.open_ticket(
        account=cast.alice.account, requester=cast.alice, subject="Hello", body="A question"
    )


@pytest.fixture
def seller(db):
    config = BillingSettings.get()
    config.seller_name = "Toko Bot Jaya"
    config.save()
    return config.seller_name


def _delivered(kind="support/staff_replied"):
    for n in Notification.objects.filter(kind=kind, sent_at__isnull=True):
        notify_services.deliver(n.pk)
    return {n.channel: n for n in Notification.objects.filter(kind=kind)}


@pytest.mark.parametrize(
    ("first", "last", "shown"),
    [("Sari", "Wulandari", "Sari Wulandari"), ("Sari", "", "Sari"), ("", "", "Toko Bot Jaya")],
)
def test_it_signs_staff_replies_with_a_name_never_the_email(
    client, cast, ticket, seller, settings, monkeypatch, mailoutbox, first, last, shown
):
    settings.OWNER_BOT_TOKEN = "123:abc"
    sent = []
    monkeypatch.setattr(
        notify_services, "send_telegram", lambda chat, text, **kw: sent.append(text)
    )
    TelegramLink.objects.create(user=cast.alice, chat_id=42)
    cast.staff.first_name, cast.staff.last_name = first, last
    cast.staff.save()
    tickets.staff_reply(ticket, staff=cast.staff, body="Here is the answer.")
    assert people.display_name(cast.staff) == shown

    client.force_login(cast.alice)
    page = client.get(reverse("support:ticket", args=[ticket.number])).content.decode()
    assert shown in page and "staff@example.com" not in page
    token = ApiToken.issue(cast.alice, "tests")[1]
    api = client.get(
        f"/api/v1/support/tickets/{ticket.number}", HTTP_AUTHORIZATION=f"Bearer {token}"
    ).json()
    assert [m["author"] for m in api["messages"]] == ["Alice Anders", shown]

    by_channel = _delivered()
    email, telegram = by_channel["email"], by_channel["telegram"]
    assert f"— {shown}" in email.body and "staff@example.com" not in email.body
    assert mailoutbox and f"— {shown}" in mailoutbox[-1].body
    assert sent and f"— {shown}" in sent[-1] and "staff@example.com" not in sent[-1]
    assert telegram.sent_at is not None
    reply = ticket.messages.get(kind=TicketMessage.Kind.STAFF)
    assert reply.author_label == shown  # what an export of the conversation shows


def test_customers_keep_their_own_names(cast, ticket, seller):
    message = ticket.messages.get(kind=TicketMessage.Kind.CUSTOMER)
    assert people.signature(message) == "Alice Anders"
    assert people.display_name(None) == "Toko Bot Jaya"  # a deleted staff member


def test_the_data_export_names_staff_too(cast, ticket, seller):
    import io
    import json
    import zipfile

    from otomat.support.relationships import export_account

    tickets.staff_reply(ticket, staff=cast.staff, body="Answer")
    TicketMessage.objects.filter(kind=TicketMessage.Kind.STAFF).update(
        author_label="staff@example.com"  # as replies were stored before
    )
    archive = zipfile.ZipFile(io.BytesIO(export_account(cast.alice.account)))
    conversation = json.loads(archive.read("tickets.json"))[0]
    assert [m["from"] for m in conversation["messages"]] == ["Alice Anders", "Toko Bot Jaya"]
