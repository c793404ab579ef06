"""Support through the REST API: open, read, reply and resolve tickets; another account's
ticket is a 404; internal notes never reach customers; bad bodies get clear 400s."""

from __future__ import annotations

import json

import pytest

from otomat.accounts.models import ApiToken
from otomat.support.models import Ticket

pytestmark = pytest.mark.smoke


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
        return getattr(client, method)(f"/api/v1/support{path}", **kwargs)

    return call


def test_tickets_through_the_api(api, cast, department, sla_policy, installed):
    instance = installed()
    response = api(
        "alice",
        "post",
        "/tickets",
        {
            "subject": "Change text",
            "body": "Please",
            "kind": "change",
            "instance": str(instance.id),
        },
    )
    assert response.status_code == 201, response.content
    ticket = response.json()
    assert ticket["counts_as_revision"] and ticket["entitlement"]["revisions_used"] == 1
    number = ticket["number"]
    staff = api("staff", "post", f"/tickets/{number}/messages", {"body": "Which text?"})
    assert staff.json()["status"] == "pending"
    api(
        "staff",
        "post",
        f"/tickets/{number}/messages",
        {"body": "Customer is picky", "internal": True},
    )
    seen = api("bob", "get", f"/tickets/{number}").json()  # a teammate shares the history
    assert [m["body"] for m in seen["messages"]] == ["Please", "Which text?"]
    assert len(api("staff", "get", f"/tickets/{number}").json()["messages"]) == 3
    answer = api("alice", "post", f"/tickets/{number}/messages", {"body": "The welcome text"})
    assert answer.json()["status"] == "open"
    assert (
        api("alice", "post", f"/tickets/{number}/status", {"status": "resolved"}).json()["status"]
        == "resolved"
    )
    assert [t["number"] for t in api("alice", "get", "/tickets").json()] == [number]


def test_isolation_and_bad_input(api, cast, department, installed):
    instance = installed()
    number = api("alice", "post", "/tickets", {"subject": "Mine", "body": "x"}).json()["number"]
    assert api("charlie", "get", f"/tickets/{number}").status_code == 404
    assert api("charlie", "post", f"/tickets/{number}/messages", {"body": "hi"}).status_code == 404
    assert api("charlie", "get", "/tickets").json() == []
    bad = api(
        "charlie", "post", "/tickets", {"subject": "x", "body": "y", "instance": str(instance.id)}
    )
    assert bad.status_code == 400 and "Unknown instance" in bad.json()["detail"]
    assert api("alice", "post", "/tickets", {"subject": " ", "body": "y"}).status_code == 400
    assert (
        api("alice", "post", "/tickets", {"subject": "s", "body": "y", "kind": "hack"}).status_code
        == 400
    )
    assert (
        api(
            "alice", "post", f"/tickets/{number}/messages", {"body": "x", "internal": True}
        ).status_code
        == 400
    )
    assert (
        api("alice", "post", f"/tickets/{number}/status", {"status": "closed"}).status_code == 400
    )
    weird = api("alice", "get", "/tickets?status=weird")
    assert (
        weird.status_code == 400
        and "Unknown status 'weird'; one of open, pending," in weird.json()["detail"]
    )
    assert api("alice", "get", "/tickets?limit=201").status_code == 400
    assert [t["number"] for t in api("alice", "get", "/tickets?limit=1").json()] == [number]
    assert api("alice", "get", "/tickets?offset=1").json() == []
    assert Ticket.objects.count() == 1
