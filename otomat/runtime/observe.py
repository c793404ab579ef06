"""Write what a backend observes back to the database, turning phases into recorded transitions."""

from __future__ import annotations

import logging
import uuid

from django.db import transaction

from otomat.instances.models import Instance
from otomat.instances.services import InstanceError, transition
from otomat.runtime.backends.base import ActualState, Phase

log = logging.getLogger("otomat.runner")
S = Instance.State
RUNNER = "system:runner"


OBSERVED_FIELDS = ("id", "generation", "desired", "state", "last_heartbeat_at", "last_update_at")
BATCH = 500


def record_observations(observations: list[ActualState]) -> None:
    """Apply a batch of observations (at most one per instance: the newest): one transaction
    per ``BATCH`` rows, one query to lock and read them, one UPDATE per row; the state
    transitions they imply are recorded after it (each with its event). Unknown instances are
    skipped; a transition refused is logged."""
    known: list[ActualState] = []
    for observed in observations:
        try:
            uuid.UUID(observed.instance_id)
        except (ValueError, TypeError, AttributeError):
            continue
        known.append(observed)
    for i in range(0, len(known), BATCH):
        for instance, to_state, cause in _apply_batch(known[i : i + BATCH]):
            try:
                transition(instance, to_state, cause=cause, actor_label=RUNNER)
            except InstanceError as exc:
                log.info("ignored observation for %s: %s", instance.pk, exc)


def record_observation(observed: ActualState) -> None:
    """Apply one observation. Idempotent: the same observation twice changes nothing more.
    Raises Instance.DoesNotExist for an unknown instance."""
    moves = _apply_batch([observed], missing_ok=False)
    for instance, to_state, cause in moves:
        transition(instance, to_state, cause=cause, actor_label=RUNNER)


def _apply_batch(
    observations: list[ActualState], *, missing_ok: bool = True
) -> list[tuple[Instance, str, str]]:
    moves: list[tuple[Instance, str, str]] = []
    with transaction.atomic():
        rows = {
            str(row.pk): row
            for row in Instance.objects.select_for_update()
            .filter(pk__in=[o.instance_id for o in observations])
            .order_by()
            .only(*OBSERVED_FIELDS)
        }
        for observed in observations:
            instance = rows.get(observed.instance_id)
            if instance is None:
                if not missing_ok:
                    raise Instance.DoesNotExist(observed.instance_id)
                continue
            move = _apply(instance, observed)
            if move is not None:
                moves.append((instance, *move))
    return moves


def _apply(instance: Instance, observed: ActualState) -> tuple[str, str] | None:
    """Write ``observed``'s counters to ``instance``'s row; the transition it implies, if any."""
    counters = {
        "pid": observed.pid if observed.phase in (Phase.STARTING, Phase.RUNNING) else None,
        "last_exit_code": observed.last_exit_code,
        "last_heartbeat_at": observed.last_heartbeat or instance.last_heartbeat_at,
        "updates_handled": observed.updates_handled,
        "errors": observed.errors,
        # A restarted process reports no update yet: the last one handled stays known.
        "last_update_at": max(
            (t for t in (observed.last_update, instance.last_update_at) if t is not None),
            default=None,
        ),
    }
    current = observed.generation == instance.generation
    wants_running = instance.desired == Instance.Desired.RUNNING
    if not current:
        # An older generation (being replaced) or a stop of a terminated instance: it must
        # not move the state, only say that its process is gone. When nothing of the
        # instance should run, no newer process can own the recorded pid, so it goes. (A
        # STOPPED report carries no pid: matching the stored pid against it never cleared
        # one, and a stopped instance whose settings changed before its old process's stop
        # was recorded kept that dead pid for ever.) An instance being replaced keeps it
        # until its new process reports its own, which the backends report after this stop.
        if observed.phase == Phase.STOPPED and not wants_running:
            Instance.objects.filter(pk=instance.pk).exclude(pid=None).update(pid=None)
        return None
    counters["restarts"] = observed.restarts
    to_state, cause = instance.state, ""
    if wants_running and instance.state in (S.PROVISIONING, S.RUNNING):
        if observed.phase == Phase.RUNNING and instance.state != S.RUNNING:
            to_state, cause = S.RUNNING, f"process {observed.pid} is answering"
        elif observed.phase == Phase.BACKOFF and instance.state == S.RUNNING:
            to_state = S.PROVISIONING
            cause = (
                f"process exited (code {observed.last_exit_code}); "
                f"restart #{observed.restarts} with backoff"
            )
        elif observed.phase == Phase.FAILED:
            to_state = S.FAILED
            cause = f"gave up after {observed.restarts} restarts"
            counters["status_message"] = observed.message[-4000:]
    Instance.objects.filter(pk=instance.pk).update(**counters)
    return (to_state, cause) if to_state != instance.state else None


def forget_pids(gone: dict[str, int]) -> int:
    """Clear the recorded pid of instances whose process is gone (id → the pid the runner
    read), unless another pid was recorded meanwhile. Returns how many were cleared."""
    cleared = 0
    for instance_id, pid in gone.items():
        cleared += Instance.objects.filter(pk=instance_id, pid=pid).update(pid=None)
    return cleared
