"""The board through the REST API: the client reads their projects and cards, comments and
accepts on staging; staff add cards and set statuses; bad bodies get clear errors."""

from __future__ import annotations

from otomat.projects.board.models import Card
from otomat.projects.board.tests.test_isolation import api  # noqa: F401  (the fixture)


def test_the_board_through_the_api(api, project, on_staging, cast):  # noqa: F811
    projects = api("alice", "get", "/projects").json()
    assert [p["title"] for p in projects] == ["Cottage booking site"]
    assert projects[0]["revisions"] == "0 of 2 used"
    assert projects[0]["time"] is None  # staff only
    assert api("staff", "get", f"/projects/{project.pk}").json()["time"] == "0 h of 40–60 h"
    cards = api("alice", "get", f"/projects/{project.pk}/cards", None).json()
    assert [(c["reference"], c["whose_move"]) for c in cards] == [(on_staging.reference, "client")]

    response = api("alice", "post", f"/cards/{on_staging.pk}/comments", {"body": "Looks good"})
    assert response.status_code == 201
    assert response.json()["events"][-1]["channel"] == "api"
    response = api("alice", "post", f"/cards/{on_staging.pk}/accept")
    assert response.status_code == 200 and response.json()["status"] == "accepted"

    created = api("staff", "post", f"/projects/{project.pk}/cards", {"title": "Payments"})
    assert created.status_code == 201
    card_id = created.json()["id"]
    blocked = api(
        "staff",
        "post",
        f"/cards/{card_id}/status",
        {"status": "blocked", "reason": "communication", "note": "Waiting for the contract"},
    ).json()
    assert (blocked["whose_move"], blocked["blocked_reason"]) == ("client", "communication")
    response = api("alice", "post", f"/cards/{on_staging.pk}/changes", {"body": "Bigger"})
    assert response.status_code == 201 and response.json()["title"].startswith("Change:")


def test_bad_api_input_is_refused_and_changes_nothing(api, project, card, cast):  # noqa: F811
    assert (
        api("staff", "post", f"/cards/{card.pk}/status", {"status": "blocked"}).status_code == 400
    )
    response = api("staff", "post", f"/cards/{card.pk}/status", {"status": "nope"})
    assert response.status_code == 400 and "Unknown status" in response.json()["detail"]
    assert api("alice", "post", f"/cards/{card.pk}/status", {"status": "todo"}).status_code == 403
    assert api("alice", "post", f"/projects/{project.pk}/cards", {"title": "x"}).status_code == 403
    assert api("alice", "post", f"/cards/{card.pk}/comments", {"body": ""}).status_code == 400
    assert api("alice", "post", f"/cards/{card.pk}/comments", {}).status_code == 422
    response = api("alice", "post", f"/cards/{card.pk}/comments", {"body": "x", "internal": True})
    assert response.status_code == 400 and "internal" in response.json()["detail"]
    assert api("alice", "post", f"/cards/{card.pk}/accept").status_code == 400
    assert api("alice", "get", "/cards/abc").status_code == 422
    assert api("alice", "get", "/cards/999999").status_code == 404
    card.refresh_from_db()
    assert card.status == "todo" and not card.events.exists()
    assert Card.objects.count() == 1
