"""The scheduler's offer job: sent offers past their validity date become expired."""

import datetime as dt

from django.utils import timezone


def test_the_hourly_job_expires_offers_past_their_date(db, settings):
    from otomat.ops.scheduler import jobs
    from otomat.projects.offers.models import Offer
    from otomat.projects.offers.tasks import expire_offers_task

    assert "offers-expire" in {name for name, _task, _trigger in jobs()}
    today = timezone.now().date()
    old = Offer.objects.create(
        number="O-T1",
        title="Old",
        currency="PLN",
        status="sent",
        valid_until=today - dt.timedelta(days=1),
    )
    fresh = Offer.objects.create(
        number="O-T2",
        title="Fresh",
        currency="PLN",
        status="sent",
        valid_until=today + dt.timedelta(days=5),
    )
    assert expire_offers_task.call() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, fresh.status) == ("expired", "sent")
