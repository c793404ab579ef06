"""The booking API: meeting types and slots, booking for the token's person, their bookings
only; bad input is a 400/422 that says what is wrong, a taken slot a 409."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine

from otomat.accounts.models import ApiToken
from otomat.projects.booking.models import Booking

WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY = date(2027, 1, 11)
NOW = datetime(2027, 1, 8, 10, tzinfo=UTC)
BASE = "/api/v1/projects/booking"


def at(hour, minute=0):
    return datetime.combine(MONDAY, time(hour, minute), tzinfo=WARSAW).astimezone(UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def token_for():
    def make(user):
        _row, token = ApiToken.issue(user, name="test")
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    return make


def test_types_and_slots(client, call, cast, token_for):
    headers = token_for(cast.alice)
    types = client.get(f"{BASE}/types?language=pl", **headers).json()
    assert types[0]["slug"] == "project-call" and types[0]["name"] == "Rozmowa o projekcie"
    body = client.get(
        f"{BASE}/types/project-call/slots?timezone=Asia/Jakarta&from=2027-01-11&days=1", **headers
    ).json()
    assert body["timezone"] == "Asia/Jakarta"
    first = body["slots"][0]
    assert first["local_start"] == "2027-01-11T15:00:00+07:00" and first["zone"] == "WIB"
    assert len(body["slots"]) == 15
    assert (
        client.get(
            f"{BASE}/types/project-call/slots",
        ).status_code
        == 401
    )


@pytest.mark.parametrize(
    "query, status",
    [
        ("timezone=Mars/Base", 400),
        ("from=2027-13-45", 400),
        ("days=0", 400),
        ("days=99", 400),
        ("days=abc", 422),
    ],
)
def test_bad_slot_queries(client, call, cast, token_for, query, status):
    assert (
        client.get(f"{BASE}/types/project-call/slots?{query}", **token_for(cast.alice)).status_code
        == status
    )


def test_booking_by_api_and_isolation(client, call, cast, token_for):
    alice = token_for(cast.alice)
    payload = {
        "meeting_type": "project-call",
        "start": at(10).isoformat(),
        "name": "Alice",
        "email": "alice@example.com",
        "timezone": "Europe/Warsaw",
    }
    made = client.post(f"{BASE}/bookings", payload, content_type="application/json", **alice)
    assert made.status_code == 201, made.content
    booking_id = made.json()["id"]
    assert Booking.objects.get(pk=booking_id).account == cast.alice.account
    again = client.post(f"{BASE}/bookings", payload, content_type="application/json", **alice)
    assert again.status_code == 409 and "no longer free" in again.json()["detail"]
    charlie = token_for(cast.charlie)
    assert client.get(f"{BASE}/bookings", **charlie).json() == []
    assert client.get(f"{BASE}/bookings/{booking_id}", **charlie).status_code == 404
    assert client.post(f"{BASE}/bookings/{booking_id}/cancel", **charlie).status_code == 404
    assert [b["id"] for b in client.get(f"{BASE}/bookings", **token_for(cast.bob)).json()] == [
        booking_id
    ]
    assert client.get(f"{BASE}/bookings/{booking_id}", **token_for(cast.staff)).status_code == 200
    cancelled = client.post(f"{BASE}/bookings/{booking_id}/cancel", **alice)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    "changes, status",
    [
        ({"meeting_type": "nope"}, 404),
        ({"start": "2027-01-11T10:10:00+01:00"}, 409),
        ({"start": "2027-01-11T10:00:00"}, 400),
        ({"start": "soon"}, 422),
        ({"email": "x"}, 400),
        ({"name": ""}, 400),
        ({"name": "a\u0000b"}, 422),
        ({"timezone": "Nowhere"}, 400),
        ({"lead": "unknown"}, 400),
        ({"message": "m" * 5000}, 422),
    ],
)
def test_bad_bookings_change_nothing(client, call, cast, token_for, changes, status):
    payload = {
        "meeting_type": "project-call",
        "start": at(10).isoformat(),
        "name": "Alice",
        "email": "alice@example.com",
        **changes,
    }
    response = client.post(
        f"{BASE}/bookings", payload, content_type="application/json", **token_for(cast.alice)
    )
    assert response.status_code == status, response.content
    assert "detail" in response.json()
    assert Booking.objects.count() == 0


def test_another_accounts_lead_token_is_refused(client, call, cast, token_for):
    from otomat.projects.models import Lead

    lead = Lead.objects.create(
        name="C", email="c@example.com", source="manual", account=cast.charlie.account
    )
    payload = {
        "meeting_type": "project-call",
        "start": at(10).isoformat(),
        "name": "Alice",
        "email": "alice@example.com",
        "lead": lead.token,
    }
    assert (
        client.post(
            f"{BASE}/bookings", payload, content_type="application/json", **token_for(cast.alice)
        ).status_code
        == 400
    )
