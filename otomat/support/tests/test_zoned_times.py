"""SLA deadlines read in the reader's time zone with the zone named, on the customer's and
staff's ticket pages and the support workload, and dates in the locale's medium format
(never "08/18/2026")."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from otomat.support import tickets

JAKARTA = ZoneInfo("Asia/Jakarta")


def _text(response) -> str:
    assert response.status_code == 200
    return response.content.decode().replace("\u202f", " ").replace("\xa0", " ")


@pytest.fixture
def ticket(cast, department, sla_policy, installed):
    instance = installed()
    # Friday 14 August 2026, 15:00 in Jakarta: the first answer is due Tue 18 Aug 15:00 WIB
    # (08:00 UTC), the resolution Thu 20 Aug 15:00 WIB.
    with time_machine.travel(datetime(2026, 8, 14, 15, tzinfo=JAKARTA), tick=False):
        return tickets.open_ticket(
            account=cast.alice.account,
            requester=cast.alice,
            subject="Bot is silent",
            body="It stopped answering.",
            instance=instance,
        )


def _living_in(user, zone, language="en"):
    user.timezone, user.language = zone, language
    user.save(update_fields=["timezone", "language"])
    return user


@pytest.mark.parametrize(
    ("language", "answer", "resolution"),
    [
        ("en", "Aug 18, 2026, 3:00 PM WIB", "Aug 20, 2026, 3:00 PM WIB"),
        ("id", "18 Agu 2026 15.00 WIB", "20 Agu 2026 15.00 WIB"),
        ("pl", "18 sie 2026, 15:00 WIB", "20 sie 2026, 15:00 WIB"),
    ],
)
def test_a_jakarta_customer_reads_the_deadlines_in_wib(
    client, cast, ticket, language, answer, resolution
):
    client.force_login(_living_in(cast.alice, "Asia/Jakarta", language))
    with time_machine.travel(datetime(2026, 8, 17, 9, tzinfo=JAKARTA), tick=False):
        page = _text(client.get(reverse("support:ticket", args=[ticket.number])))
    assert answer in page and resolution in page
    assert not re.search(r"\b\d{1,2}/\d{1,2}/\d{4}\b", page)  # no "08/18/2026"


def test_staff_read_the_deadline_in_their_own_zone(client, cast, ticket):
    client.force_login(_living_in(cast.staff, "UTC"))
    with time_machine.travel(datetime(2026, 8, 17, 9, tzinfo=JAKARTA), tick=False):
        page = _text(client.get(reverse("support:ticket", args=[ticket.number])))
    assert "Aug 18, 2026, 8:00 AM UTC" in page
    assert not re.search(r"\b\d{1,2}/\d{1,2}/\d{4}\b", page)


def test_the_workload_names_the_zone_of_each_deadline(client, cast, ticket):
    client.force_login(_living_in(cast.staff, "Asia/Jakarta"))
    with time_machine.travel(datetime(2026, 8, 18, 12, tzinfo=JAKARTA), tick=False):
        page = _text(client.get(reverse("support:workload")))
    assert ticket.number in page
    assert "Aug 18, 2026, 3:00 PM WIB" in page
    assert not re.search(r"\b\d{1,2}/\d{1,2}/\d{4}\b", page)


def test_a_zone_without_an_abbreviation_is_named():
    from django.utils import timezone

    from otomat.lib import dates

    moment = datetime(2026, 12, 5, 7, tzinfo=ZoneInfo("UTC"))
    with timezone.override(ZoneInfo("America/Sao_Paulo")):
        text = dates.zoned_datetime(moment).replace("\u202f", " ")
    assert text == "Dec 5, 2026, 4:00 AM America/Sao_Paulo"
    assert dates.zoned_datetime(None) == "" and dates.medium_date(None) == ""
