"""Board fixtures: a project of Alice's account (2 revision rounds, 40–60 hours) with a few
cards, started by staff at T0 (Monday 30 November 2026, 09:00 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _immediate_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def project(cast):
    from otomat.projects.board import services

    account = cast.alice.account
    account.currency = "PLN"  # a Polish software house's client
    account.save()
    with time_machine.travel(T0, tick=False):
        return services.start_project(
            account=cast.alice.account,
            title="Cottage booking site",
            description="Booking calendar synced with Booking.com.",
            revision_quota=2,
            hours_min=40,
            hours_max=60,
            milestones=["Calendar", "Payments"],
            actor=cast.staff,
        )


@pytest.fixture
def card(project, cast):
    from otomat.projects.board import services

    with time_machine.travel(T0, tick=False):
        return services.add_card(
            project,
            title="Sync the calendar",
            description="Block dates booked on Booking.com",
            milestone=project.milestones.first(),
            assignee=cast.staff,
            actor=cast.staff,
        )


@pytest.fixture
def on_staging(card, cast):
    """``card`` on staging, with its link."""
    from otomat.projects.board import services

    with time_machine.travel(T0, tick=False):
        services.update_card(
            card,
            actor=cast.staff,
            title=card.title,
            description=card.description,
            milestone=card.milestone_id,
            assignee=cast.staff.pk,
            staging_url="https://staging.example.com/calendar",
        )
        return services.set_status(card, "staging", actor=cast.staff)


@pytest.fixture
def accepted(on_staging, cast):
    from otomat.projects.board import services

    with time_machine.travel(T0, tick=False):
        return services.accept_on_staging(on_staging, user=cast.alice)


@pytest.fixture
def outsider_project(cast):
    from otomat.projects.board import services

    return services.start_project(
        account=cast.charlie.account, title="Charlie's shop", actor=cast.staff
    )
