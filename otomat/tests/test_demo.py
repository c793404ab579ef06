"""The demo data the main command sets up: a running Movie Search Bot for the demo customer on a
trial, and her first change request waiting on the owner. Set up once, however often it runs."""

from __future__ import annotations

import pytest

from otomat.billing.models import Subscription
from otomat.demo import CUSTOMER_EMAIL, ensure_demo_data, ensure_demo_instances
from otomat.instances.models import Instance
from otomat.support.models import Ticket


@pytest.fixture(autouse=True)
def _tasks_at_once(settings, tmp_path):
    settings.DATA_DIR = tmp_path  # the demo's credentials file
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def test_the_demo_has_a_bot_on_trial_and_a_ticket_waiting_on_the_owner(db, emulator):
    lines = ensure_demo_data(emulator.url)
    assert any(line.startswith("Demo bot token") for line in lines)
    assert ensure_demo_instances(emulator.url) == [
        "Demo Movie Search Bot: @demo_movies_bot in the emulator — try /search matrix"
    ]
    instance = Instance.objects.get()
    assert instance.version.product.slug == "movie-search" and instance.bot_id
    assert Subscription.objects.get(instance=instance).status == Subscription.Status.TRIALING
    ticket = Ticket.objects.get()
    assert ticket.requester.email == CUSTOMER_EMAIL and ticket.instance == instance
    assert ticket.whose_move == "us" and ticket.counts_as_revision
    assert ticket.response_due is not None  # the SLA clock runs

    # Run again (the next `otomat run`): nothing doubles.
    ensure_demo_data(emulator.url)
    ensure_demo_instances(emulator.url)
    assert (Instance.objects.count(), Ticket.objects.count()) == (1, 1)
