"""The task queue on Redis (RQ): real ``otomat worker`` processes on ``OTOMAT_REDIS_URL``.

* the worker beats from its start and while idle, and only from its main process (never from
  the forked child that runs a job);
* two workers at once, the billing run, each subscription's run and the notice delivery
  enqueued many times: no invoice, action or notice twice, every notice sent once;
* a job whose work horse is killed is failed by its worker at once, the worker goes on; a job
  whose whole worker is killed is failed by the scheduler's recovery once its RQ heartbeat has
  expired (recorded as a ``TaskRecovery``), and the next enqueue does the work;
* monitoring reads the queue's depth and lag from Redis; retention prunes old failed jobs.

Run in scripts/test's RQ pass (``OTOMAT_TEST_TASK_BACKEND=redis``), skipped otherwise and when
nothing answers at ``settings.REDIS_URL``. The Redis database of that URL is
flushed before and after each test (scripts/test gives each run its own database number).
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from otomat.ops.models import ServiceHeartbeat, TaskRecovery
from otomat.ops.tests.slow_tasks import slow_task
from otomat.testing.processes import WorkerProcess, task_backend_for_tests, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.tasks]

RQ_TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}


def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1)


@pytest.fixture
def rq_queue(settings):
    """RQ as this test's task queue, on an empty Redis database; skips without Redis."""
    if task_backend_for_tests() != "redis":
        pytest.skip("RQ tests run in scripts/test's RQ pass (OTOMAT_TEST_TASK_BACKEND=redis)")
    try:
        import django_tasks_rq  # noqa: F401
    except ImportError:
        pytest.skip("django-tasks-rq is not installed (the redis extra)")
    client = _redis()
    try:
        client.ping()
    except Exception as exc:
        pytest.skip(f"Redis does not answer at {settings.REDIS_URL}: {exc}")
    client.flushdb()
    settings.TASKS = RQ_TASKS
    settings.READY_SERVICES = []
    yield client
    client.flushdb()


def rq_worker(tmp_path: Path, **env: str) -> WorkerProcess:
    return WorkerProcess(
        tmp_path,
        OTOMAT_TASK_BACKEND="redis",
        OTOMAT_EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
        **env,
    ).start()


def status(result) -> str:
    from django_tasks import task_backends

    return str(task_backends["default"].get_result(result.id).status)


def finished(results) -> bool:
    return all(status(r) in ("SUCCESSFUL", "FAILED") for r in results)


# -- heartbeats --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_rq_worker_beats_from_its_start_while_idle_and_never_from_a_job(tmp_path, rq_queue):
    worker = rq_worker(tmp_path, OTOMAT_HEARTBEAT_SECONDS="0.3")
    try:
        first = wait_until(
            lambda: ServiceHeartbeat.objects.filter(service="worker", pid=worker.pid).first(),
            60,
            message=f"the RQ worker wrote no heartbeat: {worker.output()}",
        )
        # Idle (nothing enqueued yet), it beats again.
        wait_until(
            lambda: ServiceHeartbeat.objects.get(pk=first.pk).seen_at > first.seen_at,
            30,
            message="the idle RQ worker's heartbeat did not move",
        )
        folder = tmp_path / "jobs"
        folder.mkdir()
        (folder / "release").touch()
        results = [slow_task.enqueue(str(folder)) for _ in range(3)]
        wait_until(lambda: finished(results), 60, message=worker.output())
        assert {status(r) for r in results} == {"SUCCESSFUL"}
        horses = {int(p.read_text()) for p in folder.glob("attempt-*")}
        assert worker.pid not in horses  # the jobs ran in forked children …
        pids = set(ServiceHeartbeat.objects.filter(service="worker").values_list("pid", flat=True))
        assert pids == {worker.pid}  # … which wrote no heartbeat of their own
    finally:
        worker.stop()
    row = ServiceHeartbeat.objects.get(service="worker", pid=worker.pid)
    assert row.info["stopped_at"]  # a clean stop


# -- two workers, one job once ----------------------------------------------------------------


def seed_due_subscriptions(size: int) -> list[int]:
    """``size`` active subscriptions (one instance each, three per account, customers in three
    languages) whose renewal invoice is due now. Returns their ids."""
    from decimal import Decimal

    from otomat.accounts.models import Account, Membership, User
    from otomat.billing.invoicing import ensure_series
    from otomat.billing.models import DunningPolicy, Plan, Subscription, TaxRate
    from otomat.catalog.models import Product, ProductVersion
    from otomat.instances.models import Instance

    now = timezone.now()
    product = Product.objects.create(slug="rq-bench", name="RQ Bot")
    version = ProductVersion.objects.create(
        product=product, version="1.0", runtime="process", source_dir="x", checksum="0"
    )
    tax = TaxRate.objects.create(name="PPN 11%", rate_percent=Decimal(11), inclusive=True)
    policy = DunningPolicy.objects.create(
        name="RQ",
        invoice_days_before=7,
        reminder_days=[-3, 0, 3],
        suspend_after_days=7,
        terminate_after_days=30,
    )
    plan = Plan.objects.create(
        product=product,
        code="m",
        name="Monthly",
        currency="IDR",
        price_minor=99_000,
        tax_rate=tax,
        dunning_policy=policy,
    )
    ensure_series()
    anchor = now - timedelta(days=25)
    end = anchor + timedelta(days=31)
    ids = []
    for i in range(size):
        if i % 3 == 0:
            account = Account.objects.create(name=f"Customer {i}", currency="IDR")
            user = User.objects.create(
                email=f"c{i}@rq.test", password="!", language=("en", "id", "pl")[i % 3]
            )
            Membership.objects.create(account=account, user=user, role="responsible")
        instance = Instance.objects.create(
            account=account, version=version, name=f"bot {i}", state="running", desired="running"
        )
        sub = Subscription.objects.create(
            account=account,
            instance=instance,
            plan=plan,
            status="active",
            anchor_at=anchor,
            period_index=0,
            current_period_start=anchor,
            current_period_end=end,
            activated_at=anchor,
            setup_fee_charged=True,
            next_run_at=end - timedelta(days=7),
        )
        ids.append(sub.pk)
    return ids


@pytest.mark.django_db(transaction=True)
def test_two_rq_workers_never_bill_or_notify_twice(tmp_path, rq_queue):
    from otomat.billing.models import BillingAction, Invoice
    from otomat.billing.tasks import run_billing_task, run_subscription_task
    from otomat.notify.models import Notification
    from otomat.notify.tasks import deliver_pending_task

    subs = seed_due_subscriptions(12)
    folders = [tmp_path / "w1", tmp_path / "w2"]
    for folder in folders:
        folder.mkdir()
    workers = [rq_worker(folder) for folder in folders]
    try:
        wait_until(
            lambda: ServiceHeartbeat.objects.filter(service="worker").count() == 2,
            60,
            message=" / ".join(w.output() for w in workers),
        )
        results = []
        for round_ in range(3):  # the same work, enqueued over and over, interleaved
            results.append(run_billing_task.enqueue())
            results += [run_subscription_task.enqueue(pk) for pk in subs[round_::2]]
            results.append(deliver_pending_task.enqueue())
        wait_until(lambda: finished(results), 240, 0.5, " / ".join(w.output() for w in workers))
        # Whatever a job that lost a race left (a locked database): one more round, drained.
        last = [run_billing_task.enqueue()]
        wait_until(lambda: finished(last), 120, 0.5)
        last = [deliver_pending_task.enqueue()]
        wait_until(lambda: finished(last), 120, 0.5)
        ran_on = {str(r.id): rq_queue.hget(f"rq:job:{r.id}", "worker_name") for r in results}
        mails = sum(
            (w.data_dir / "worker-output.log").read_text(errors="replace").count("Message-ID:")
            for w in workers
        )
    finally:
        for w in workers:
            w.stop()

    assert len({name for name in ran_on.values() if name}) == 2  # both workers took jobs
    invoices = Invoice.objects.filter(kind="renewal")
    assert invoices.count() == len(subs)
    assert set(invoices.values_list("subscription_id", flat=True)) == set(subs)
    actions = list(BillingAction.objects.exclude(key=None).values_list("key", flat=True))
    assert len(actions) == len(set(actions))
    notices = Notification.objects.filter(kind="billing/invoice_issued")
    assert notices.count() == len(subs)
    # A delivery that lost a race for SQLite's lock is retried after its backoff: deliver what
    # is left here, then every notice has been sent, each exactly once.
    from django.core import mail

    from otomat.notify.services import deliver_pending

    deliver_pending(now=timezone.now() + timedelta(hours=1))
    assert not notices.filter(sent_at__isnull=True).exists()
    email = Notification.objects.filter(channel="email", sent_at__isnull=False).count()
    assert mails + len(mail.outbox) == email


# -- a worker killed mid-run ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_killed_work_horse_fails_its_job_at_once_and_the_worker_goes_on(tmp_path, rq_queue):
    folder = tmp_path / "job"
    folder.mkdir()
    worker = rq_worker(tmp_path)
    try:
        result = slow_task.enqueue(str(folder))
        attempt = wait_until(
            lambda: next(folder.glob("attempt-*"), None), 60, message=worker.output()
        )
        horse = int(attempt.read_text())
        assert horse != worker.pid
        os.kill(horse, signal.SIGKILL)
        wait_until(lambda: status(result) == "FAILED", 60, message=worker.output())
        (folder / "release").touch()
        again = slow_task.enqueue(str(folder))  # the same worker takes the next job
        wait_until(lambda: status(again) == "SUCCESSFUL", 60, message=worker.output())
        assert worker.proc.poll() is None
    finally:
        worker.stop()


@pytest.mark.django_db(transaction=True)
def test_a_killed_rq_worker_s_job_is_failed_by_the_recovery_and_recorded(tmp_path, rq_queue):
    from otomat.ops.stale import recover_stale_tasks

    folder = tmp_path / "job"
    folder.mkdir()
    worker = rq_worker(tmp_path)
    try:
        result = slow_task.enqueue(str(folder))
        wait_until(lambda: next(folder.glob("attempt-*"), None), 60, message=worker.output())
        wait_until(lambda: status(result) == "RUNNING", 30)
    finally:
        worker.kill()  # kill -9, its work horse too: nobody is left to finish the job
    assert status(result) == "RUNNING"
    # While RQ's heartbeat of the job is fresh, nothing is decided …
    assert recover_stale_tasks() == {"requeued": 0, "failed": 0}
    assert not TaskRecovery.objects.exists()
    # … once it has expired (at most job_monitoring_interval + 60 s later), it is failed.
    later = timezone.now() + timedelta(minutes=5)
    assert recover_stale_tasks(now=later) == {"requeued": 0, "failed": 1}
    assert status(result) == "FAILED"
    recovery = TaskRecovery.objects.get()
    assert recovery.task_id == str(result.id)
    assert recovery.action == TaskRecovery.Action.FAILED
    assert recovery.task_path.endswith("slow_task")
    assert recover_stale_tasks(now=later) == {"requeued": 0, "failed": 0}  # once only

    (folder / "release").touch()
    second = rq_worker(tmp_path)
    try:
        again = slow_task.enqueue(str(folder))  # the scheduler's next enqueue does the work
        wait_until(lambda: status(again) == "SUCCESSFUL", 60, message=second.output())
    finally:
        second.stop()


# -- monitoring and retention -----------------------------------------------------------------


@pytest.mark.django_db
def test_queue_depth_and_lag_are_read_from_redis(rq_queue):
    from otomat.monitoring import platform

    assert platform.queue() == platform.QueueState(ready=0, lag_seconds=0.0)
    folder = "/nonexistent"
    slow_task.enqueue(folder)
    slow_task.enqueue(folder)
    slow_task.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(folder)
    state = platform.queue(now=timezone.now() + timedelta(seconds=90))
    assert state.ready == 2  # the deferred one is not due yet
    assert 89 <= state.lag_seconds < 200
    later = platform.queue(now=timezone.now() + timedelta(hours=2))
    assert later.ready == 3  # now it is due, and late


@pytest.mark.django_db
def test_retention_prunes_old_failed_rq_jobs_only(rq_queue, settings):
    import django_rq
    from rq.registry import FailedJobRegistry

    from otomat.ops.retention import prune_old_records

    settings.TASKS_USE_RQ = True
    settings.RETENTION_DAYS = {**settings.RETENTION_DAYS, "failed_task_results": 14}
    queue = django_rq.get_queue("default")
    registry = FailedJobRegistry(queue=queue)
    ids = {}
    for name, ended in (
        ("old", datetime(2020, 1, 1, tzinfo=UTC)),
        ("new", timezone.now() - timedelta(days=1)),
    ):
        result = slow_task.enqueue("/nonexistent")
        job = queue.fetch_job(str(result.id))
        queue.remove(job.id)
        job.ended_at = ended
        job.save()
        registry.add(job, ttl=-1)
        ids[name] = job.id
    counts = prune_old_records()
    assert counts["failed_task_results:rq"] == 1
    assert registry.get_job_ids() == [ids["new"]]
    assert queue.fetch_job(ids["old"]) is None
