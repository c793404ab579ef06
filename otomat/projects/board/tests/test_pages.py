"""The board's pages: the client reads their projects and board (columns, or a list on a
phone), answers on a card (HTMX too), accepts on staging and asks for changes; staff edit the
board, log time, schedule releases, start projects by hand or from an accepted offer. Bad form
input gets a clear message and changes nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from otomat.projects.board import services
from otomat.projects.board.models import Card, Project, Release, TimeEntry


def test_the_client_reads_their_board(client, project, on_staging, cast):
    client.force_login(cast.bob)
    listing = client.get(reverse("board:list")).content.decode()
    assert "Cottage booking site" in listing
    board = client.get(reverse("board:project", args=[project.pk])).content.decode()
    assert "Sync the calendar" in board and "Your move" in board
    assert "0 of 2 used" in board
    assert "40–60" not in board  # time against the estimate is for staff
    as_list = client.get(reverse("board:project", args=[project.pk]), {"view": "list"})
    assert "<table" in as_list.content.decode()
    page = client.get(reverse("board:card", args=[on_staging.pk])).content.decode()
    assert "https://staging.example.com/calendar" in page
    assert reverse("board:accept", args=[on_staging.pk]) in page
    assert reverse("board:status", args=[on_staging.pk]) not in page  # no staff controls


def test_the_client_answers_accepts_and_asks_for_a_change(client, on_staging, cast):
    client.force_login(cast.alice)
    url = reverse("board:comment", args=[on_staging.pk])
    response = client.post(url, {"body": "Looks right"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Looks right" in response.content.decode()
    response = client.post(url, {"body": "  "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "Write something" in response.content.decode()
    response = client.post(url, {"body": "secret", "internal": "1"})  # not a note for clients
    assert on_staging.events.filter(kind="note").count() == 0
    response = client.post(reverse("board:accept", args=[on_staging.pk]), follow=True)
    assert "Accepted. We will schedule" in response.content.decode()
    response = client.post(
        reverse("board:change", args=[on_staging.pk]), {"body": "Make it blue"}, follow=True
    )
    assert "Change requested (1 of 2 used)" in response.content.decode()
    response = client.post(reverse("board:change", args=[on_staging.pk]), {"body": ""}, follow=True)
    assert "Write something first" in response.content.decode()
    assert Card.objects.filter(is_change_request=True).count() == 1


def test_staff_edit_the_board_and_log_time(client, project, card, cast):
    client.force_login(cast.staff)
    page = client.get(reverse("board:project", args=[project.pk])).content.decode()
    assert "0 h of 40–60 h" in page
    response = client.post(
        reverse("board:card_add", args=[project.pk]), {"title": "Payments"}, follow=True
    )
    assert "Card added." in response.content.decode()
    response = client.post(
        reverse("board:status", args=[card.pk]), {"status": "blocked"}, follow=True
    )
    assert "technical or communication" in response.content.decode()
    card.refresh_from_db()
    assert card.status == "todo"
    client.post(
        reverse("board:status", args=[card.pk]),
        {"status": "blocked", "reason": "communication", "note": "No answer since Monday"},
    )
    card.refresh_from_db()
    assert (card.status, card.whose_move) == ("blocked", "client")
    response = client.post(
        reverse("board:time", args=[card.pk]),
        {"hours": "2", "minutes": "30", "date": dt.date.today().isoformat(), "note": "Sync"},
        follow=True,
    )
    assert "Time logged." in response.content.decode()
    assert TimeEntry.objects.get().minutes == 150
    for bad in ({"hours": "x"}, {"hours": "0", "minutes": "0"}, {"hours": "1", "date": "soon"}):
        response = client.post(reverse("board:time", args=[card.pk]), bad, follow=True)
        assert 'class="message message-error"' in response.content.decode(), bad
    assert TimeEntry.objects.count() == 1
    page = client.get(reverse("board:card", args=[card.pk])).content.decode()
    assert "2.5 h of 40–60 h" in page
    response = client.post(
        reverse("board:card_edit", args=[card.pk]),
        {"title": "Sync", "staging_url": "ftp://x"},
        follow=True,
    )
    assert "http(s)" in response.content.decode()


def test_staff_schedule_a_release_from_the_page(client, project, accepted, cast):
    client.force_login(cast.staff)
    form = client.get(reverse("board:release_new", args=[project.pk])).content.decode()
    assert accepted.title in form
    response = client.post(
        reverse("board:release_new", args=[project.pk]), {"scheduled_for": "tomorrow"}
    )
    assert response.status_code == 400 and "Choose the release date" in response.content.decode()
    response = client.post(
        reverse("board:release_new", args=[project.pk]), {"scheduled_for": "2020-01-01"}
    )
    assert response.status_code == 400 and "passed" in response.content.decode()
    assert not Release.objects.exists()
    day = dt.date.today() + dt.timedelta(days=3)
    response = client.post(
        reverse("board:release_new", args=[project.pk]),
        {"scheduled_for": day.isoformat(), "cards": [accepted.pk]},
        follow=True,
    )
    assert "the client has been told" in response.content.decode()
    client.force_login(cast.alice)
    board = client.get(reverse("board:project", args=[project.pk])).content.decode()
    assert 'id="release-date">not scheduled yet' not in board
    assert Project.objects.get(pk=project.pk).release_date == day


def test_a_project_by_hand_with_bad_input_refused(client, cast):
    client.force_login(cast.staff)
    url = reverse("board:new")
    assert client.get(url).status_code == 200
    bad = [
        {"account": "", "title": "X"},
        {"account": cast.alice.account.pk, "title": ""},
        {"account": cast.alice.account.pk, "title": "X", "revision_quota": "many"},
        {
            "account": cast.alice.account.pk,
            "title": "X",
            "revision_quota": "2",
            "hours_min": "9",
            "hours_max": "3",
        },
        {"account": cast.alice.account.pk, "title": "X", "revision_quota": "2", "hours_min": "NaN"},
    ]
    for data in bad:
        assert client.post(url, data).status_code == 400, data
    assert not Project.objects.exists()
    response = client.post(
        url,
        {
            "account": cast.alice.account.pk,
            "title": "Allegro integration",
            "revision_quota": "3",
            "hours_min": "80",
            "hours_max": "120",
            "milestones": "Import\nOrders",
        },
        follow=True,
    )
    assert "Project started." in response.content.decode()
    project = Project.objects.get()
    assert (project.revision_quota, project.hours_min, project.hours_max) == (
        3,
        Decimal("80.0"),
        Decimal("120.0"),
    )
    assert list(project.milestones.values_list("title", flat=True)) == ["Import", "Orders"]


def test_a_project_from_an_accepted_offer(client, cast):
    from otomat.projects.offers import services as offers
    from otomat.projects.offers.validation import LineIn, MilestoneIn, OfferIn

    offer = offers.create_offer(
        OfferIn(
            title="Allegro integration",
            currency="PLN",
            language="pl",
            valid_until=dt.date.today() + dt.timedelta(days=30),
            revision_rounds=3,
            lines=(
                LineIn(
                    title="Import",
                    kind="range",
                    cost_min_minor=500_000,
                    cost_max_minor=800_000,
                    weeks_min=Decimal(2),
                    weeks_max=Decimal(3),
                ),
                LineIn(
                    title="Orders",
                    kind="range",
                    cost_min_minor=300_000,
                    cost_max_minor=500_000,
                    weeks_min=Decimal(1),
                    weeks_max=Decimal("1.5"),
                ),
            ),
            milestones=(MilestoneIn(title="Import live"), MilestoneIn(title="Orders live")),
        ),
        actor=cast.staff,
        account=cast.alice.account,
    )
    client.force_login(cast.staff)
    response = client.post(reverse("board:from_offer", args=[offer.pk]), follow=True)
    assert "not accepted yet" in response.content.decode()
    assert not Project.objects.exists()
    offers.send_offer(offer, actor=cast.staff)
    offer.refresh_from_db()
    offers.accept_offer(offer, version=offer.version, actor=cast.alice)
    offer.refresh_from_db()
    response = client.post(reverse("board:from_offer", args=[offer.pk]), follow=True)
    assert "The board of the offer is ready." in response.content.decode()
    project = Project.objects.get()
    assert (project.offer, project.account, project.revision_quota) == (
        offer,
        cast.alice.account,
        3,
    )
    assert (project.weeks_min, project.weeks_max) == (Decimal(3), Decimal("4.5"))
    assert (project.hours_min, project.hours_max) == (Decimal(120), Decimal(180))
    assert list(project.milestones.values_list("title", flat=True)) == [
        "Import live",
        "Orders live",
    ]
    # Again: the same project.
    assert services.start_project_from_offer(offer, actor=cast.staff) == project
    assert client.post(reverse("board:from_offer", args=[99999])).status_code == 404


@pytest.mark.parametrize("name", ["board:workshop", "board:new"])
def test_staff_pages_are_404_for_clients(client, cast, name):
    client.force_login(cast.alice)
    assert client.get(reverse(name)).status_code == 404


def test_staff_quote_a_change_past_the_quota_from_the_card(client, project, accepted, cast):
    from otomat.projects.board import revisions
    from otomat.support.models import Quote

    Project.objects.filter(pk=project.pk).update(revisions_used=2)
    revision = revisions.request_change(accepted, user=cast.alice, body="A second calendar")
    client.force_login(cast.staff)
    page = client.get(reverse("board:card", args=[revision.card_id])).content.decode()
    assert "Paid quote for this change" in page and revision.ticket.number in page
    url = reverse("board:quote", args=[revision.card_id])
    for bad in (
        {"price": "lots", "days": "3"},
        {"price": "100", "days": "0"},
        {"price": "-5", "days": "2"},
    ):
        response = client.post(url, bad, follow=True)
        assert 'class="message message-error"' in response.content.decode(), bad
    assert not Quote.objects.exists()
    response = client.post(url, {"price": "1500.50", "days": "4"}, follow=True)
    assert f"Quote sent on ticket {revision.ticket.number}" in response.content.decode()
    assert Quote.objects.get().price_minor == 150_050
    # Another card (no change past the quota) has no quote to send.
    assert (
        client.post(reverse("board:quote", args=[accepted.pk]), {"price": "1"}).status_code == 404
    )


def test_finish_and_product_buttons(client, project, card, cast):
    client.force_login(cast.staff)
    response = client.post(reverse("board:product", args=[project.pk]), follow=True)
    assert "Only a finished project" in response.content.decode()
    response = client.post(reverse("board:finish", args=[project.pk]), follow=True)
    assert "not released yet" in response.content.decode()
    Card.objects.filter(pk=card.pk).update(status="released", whose_move="")
    client.post(reverse("board:finish", args=[project.pk]))
    response = client.post(reverse("board:product", args=[project.pk]), follow=True)
    assert "Draft product “Cottage booking site” created" in response.content.decode()
    assert client.post(reverse("board:release_action", args=[1, "explode"])).status_code == 404
