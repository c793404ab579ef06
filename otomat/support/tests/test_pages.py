"""The support pages as people use them: a customer opens a ticket with suggestions while
typing, staff work from the workload page, answer, merge and split; the knowledge base with
votes; announcements with read tracking; ending a relationship; Telegram tickets."""

from __future__ import annotations

import pytest
from django.urls import reverse

from otomat.support import announcements, tickets
from otomat.support.models import (
    Announcement,
    AnnouncementReceipt,
    Article,
    KbCategory,
    Ticket,
)

pytestmark = pytest.mark.smoke


@pytest.fixture
def article(db):
    category = KbCategory.objects.create(name="Getting started", slug="start")
    return Article.objects.create(
        category=category,
        title="Bot does not answer after restart",
        slug="bot-silent",
        body="Check the token in Settings.",
        status=Article.Status.PUBLISHED,
    )


def test_a_customer_opens_a_ticket_with_suggestions(
    client, cast, department, sla_policy, installed, article
):
    instance = installed()
    tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Restart broke the bot",
        body="?",
        instance=instance,
    )
    client.force_login(cast.bob)
    found = client.get(
        reverse("support:suggest"), {"subject": "bot restart not answering"}
    ).content.decode()
    assert "Bot does not answer after restart" in found  # the article
    assert "Restart broke the bot" in found  # Alice asked before, Bob sees it
    form = client.get(reverse("support:new") + f"?instance={instance.id}").content.decode()
    assert "0 of 3 used" in form and "hx-get" in form
    response = client.post(
        reverse("support:new"),
        {
            "instance": str(instance.id),
            "kind": "change",
            "subject": "New welcome",
            "body": "Please",
            "priority": "urgent",
        },
    )
    assert response.status_code == 400  # customers cannot pick "urgent"
    response = client.post(
        reverse("support:new"),
        {
            "instance": str(instance.id),
            "kind": "change",
            "subject": "New welcome",
            "body": "Please",
            "priority": "high",
        },
    )
    ticket = Ticket.objects.get(subject="New welcome")
    assert response["Location"] == reverse("support:ticket", args=[ticket.number])
    assert ticket.counts_as_revision and ticket.requester == cast.bob
    bad = client.post(reverse("support:new"), {"kind": "nonsense", "subject": "", "body": ""})
    assert bad.status_code == 400 and Ticket.objects.count() == 2


def test_staff_work_from_the_workload_page(client, cast, department, sla_policy, installed):
    instance = installed()
    first = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Q1",
        body="Same question",
        instance=instance,
    )
    second = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.bob,
        subject="Q1 again",
        body="Same question",
        instance=instance,
    )
    client.force_login(cast.staff)
    page = client.get(reverse("support:workload")).content.decode()
    assert first.number in page and second.number in page and "Waiting on us" in page
    client.post(
        reverse("support:action", args=[first.number]),
        {"action": "merge", "tickets": [second.number]},
    )
    second.refresh_from_db()
    assert second.status == Ticket.Status.MERGED and first.messages.count() == 2
    client.post(reverse("support:reply", args=[first.number]), {"body": "Answer for both of you"})
    first.refresh_from_db()
    assert first.status == Ticket.Status.PENDING and first.assignee == cast.staff
    assert client.get(reverse("support:ticket", args=[second.number]))["Location"].endswith(
        first.number + "/"
    )
    message = first.messages.filter(author=cast.bob).get()
    client.post(
        reverse("support:action", args=[first.number]),
        {"action": "split", "messages": [message.pk], "subject": "Bob's own"},
    )
    assert Ticket.objects.get(subject="Bob's own").split_from == first
    client.post(reverse("support:action", args=[first.number]), {"action": "article"})
    assert Article.objects.get().status == Article.Status.DRAFT
    for name in ("support:sla_report", "support:bugs", "support:announcements_manage"):
        assert client.get(reverse(name)).status_code == 200
    for kind in ("canned", "articles", "kb-categories"):
        assert client.get(reverse("support:config", args=[kind])).status_code == 200
    assert client.get(reverse("support:config", args=["departments"])).status_code == 200
    assert (
        client.get(reverse("support:config_new", args=["departments"])).status_code == 404
    )  # owner only
    client.force_login(cast.owner)
    bad = client.post(
        reverse("support:config_new", args=["departments"]),
        {
            "name": "Night",
            "slug": "night",
            "hours": '{"mon": "25:00-26:00"}',
            "timezone": "Mars/Base",
            "position": 0,
        },
    )
    assert bad.status_code == 400


def test_resolve_rate_and_reopen(client, cast, department, sla_policy, installed):
    ticket = tickets.open_ticket(
        account=cast.alice.account, requester=cast.alice, subject="Q", body="?"
    )
    tickets.staff_reply(ticket, staff=cast.staff, body="Done", status=Ticket.Status.RESOLVED)
    client.force_login(cast.alice)
    assert (
        client.post(reverse("support:rate", args=[ticket.number]), {"rating": "9"}).status_code
        == 302
    )
    ticket.refresh_from_db()
    assert ticket.rating is None
    client.post(reverse("support:rate", args=[ticket.number]), {"rating": "5", "comment": "Fast!"})
    ticket.refresh_from_db()
    assert ticket.rating == 5
    client.post(reverse("support:reply", args=[ticket.number]), {"body": "Actually, again"})
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    tickets.set_status(ticket, Ticket.Status.CLOSED, actor=cast.staff)
    response = client.post(
        reverse("support:reply", args=[ticket.number]), {"body": "One more thing"}
    )
    follow_up = Ticket.objects.exclude(pk=ticket.pk).get()
    assert follow_up.split_from == ticket and response["Location"].endswith(follow_up.number + "/")


def test_knowledge_base_votes_once(client, cast, article):
    url = reverse("support:kb_article", args=[article.slug])
    assert "Check the token" in client.get(url).content.decode()
    client.post(url, {"helpful": "yes"})
    client.post(url, {"helpful": "yes"})
    article.refresh_from_db()
    assert article.helpful_yes == 1
    results = client.get(reverse("support:kb"), {"q": "restart answer"}).content.decode()
    assert article.title in results


def test_announcements_are_sent_once_and_reads_are_tracked(client, cast, installed):
    installed()
    item = Announcement.objects.create(
        title="Rights and obligations", body="Reminder: support covers...", created_by=cast.owner
    )
    client.force_login(cast.owner)
    client.post(reverse("support:announcement", args=[item.pk]), {"action": "send"})
    receipts = AnnouncementReceipt.objects.filter(announcement=item)
    assert sorted(r.user.email for r in receipts) == [
        "alice@example.com",
        "bob@example.com",
        "charlie@example.com",
    ]
    with pytest.raises(tickets.TicketError, match="already sent"):
        announcements.send(item, actor=cast.owner)
    alice = receipts.get(user=cast.alice)
    client.logout()
    assert (
        "Reminder: support covers"
        in client.get(reverse("support:announcement_read", args=[alice.token])).content.decode()
    )
    client.force_login(cast.owner)
    page = client.get(reverse("support:announcement", args=[item.pk])).content.decode()
    assert "Read by 1 of 3" in page
    product_only = Announcement.objects.create(
        title="Greeter 1.1", body="x", audience="product", product_id=installed().version.product_id
    )
    assert announcements.send(product_only, actor=cast.owner) == 2  # Alice and Bob use Greeter


def test_ending_a_relationship(client, cast, installed):
    instance = installed()
    client.force_login(cast.staff)
    url = reverse("support:end_relationship", args=[cast.alice.account.pk])
    assert client.post(url, {"message": "Bye", "confirm_name": "wrong"}).status_code == 400
    client.post(
        url,
        {
            "message": "We end our cooperation; export your data.",
            "confirm_name": cast.alice.account.name,
        },
    )
    cast.alice.account.refresh_from_db()
    assert cast.alice.account.status == "closed"
    assert instance.subscription.__class__.objects.get(instance=instance).cancel_at_period_end
    client.force_login(cast.alice)
    assert "We end our cooperation" in client.get(reverse("support:new")).content.decode()
    export = client.get(reverse("support:export"))
    assert export["Content-Type"] == "application/zip"


def test_tickets_by_telegram(cast, department):
    from otomat.support.telegram import handle_message

    assert "opened" in handle_message(cast.alice, "/new Bot is slow\nSince yesterday")
    ticket = Ticket.objects.get()
    assert ticket.channel == "telegram" and ticket.subject == "Bot is slow"
    assert "Added to" in handle_message(cast.alice, "Still slow")
    assert ticket.messages.count() == 2
    assert "no ticket" in handle_message(cast.charlie, f"{ticket.number} let me in")
    assert ticket.messages.count() == 2
    assert ticket.number in handle_message(cast.bob, "/tickets")


def test_the_ticket_page_speaks_to_whoever_reads_it(
    client, cast, department, sla_policy, installed
):
    ticket = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Change the welcome text",
        body="Please",
        instance=installed(),
    )
    tickets.staff_reply(ticket, staff=cast.staff, body="Which text?")
    page = reverse("support:ticket", args=[ticket.number])
    tickets.open_ticket(
        account=cast.alice.account, requester=cast.bob, subject="Another question", body="?"
    )
    client.force_login(cast.alice)
    customer_view = client.get(page).content.decode()
    assert "The clock is paused while we wait for you." in customer_view
    assert "Earlier tickets of your company" in customer_view
    client.force_login(cast.staff)
    staff_view = client.get(page).content.decode()
    assert "The clock is paused while we wait for the customer." in staff_view
    assert "Earlier tickets of this customer" in staff_view
    # The history names who acted, and nobody for what the system did.
    history = staff_view[staff_view.index("timeline") :]
    assert '<span class="muted">— </span>' not in history
    assert f'<span class="muted">— {cast.staff.email}</span>' in history
