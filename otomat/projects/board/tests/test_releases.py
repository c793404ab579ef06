"""The owner schedules a production release for a date: the client is told at once and reminded
the day before (in their own time zone, once), and sees the date on the board."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail

from otomat.notify.models import Notification
from otomat.notify.services import deliver_pending
from otomat.projects.board import releases, services
from otomat.projects.board.models import Card, Release
from otomat.projects.board.services import BoardError
from otomat.projects.board.tasks import remind_releases_task
from otomat.projects.board.tests.conftest import T0

FRIDAY = date(2026, 12, 4)


def test_a_release_is_announced_at_once_and_reminded_the_day_before(accepted, project, cast):
    with time_machine.travel(T0, tick=False):
        release = releases.schedule_release(
            project, scheduled_for=FRIDAY, note="Morning deploy", actor=cast.staff
        )
    project.refresh_from_db()
    assert project.release_date == FRIDAY
    assert list(release.cards.all()) == [accepted]
    assert release.notified_at == T0
    notice = Notification.objects.get(kind="board/release_scheduled", channel="email")
    assert notice.user == cast.alice
    assert "Cottage booking site" in notice.subject
    assert "Sync the calendar" in notice.body and "Morning deploy" in notice.body

    # Wednesday: too early. Thursday 10:00: the day before — reminded once, however often it runs.
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        assert releases.remind_releases() == 0
    with time_machine.travel(T0 + timedelta(days=3, hours=1), tick=False):
        assert remind_releases_task.enqueue().return_value == 1
        assert releases.remind_releases() == 0
    assert Notification.objects.filter(kind="board/release_reminder", user=cast.alice).count() == 1
    release.refresh_from_db()
    assert release.reminded_at == T0 + timedelta(days=3, hours=1)

    mail.outbox.clear()
    with time_machine.travel(T0 + timedelta(days=3, hours=1), tick=False):
        deliver_pending()
    subjects = [m.subject for m in mail.outbox]
    assert any("Tomorrow" in s for s in subjects)


def test_the_day_before_is_the_clients_day(accepted, project, cast):
    cast.alice.timezone = "Asia/Jakarta"  # UTC+7
    cast.alice.save()
    with time_machine.travel(T0, tick=False):
        releases.schedule_release(project, scheduled_for=FRIDAY, actor=cast.staff)
    # Wednesday 18:00 UTC is already Thursday 01:00 in Jakarta.
    with time_machine.travel(T0 + timedelta(days=2, hours=9), tick=False):
        assert releases.remind_releases() == 1


def test_releasing_marks_the_cards_released(accepted, project, cast):
    release = releases.schedule_release(
        project, scheduled_for=date.today() + timedelta(days=1), actor=cast.staff
    )
    releases.mark_released(release, actor=cast.staff)
    accepted.refresh_from_db()
    project.refresh_from_db()
    assert (accepted.status, accepted.whose_move) == ("released", "")
    assert project.release_date is None
    with pytest.raises(BoardError, match="not scheduled"):
        releases.mark_released(release, actor=cast.staff)


def test_bad_releases_are_refused(project, card, accepted, cast):
    with time_machine.travel(T0, tick=False):
        with pytest.raises(BoardError, match="passed"):
            releases.schedule_release(project, scheduled_for=date(2026, 11, 29), actor=cast.staff)
        with pytest.raises(BoardError, match="a year"):
            releases.schedule_release(project, scheduled_for=date(2028, 1, 1), actor=cast.staff)
        with pytest.raises(BoardError, match="date"):
            releases.schedule_release(project, scheduled_for="2026-12-11", actor=cast.staff)
        with pytest.raises(BoardError, match="Only staff"):
            releases.schedule_release(project, scheduled_for=FRIDAY, actor=cast.alice)
        todo = services.add_card(project, title="Not accepted", actor=cast.staff)
        with pytest.raises(BoardError, match="Only accepted cards"):
            releases.schedule_release(
                project, scheduled_for=FRIDAY, cards=[todo.pk], actor=cast.staff
            )
        with pytest.raises(BoardError, match="Choose the cards"):
            releases.schedule_release(project, scheduled_for=FRIDAY, cards=["x"], actor=cast.staff)
        releases.schedule_release(project, scheduled_for=FRIDAY, actor=cast.staff)
        with pytest.raises(BoardError, match="No accepted card"):
            releases.schedule_release(project, scheduled_for=FRIDAY, actor=cast.staff)
    assert Release.objects.count() == 1
    assert Notification.objects.filter(kind="board/release_scheduled").count() == 1
    assert Card.objects.get(pk=todo.pk).status == "todo"


def test_a_cancelled_release_is_not_reminded(accepted, project, cast):
    with time_machine.travel(T0, tick=False):
        release = releases.schedule_release(project, scheduled_for=FRIDAY, actor=cast.staff)
        releases.cancel_release(release, actor=cast.staff)
    project.refresh_from_db()
    assert project.release_date is None
    with time_machine.travel(T0 + timedelta(days=3, hours=1), tick=False):
        assert releases.remind_releases() == 0


def test_the_notice_is_in_the_clients_language(accepted, project, cast):
    cast.alice.language = "pl"
    cast.alice.save()
    with time_machine.travel(T0, tick=False):
        releases.schedule_release(project, scheduled_for=FRIDAY, actor=cast.staff)
    notice = Notification.objects.get(kind="board/release_scheduled", channel="email")
    assert "wdrożenie na produkcję" in notice.subject
    assert "wdrożymy na produkcję" in notice.body and "Twoja tablica:" in notice.body
