"""Crash safety: the process that receives a payment is killed (a failpoint ends it like
kill -9) at each dangerous moment — after storing the callback, after the payment commits, in
the middle of unsuspending — and the next run finishes the job: the bot is unsuspended, the
payment is recorded exactly once, and a replayed callback changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from otomat.billing import payments
from otomat.billing.dunning import run_billing
from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
from otomat.billing.models import GatewayCallback, Invoice, Payment, Subscription
from otomat.billing.tests.conftest import enable_gateway, greeter_config
from otomat.instances.models import Instance
from otomat.lib.failpoints import EXIT_CODE
from otomat.testing.processes import database_url

pytestmark = [pytest.mark.slow, pytest.mark.smoke]
DAY = timedelta(days=1)

RECEIVER = """
import json, os, sys
import django
django.setup()
from otomat.billing.payments import receive_callback
request = json.loads(os.environ["CALLBACK"])
status = receive_callback("midtrans", headers=request["headers"], body=request["body"].encode())
print("answered", status[0])
"""


def receive_in_worker(tmp_path, headers, body, failpoint: str) -> subprocess.CompletedProcess:
    """Handle one callback in a separate process, which dies at ``failpoint``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTOMAT_")}
    env.update(
        OTOMAT_DATA_DIR=str(tmp_path),
        OTOMAT_DATABASE_URL=database_url(),
        OTOMAT_SECRET_KEY=settings.SECRET_KEY,
        OTOMAT_ENCRYPTION_KEYS=",".join(settings.ENCRYPTION_KEYS),
        OTOMAT_FAILPOINTS=failpoint,
        OTOMAT_TASK_BACKEND="django_tasks.backends.immediate.ImmediateBackend",
        DJANGO_SETTINGS_MODULE="otomat.settings",
        CALLBACK=json.dumps({"headers": headers, "body": body.decode()}),
    )
    return subprocess.run(
        [sys.executable, "-c", RECEIVER], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def suspended(transactional_db, cast, greeter, policy, plan, tmp_path):
    """Alice's bot suspended by billing for an unpaid renewal, with Midtrans set up."""
    from otomat.billing.subscriptions import place_order
    from otomat.billing.tests.conftest import pay

    fake = FakeMidtrans().start()
    enable_gateway("midtrans", fake)
    instance, order = place_order(
        account=cast.alice.account,
        version=greeter,
        plan=plan,
        name="Crash test",
        config=greeter_config(),
        actor=cast.alice,
    )
    pay(order)
    sub = Subscription.objects.get()
    for moment in (sub.current_period_end - 7 * DAY, sub.current_period_end + 8 * DAY):
        with time_machine.travel(moment, tick=False):
            run_billing()
    instance.refresh_from_db()
    assert instance.state == "suspended"
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL, status="open")
    checkout = payments.start_checkout(renewal, "midtrans", return_url="http://x/")
    yield instance, renewal, fake, checkout
    fake.close()


@pytest.mark.parametrize("failpoint", ["billing.before_unsuspend", "billing.after_payment_commit"])
def test_a_worker_killed_after_the_payment_leaves_work_the_next_run_finishes(
    suspended, tmp_path, failpoint
):
    instance, renewal, fake, checkout = suspended
    headers, body = fake.notification(checkout.reference, "paid")
    result = receive_in_worker(tmp_path, headers, body, failpoint)
    assert result.returncode == EXIT_CODE, result.stdout + result.stderr

    # The payment survived the crash, once; the bot is still suspended; billing knows it is due.
    renewal.refresh_from_db()
    instance.refresh_from_db()
    assert (
        renewal.status == Invoice.Status.PAID
        and Payment.objects.filter(invoice=renewal).count() == 1
    )
    assert instance.state == "suspended"
    sub = Subscription.objects.get()
    assert sub.next_run_at <= timezone.now()

    # The next run (the scheduler's, or a restarted worker's) finishes the job.
    report = run_billing()
    assert report.processed == 1
    instance.refresh_from_db()
    sub.refresh_from_db()
    assert instance.state == "provisioning" and instance.desired == "running"
    assert sub.status == Subscription.Status.ACTIVE
    # The provider retries its notification: nothing more happens.
    assert payments.receive_callback("midtrans", headers=headers, body=body)[0] == 200
    assert Payment.objects.filter(invoice=renewal).count() == 1
    assert run_billing().processed == 0


def test_a_worker_killed_right_after_storing_the_callback(suspended, tmp_path):
    instance, renewal, fake, checkout = suspended
    headers, body = fake.notification(checkout.reference, "paid")
    result = receive_in_worker(tmp_path, headers, body, "billing.after_callback_stored")
    assert result.returncode == EXIT_CODE, result.stdout + result.stderr
    callback = GatewayCallback.objects.get()
    assert callback.status == "received" and not Payment.objects.filter(invoice=renewal).exists()
    # The periodic retry picks up callbacks stored but never handled.
    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False):
        assert payments.retry_failed_callbacks() == 1
    renewal.refresh_from_db()
    instance.refresh_from_db()
    assert renewal.status == Invoice.Status.PAID
    assert instance.state == "provisioning"
    assert Instance.objects.get().suspension_source == ""
