"""The board's demo data: one project of the demo customer with a card in every state the
workshop shows; seeding twice changes nothing."""

from __future__ import annotations

from otomat.projects.board import demo, workshop
from otomat.projects.board.models import Card, Project


def test_the_demo_project_shows_every_state_once(cast):
    project = demo.seed_demo(customer_email=cast.alice.email)
    assert demo.seed_demo(customer_email=cast.alice.email) == project
    assert Project.objects.count() == 1
    statuses = set(project.cards.values_list("status", flat=True))
    assert {"staging", "waiting_client", "blocked", "in_progress", "accepted", "todo"} <= statuses
    assert Card.objects.filter(is_change_request=True).count() == 1
    project.refresh_from_db()
    assert project.revisions_used == 1
    row = workshop.review()[0]
    assert row.counts["blocked"] == 2 and row.counts["client"] == 2
    assert demo.seed_demo(customer_email="nobody@example.com") is None
