"""Demo data of booking: the owner hosts a 60-minute video call ("Project call") on Monday to
Friday, 09:00–17:00 Europe/Warsaw, 15 minutes between meetings, 12 hours' notice, Polish public
holidays off. Running it again changes nothing further. The lead engineer's ``otomat demo``
calls :func:`seed_demo` after the owner exists."""

from __future__ import annotations

from datetime import time

from django.db import transaction

from otomat.accounts.models import User
from otomat.projects.booking.models import Host, MeetingType, WeeklyHours

TYPE = {
    "slug": "project-call",
    "name": "Project call",
    "description": "A 60-minute video call about your project: we look at examples together "
    "and you get either an exact offer or a summary with time and cost ranges.",
    "translations": {
        "pl": {
            "name": "Rozmowa o projekcie",
            "description": "60-minutowa wideorozmowa o Twoim projekcie: razem oglądamy "
            "przykłady, a potem dostajesz dokładną ofertę albo podsumowanie z widełkami "
            "czasowymi i kosztowymi.",
        },
        "id": {
            "name": "Diskusi proyek",
            "description": "Panggilan video 60 menit tentang proyek Anda: kita melihat contoh "
            "bersama, lalu Anda menerima penawaran pasti atau ringkasan dengan kisaran waktu "
            "dan biaya.",
        },
    },
    "duration_minutes": 60,
    "slot_step_minutes": 30,
    "video_link_template": "https://meet.example.com/otomat-{token}",
    "cutoff_hours": 24,
}


@transaction.atomic
def seed_demo(owner: User | None = None) -> MeetingType | None:
    """The owner's host row, working hours and the project call; None without an owner."""
    owner = owner or User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if owner is None:
        return None
    host, created = Host.objects.get_or_create(
        user=owner,
        defaults={
            "timezone": "Europe/Warsaw",
            "buffer_after_minutes": 15,
            "min_notice_minutes": 12 * 60,
            "horizon_days": 60,
            "holiday_country": "PL",
        },
    )
    if created or not host.hours.exists():
        WeeklyHours.objects.bulk_create(
            [WeeklyHours(host=host, weekday=d, start=time(9), end=time(17)) for d in range(5)]
        )
    meeting_type, _ = MeetingType.objects.update_or_create(
        slug=TYPE["slug"], defaults={**{k: v for k, v in TYPE.items() if k != "slug"}, "host": host}
    )
    return meeting_type
