from datetime import UTC, datetime, timedelta

from otomat.projects.booking.availability import free_slots
from otomat.projects.booking.demo import seed_demo
from otomat.projects.booking.models import MeetingType, WeeklyHours


def test_the_demo_offers_a_week_of_warsaw_office_hours(cast):
    call = seed_demo()
    assert seed_demo() == call  # again: nothing new
    assert MeetingType.objects.count() == 1 and WeeklyHours.objects.count() == 5
    assert call.duration_minutes == 60 and call.text("name", "pl") == "Rozmowa o projekcie"
    monday = datetime(2027, 1, 11, tzinfo=UTC)
    slots = free_slots(call, monday, monday + timedelta(days=7), now=monday - timedelta(days=3))
    assert slots[0].start == datetime(2027, 1, 11, 8, tzinfo=UTC)  # 09:00 in Warsaw
    assert {s.start.weekday() for s in slots} == {0, 1, 2, 3, 4}
