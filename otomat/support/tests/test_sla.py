"""An SLA clock across a weekend and a public holiday, with time moved: it warns, escalates
and breaches at the right business minute, pauses while the ticket waits on the customer, and
each stage is recorded and notified once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from otomat.notify.models import Notification
from otomat.support import sla, tickets
from otomat.support.models import Ticket, TicketEvent

pytestmark = pytest.mark.smoke


def jakarta(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Jakarta in August 2026, as UTC (Jakarta is UTC+7, no DST)."""
    return datetime(2026, 8, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def scan_at(moment):
    with time_machine.travel(moment, tick=False):
        return sla.scan()


def stages(ticket):
    return list(
        TicketEvent.objects.filter(ticket=ticket, kind__startswith="sla_").values_list(
            "kind", "detail", "at"
        )
    )


def test_the_clock_counts_business_hours_across_a_weekend_and_a_holiday(
    cast, department, sla_policy, installed
):
    instance = installed()
    # Friday 14 August 2026, 15:00 in Jakarta: two business hours left that day.
    opened = jakarta(14, 15)
    with time_machine.travel(opened, tick=False):
        ticket = tickets.open_ticket(
            account=cast.alice.account,
            requester=cast.alice,
            subject="Bot is silent",
            body="It stopped answering.",
            instance=instance,
        )
    # First response: 8 business hours = Fri 15–17 (2 h), then Saturday, Sunday and Monday
    # 17 August (Independence Day) are closed, Tue 18 Aug 09:00–15:00 (6 h).
    assert ticket.response_due == jakarta(18, 15)
    # Resolution: 24 business hours = Fri 2 h + Tue 8 h + Wed 8 h + Thu 6 h → Thu 20 Aug 15:00.
    assert ticket.resolution_due == jakarta(20, 15)
    # 75 % of 8 h = 6 h: Tue 13:00 — nothing before it, however often the scan runs.
    assert scan_at(jakarta(17, 23)) == 0  # the holiday passes without a warning
    assert scan_at(jakarta(18, 12, 59)) == 0
    assert scan_at(jakarta(18, 13)) == 1
    assert scan_at(jakarta(18, 13, 30)) == 0  # once
    # 90 %: 7 h 12 min → Tue 14:12, escalated to the owner; 100 % → breach at 15:00.
    assert scan_at(jakarta(18, 14, 12)) == 1
    assert scan_at(jakarta(18, 15)) == 1
    ticket.refresh_from_db()
    assert ticket.first_response_breached
    kinds = [k for k, _detail, _at in stages(ticket)]
    assert kinds == ["sla_warn", "sla_escalate", "sla_breach"]
    assert [at for _k, _d, at in stages(ticket)] == [
        jakarta(18, 13),
        jakarta(18, 14, 12),
        jakarta(18, 15),
    ]
    # The owner hears of every stage; staff (no assignee yet: all staff) of the warning.
    owner_notices = Notification.objects.filter(user=cast.owner, kind="support/sla")
    assert sorted(owner_notices.values_list("context__stage", flat=True)) == [
        "breach",
        "escalate",
        "warn",
    ]
    assert not Notification.objects.filter(
        user=cast.staff, kind="support/sla", context__stage="breach"
    ).exists()
    warnings = Notification.objects.filter(kind="support/sla", context__stage="warn")
    assert set(warnings.values_list("user__email", flat=True)) == {
        "staff@example.com",
        "owner@example.com",
    }


def test_the_resolution_clock_pauses_while_waiting_on_the_customer(
    cast, department, sla_policy, installed
):
    instance = installed()
    with time_machine.travel(jakarta(19, 9), tick=False):  # Wednesday 09:00
        ticket = tickets.open_ticket(
            account=cast.alice.account,
            requester=cast.alice,
            subject="Change welcome text",
            body="Please",
            instance=instance,
        )
    assert ticket.resolution_due == jakarta(21, 17)  # 24 business hours: Wed, Thu, Fri
    # Staff answer Wednesday 11:00 and wait for the customer: 2 business hours used.
    with time_machine.travel(jakarta(19, 11), tick=False):
        tickets.staff_reply(ticket, staff=cast.staff, body="Which text?")
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.PENDING
    assert ticket.resolution_due is None and ticket.resolution_used_seconds == 2 * 3600
    assert ticket.first_response_at == jakarta(19, 11) and not ticket.first_response_breached
    # Nothing can warn or breach while paused, even far past the original due time.
    assert scan_at(jakarta(26, 12)) == 0
    # The customer answers the next Monday 24 Aug 10:00: 22 business hours are left.
    with time_machine.travel(jakarta(24, 10), tick=False):
        tickets.customer_message(ticket, author=cast.bob, body="This one: Halo!")
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN
    # Mon 7 h, Tuesday 25 August is the Prophet's Birthday (closed), Wed 8 h, Thu 7 h.
    assert ticket.resolution_due == jakarta(27, 16)
    assert ticket.response_target == "next" and ticket.response_due == jakarta(26, 10)
    with time_machine.travel(jakarta(24, 11), tick=False):
        tickets.staff_reply(ticket, staff=cast.staff, body="Done.", status=Ticket.Status.RESOLVED)
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED and not ticket.resolution_breached
    assert ticket.resolution_used_seconds == 3 * 3600
    assert ticket.sla_check_at is None
    assert scan_at(jakarta(31, 12)) == 0


def test_a_priority_change_moves_the_targets(cast, department, sla_policy, installed):
    from otomat.support.models import SlaPolicy

    SlaPolicy.objects.create(
        name="High",
        priority="high",
        first_response_minutes=60,
        next_response_minutes=60,
        resolution_minutes=8 * 60,
    )
    instance = installed()
    with time_machine.travel(jakarta(19, 9), tick=False):
        ticket = tickets.open_ticket(
            account=cast.alice.account,
            requester=cast.alice,
            subject="Down",
            body="!",
            instance=instance,
        )
    with time_machine.travel(jakarta(19, 9, 30), tick=False):
        tickets.set_priority(ticket, "high", actor=cast.staff)
    ticket.refresh_from_db()
    assert ticket.response_due == jakarta(19, 10)
    assert ticket.resolution_due == jakarta(19, 17)
    assert TicketEvent.objects.filter(ticket=ticket, kind="priority").exists()


def test_moving_to_another_department_uses_its_hours(cast, department, sla_policy, installed):
    from otomat.support.models import Department

    night = Department.objects.create(
        name="Night shift", slug="night", hours={"mon-sun": "00:00-24:00"}, timezone="Asia/Jakarta"
    )
    with time_machine.travel(jakarta(21, 16), tick=False):  # Friday 16:00
        ticket = tickets.open_ticket(
            account=cast.alice.account, requester=cast.alice, subject="Q", body="?"
        )
    assert ticket.response_due == jakarta(24, 16)  # Fri 1 h, Mon 09–16 (7 h)
    with time_machine.travel(jakarta(21, 17), tick=False):
        tickets.set_department(ticket, night, actor=cast.staff)
    ticket.refresh_from_db()
    assert ticket.response_due == jakarta(22, 0)  # around the clock: 8 h after Fri 16:00
    assert TicketEvent.objects.filter(ticket=ticket, kind="department").exists()
