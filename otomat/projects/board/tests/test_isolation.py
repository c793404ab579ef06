"""One client never sees another's projects, cards or comments: every page, action and API
endpoint answers 404 for them, exactly like a missing one, and changes nothing."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from otomat.accounts.models import ApiToken
from otomat.projects.board import services
from otomat.projects.board.models import CardEvent


@pytest.fixture
def api(client, cast):
    tokens = {
        name: ApiToken.issue(getattr(cast, name), "tests")[1]
        for name in ("alice", "bob", "charlie", "staff")
    }

    def call(who, method, path, body=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {tokens[who]}"}
        if body is not None:
            kwargs |= {"data": json.dumps(body), "content_type": "application/json"}
        return getattr(client, method)(f"/api/v1/projects/board{path}", **kwargs)

    return call


def test_another_client_gets_404_on_every_page_and_action(client, project, on_staging, cast):
    services.comment(on_staging, author=cast.alice, body="Private words")
    client.force_login(cast.charlie)
    listing = client.get(reverse("board:list")).content.decode()
    assert "Cottage booking site" not in listing
    for name, args in [
        ("board:project", [project.pk]),
        ("board:card", [on_staging.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 404
    for name in ("board:comment", "board:accept", "board:change"):
        response = client.post(reverse(name, args=[on_staging.pk]), {"body": "mine now"})
        assert response.status_code == 404, name
    # Staff actions are 404 for every client, Alice included.
    client.force_login(cast.alice)
    for name, args in [
        ("board:status", [on_staging.pk]),
        ("board:time", [on_staging.pk]),
        ("board:card_edit", [on_staging.pk]),
        ("board:card_add", [project.pk]),
        ("board:release_new", [project.pk]),
        ("board:product", [project.pk]),
    ]:
        assert client.post(reverse(name, args=args), {"status": "todo"}).status_code == 404
    on_staging.refresh_from_db()
    assert on_staging.status == "staging" and on_staging.accepted_at is None
    assert CardEvent.objects.filter(kind="comment").count() == 1


def test_another_client_gets_404_in_the_api(api, project, card, cast):
    services.comment(card, author=cast.staff, body="Internal", internal=True)
    assert api("charlie", "get", "/projects").json() == []
    assert api("charlie", "get", f"/projects/{project.pk}").status_code == 404
    assert api("charlie", "get", f"/projects/{project.pk}/cards").status_code == 404
    assert api("charlie", "get", f"/cards/{card.pk}").status_code == 404
    response = api("charlie", "post", f"/cards/{card.pk}/comments", {"body": "hi"})
    assert response.status_code == 404
    assert api("charlie", "post", f"/cards/{card.pk}/accept").status_code == 404
    # Alice's teammate sees it, without the internal note.
    seen = api("bob", "get", f"/cards/{card.pk}").json()
    assert seen["reference"] == card.reference
    assert all(e["kind"] != "note" for e in seen["events"])
    assert any(
        e["kind"] == "note" for e in api("staff", "get", f"/cards/{card.pk}").json()["events"]
    )
