"""The weekly workshop: per client, what waits on them, on us, and what is blocked (with the
reason and since when), sortable, with counts. Time against the estimate. A finished project
becomes a draft catalog product."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine
from django.urls import reverse

from otomat.catalog.models import Product
from otomat.projects.board import products, releases, services, workshop
from otomat.projects.board.services import BoardError
from otomat.projects.board.tests.conftest import T0


@pytest.fixture
def busy(project, card, outsider_project, cast):
    """Alice: one card waiting on her (since day 1), one on us, one blocked; Charlie: one."""
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        services.set_status(card, "waiting_client", actor=cast.staff)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        ours = services.add_card(project, title="Payment gateway", actor=cast.staff)
        blocked = services.add_card(project, title="Allegro import", actor=cast.staff)
        services.set_status(
            blocked, "blocked", reason="technical", note="No sandbox access", actor=cast.staff
        )
        services.add_card(outsider_project, title="Charlie's menu", actor=cast.staff)
    return {"waiting": card, "ours": ours, "blocked": blocked}


def test_the_review_groups_every_clients_cards(busy, cast):
    rows = workshop.review()
    by_account = {row.account.name: row for row in rows}
    alice = by_account["Alice's Bots"]
    assert [c.title for c in alice.waiting_on_client] == ["Sync the calendar"]
    assert [c.title for c in alice.waiting_on_us] == ["Payment gateway"]
    assert [c.title for c in alice.blocked] == ["Allegro import"]
    assert alice.counts == {"client": 1, "us": 1, "blocked": 1}
    assert by_account["Charlie Corp"].counts == {"client": 0, "us": 1, "blocked": 0}
    assert workshop.totals(rows) == {"client": 1, "us": 2, "blocked": 1}
    assert rows[0].account.name == "Alice's Bots"  # most waiting on us first


def test_the_review_page_shows_reasons_and_since_and_sorts(client, busy, cast):
    client.force_login(cast.staff)
    page = client.get(reverse("board:workshop")).content.decode()
    assert "Alice&#x27;s Bots" in page and "Charlie Corp" in page
    assert "No sandbox access" in page and "Technical" in page
    assert "1 on them · 1 on us · 1 blocked" in page
    assert 'datetime="2026-12-01T09:00:00+00:00"' in page  # waiting on the client since day 1
    one = client.get(reverse("board:workshop"), {"account": cast.alice.account.pk, "sort": "title"})
    assert "Charlie Corp" not in one.content.decode()
    # A bad sort falls back to the default; a bad account is a 404; clients never see it.
    assert client.get(reverse("board:workshop"), {"sort": "'; drop"}).status_code == 200
    assert client.get(reverse("board:workshop"), {"account": "x"}).status_code == 404
    client.force_login(cast.alice)
    assert client.get(reverse("board:workshop")).status_code == 404


def test_time_is_tracked_against_the_estimate(project, card, cast):
    assert services.time_summary(project)["text"] == "0 h of 40–60 h"
    for day in (18, 19, 20):
        services.log_time(card, staff=cast.staff, minutes=10 * 60, day=date(2026, 11, day))
    services.log_time(card, staff=cast.staff, minutes=120, note="Sync tests")
    summary = services.time_summary(project)
    assert (summary["text"], summary["state"]) == ("32 h of 40–60 h", "under")
    services.log_time(card, staff=cast.staff, minutes=24 * 60)
    services.log_time(card, staff=cast.staff, minutes=24 * 60 - 30)
    assert services.time_summary(project)["text"] == "79.5 h of 40–60 h"
    assert services.time_summary(project)["state"] == "over"


def test_bad_time_entries_are_refused(card, cast):
    for minutes in (0, -5, 24 * 60 + 1, "60", 1.5, True):
        with pytest.raises(BoardError, match="Minutes"):
            services.log_time(card, staff=cast.staff, minutes=minutes)
    with pytest.raises(BoardError, match="not come yet"):
        services.log_time(card, staff=cast.staff, minutes=60, day=date.today() + timedelta(days=2))
    with pytest.raises(BoardError, match="Only staff"):
        services.log_time(card, staff=cast.alice, minutes=60)
    assert not card.time_entries.exists()


def test_a_finished_project_becomes_a_draft_product(project, accepted, cast):
    with pytest.raises(BoardError, match="Only a finished project"):
        products.product_from_project(project, actor=cast.staff)
    with pytest.raises(BoardError, match="not released"):
        services.finish_project(project, actor=cast.staff)
    release = releases.schedule_release(
        project, scheduled_for=date.today() + timedelta(days=1), actor=cast.staff
    )
    releases.mark_released(release, actor=cast.staff)
    services.finish_project(project, actor=cast.staff)
    Product.objects.create(slug="cottage-booking-site", name="Taken")
    with pytest.raises(BoardError, match="Only staff"):
        products.product_from_project(project, actor=cast.alice)
    product = products.product_from_project(project, actor=cast.staff)
    assert (product.slug, product.name, product.is_listed) == (
        "cottage-booking-site-2",
        "Cottage booking site",
        False,
    )
    assert "Booking calendar synced" in product.description
    assert "- Sync the calendar" in product.description
    assert not product.versions.exists()
    assert products.product_from_project(project, actor=cast.staff) == product
    project.refresh_from_db()
    assert project.product == product
