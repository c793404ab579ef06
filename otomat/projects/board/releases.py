"""Production releases: the owner schedules the accepted cards for a date; the client is told at
once and reminded the day before (``remind_releases``, run by the scheduler), and sees the date
on the board. Release dates are the client's calendar days (their responsible person's zone)."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from otomat.accounts.models import User
from otomat.notify.services import notify_user
from otomat.projects.board import services
from otomat.projects.board.models import Card, CardEvent, Project, Release, Side
from otomat.projects.board.services import BoardError

MAX_DAYS_AHEAD = 366


def client_zone(project: Project) -> zoneinfo.ZoneInfo:
    person = project.account.responsible
    try:
        return zoneinfo.ZoneInfo((person.timezone if person else "") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def client_today(project: Project, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(client_zone(project)).date()


def _context(release: Release) -> dict:
    from django.conf import settings
    from django.urls import reverse

    return {
        "release": release,
        "project": release.project,
        "cards": list(release.cards.order_by("position", "pk")),
        "board_url": settings.BASE_URL + reverse("board:project", args=[release.project_id]),
    }


def schedule_release(
    project: Project,
    *,
    scheduled_for: date,
    actor: User,
    cards: list[int] | None = None,
    note: str = "",
    now: datetime | None = None,
) -> Release:
    """Schedule the production release of accepted cards (``cards``: their ids; by default
    every accepted card not yet in a scheduled release) for ``scheduled_for``, a day from today
    (the client's) to a year ahead. The client is told at once. Raises BoardError."""
    services._require_staff(actor)
    now = now or timezone.now()
    if not isinstance(scheduled_for, date) or isinstance(scheduled_for, datetime):
        raise BoardError(_("Choose the release date."))
    today = client_today(project, now)
    if scheduled_for < today:
        raise BoardError(_("The release date has passed."))
    if scheduled_for > today + timedelta(days=MAX_DAYS_AHEAD):
        raise BoardError(_("Schedule a release at most a year ahead."))
    note = " ".join((note or "").split())
    if len(note) > 300:
        raise BoardError(_("A note has at most 300 characters."))
    pending = Card.objects.filter(project=project, status=Card.Status.ACCEPTED).exclude(
        releases__status=Release.Status.SCHEDULED
    )
    if cards is not None:
        try:
            wanted = {int(c) for c in cards}
        except (TypeError, ValueError):
            raise BoardError(_("Choose the cards to release.")) from None
        chosen = list(pending.filter(pk__in=wanted))
        if len(chosen) != len(wanted):
            raise BoardError(
                _("Only accepted cards of this project, not already scheduled, can be released.")
            )
    else:
        chosen = list(pending)
    if not chosen:
        raise BoardError(_("No accepted card is waiting for a release."))
    with transaction.atomic():
        release = Release.objects.create(
            project=project,
            scheduled_for=scheduled_for,
            note=note,
            created_by=actor,
            created_at=now,
        )
        release.cards.set(chosen)
        Project.objects.filter(pk=project.pk).update(release_date=scheduled_for)
        project.release_date = scheduled_for
        for card in chosen:
            CardEvent.objects.create(
                card=card,
                kind=CardEvent.Kind.SYSTEM,
                author=actor,
                side=Side.US,
                body=f"Release scheduled for {scheduled_for.isoformat()}.",
                created_at=now,
            )
        services._audit(
            "board.release_scheduled",
            actor=actor,
            project=project,
            target=release,
            date=scheduled_for.isoformat(),
            cards=[c.pk for c in chosen],
        )
        for person in services.client_people(project):
            notify_user(
                person,
                "board/release_scheduled",
                _context(release),
                dedupe_key=f"board-release:{release.pk}:scheduled",
            )
        Release.objects.filter(pk=release.pk).update(notified_at=now)
        release.notified_at = now
    return release


def cancel_release(release: Release, *, actor: User) -> Release:
    services._require_staff(actor)
    with transaction.atomic():
        if not Release.objects.filter(pk=release.pk, status=Release.Status.SCHEDULED).update(
            status=Release.Status.CANCELLED
        ):
            raise BoardError(_("This release is not scheduled."))
        release.refresh_from_db()
        _refresh_release_date(release.project)
        services._audit(
            "board.release_cancelled", actor=actor, project=release.project, target=release
        )
    return release


def _refresh_release_date(project: Project) -> None:
    upcoming = (
        project.releases.filter(status=Release.Status.SCHEDULED)
        .order_by("scheduled_for")
        .values_list("scheduled_for", flat=True)
        .first()
    )
    Project.objects.filter(pk=project.pk).update(release_date=upcoming)
    project.release_date = upcoming


def mark_released(release: Release, *, actor: User, now: datetime | None = None) -> Release:
    """The release went to production: its cards are released (nobody's move). Raises
    BoardError."""
    services._require_staff(actor)
    now = now or timezone.now()
    with transaction.atomic():
        if not Release.objects.filter(pk=release.pk, status=Release.Status.SCHEDULED).update(
            status=Release.Status.RELEASED, released_at=now
        ):
            raise BoardError(_("This release is not scheduled."))
        release.refresh_from_db()
        for card in Card.objects.select_for_update().filter(releases=release):
            services._apply_status(card, Card.Status.RELEASED, now=now, actor=actor, side=Side.US)
        _refresh_release_date(release.project)
        services._audit("board.released", actor=actor, project=release.project, target=release)
    return release


def remind_releases(*, now: datetime | None = None) -> int:
    """Remind the client of every scheduled release that is tomorrow in their zone, once each
    (claimed by a conditional update, so two runs never send it twice). Returns how many."""
    now = now or timezone.now()
    utc_today = now.date()
    candidates = Release.objects.filter(
        status=Release.Status.SCHEDULED,
        reminded_at__isnull=True,
        scheduled_for__gte=utc_today,
        scheduled_for__lte=utc_today + timedelta(days=2),
    ).select_related("project__account")
    sent = 0
    for release in candidates:
        if release.scheduled_for != client_today(release.project, now) + timedelta(days=1):
            continue
        with transaction.atomic():
            if not Release.objects.filter(pk=release.pk, reminded_at__isnull=True).update(
                reminded_at=now
            ):
                continue
            for person in services.client_people(release.project):
                notify_user(
                    person,
                    "board/release_reminder",
                    _context(release),
                    dedupe_key=f"board-release:{release.pk}:reminder",
                )
            services._audit(
                "board.release_reminded",
                actor=None,
                project=release.project,
                target=release,
                date=release.scheduled_for.isoformat(),
            )
        sent += 1
    return sent
