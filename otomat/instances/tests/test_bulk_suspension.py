"""Suspending many instances at once (billing's dunning run) records exactly what suspending
them one by one records: the same state and fields, events and audit rows. Bad input is
refused and changes nothing; instances that cannot be suspended are skipped."""

from __future__ import annotations

import pytest

from otomat.accounts.models import AuditEvent
from otomat.instances import services
from otomat.instances.models import Instance, InstanceEvent

S = Instance.State
BILLING = services.SuspensionSource.BILLING


@pytest.fixture
def bots(cast, greeter):
    """Four of alice's bots: running, stopped by her, failed, and one still pending."""

    def make(name: str, n: int) -> Instance:
        return services.create_instance(
            account=cast.alice.account,
            version=greeter,
            name=name,
            config={"bot_token": f"77700{n}:" + "C" * 35},
            actor=cast.alice,
        )

    running, stopped, failed, pending = (
        make(name, n) for n, name in enumerate(["running", "stopped", "failed", "pending"])
    )
    for instance in (running, stopped, failed):
        services.provision_instance(instance, actor=cast.alice)
    services.stop_instance(stopped, actor=cast.alice)
    services.transition(failed, S.FAILED, cause="crash loop", actor_label="system:runner")
    Instance.objects.filter(pk=running.pk).update(pid=4242)
    return {"running": running, "stopped": stopped, "failed": failed, "pending": pending}


def _record():
    fields = (
        "name",
        "state",
        "desired",
        "desired_before_suspension",
        "suspension_source",
        "suspension_reason",
        "pid",
    )
    return {
        "instances": sorted(Instance.objects.values_list(*fields)),
        "events": sorted(
            InstanceEvent.objects.values_list(
                "instance__name", "from_state", "to_state", "cause", "actor_label"
            )
        ),
        "audit": sorted(
            (a.action, a.actor_label, a.account_id, a.target_id, sorted(a.data.items()))
            for a in AuditEvent.objects.filter(action="instance.suspended")
        ),
    }


def test_it_records_what_suspending_one_by_one_records(bots):
    from django.db import transaction

    reasons = {bot.pk: f"invoice of {name} unpaid" for name, bot in bots.items()}
    results = []
    for bulk in (True, False):
        sid = transaction.savepoint()
        if bulk:
            done = services.suspend_instances(reasons, source=BILLING, actor_label="system:billing")
        else:
            done = set()
            for pk, reason in reasons.items():
                try:
                    services.suspend_instance(
                        Instance.objects.get(pk=pk),
                        source=BILLING,
                        reason=reason,
                        actor_label="system:billing",
                    )
                    done.add(pk)
                except services.InstanceError:
                    pass  # the pending one
        results.append((done, _record()))
        transaction.savepoint_rollback(sid)
    (bulk_done, with_bulk), (single_done, one_by_one) = results
    assert bulk_done == single_done == {bots[n].pk for n in ("running", "stopped", "failed")}
    assert with_bulk == one_by_one
    suspended = dict((row[0], row) for row in with_bulk["instances"])
    # The stopped bot stays stopped once the suspension ends; the others run again.
    assert suspended["stopped"][3] == Instance.Desired.STOPPED
    assert suspended["running"][3] == Instance.Desired.RUNNING
    assert suspended["running"][1:3] == (S.SUSPENDED, Instance.Desired.STOPPED)
    assert suspended["running"][6] is None  # the runner stops it; its pid is no longer shown
    assert suspended["pending"][1] == S.PENDING


def test_the_runner_is_poked_once_after_commit(
    bots, monkeypatch, django_capture_on_commit_callbacks
):
    pokes = []
    monkeypatch.setattr(services, "poke_runner", lambda: pokes.append(1))
    reasons = {bots["running"].pk: "unpaid", bots["failed"].pk: "unpaid"}
    with django_capture_on_commit_callbacks(execute=True):
        services.suspend_instances(reasons, source=BILLING, actor_label="system:billing")
    assert pokes == [1]


def test_staff_take_over_a_billing_suspension_and_billing_changes_nothing_more(bots, cast):
    running = bots["running"]
    services.suspend_instances({running.pk: "unpaid"}, source=BILLING, actor_label="billing")
    assert services.suspend_instances({running.pk: "again"}, source=BILLING) == set()
    taken = services.suspend_instances(
        {running.pk: "abuse report"}, source=services.SuspensionSource.STAFF, actor=cast.staff
    )
    assert taken == {running.pk}
    running.refresh_from_db()
    assert (running.suspension_source, running.suspension_reason) == ("staff", "abuse report")
    assert running.desired_before_suspension == Instance.Desired.RUNNING  # kept from the first
    audits = AuditEvent.objects.filter(action="instance.suspended").order_by("id")
    assert [(a.actor, a.data["source"]) for a in audits] == [
        (None, "billing"),
        (cast.staff, "staff"),
    ]
    assert running.events.filter(to_state=S.SUSPENDED).count() == 1


@pytest.mark.parametrize(
    ("source", "reason", "message"),
    [("gremlins", "unpaid", "Unknown suspension source"), (BILLING, "  ", "Say why")],
)
def test_bad_input_is_refused_and_changes_nothing(bots, source, reason, message):
    before = _record()
    reasons = {bots["running"].pk: "unpaid", bots["stopped"].pk: reason}
    with pytest.raises(services.InstanceError, match=message):
        services.suspend_instances(reasons, source=source)
    assert _record() == before


def test_nothing_to_suspend_is_a_no_op(bots, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert services.suspend_instances({}, source=BILLING) == set()
