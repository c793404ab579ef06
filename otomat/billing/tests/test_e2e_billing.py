"""The billing timeline end to end, with the real emulator and runner processes and time moved:
order through the web form → pay through the gateway's callback → the bot answers → renew →
unpaid → reminders → suspended (the bot stops answering) → paid → it answers again → unpaid
again → data export offered → terminated (no process left) → data deleted after the grace
period. Billing runs in this process with time moved; the runner runs in real time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from otomat.billing.dunning import run_billing
from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
from otomat.billing.models import (
    BillingAction,
    CheckoutSession,
    DunningPolicy,
    Invoice,
    Plan,
    Subscription,
)
from otomat.billing.tests.conftest import enable_gateway
from otomat.instances.models import Instance
from otomat.instances.services import purge_terminated_data
from otomat.notify.models import Notification
from otomat.testing.processes import processes_in, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.smoke]
BOT = "e2e_billing_bot"
DAY = timedelta(days=1)


def test_unpaid_bots_stop_and_paid_bots_answer_again(
    client, cast, greeter, emulator, runner_factory, settings, tmp_path
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.TERMINATED_DATA_GRACE_DAYS = 7
    fake = FakeMidtrans().start()
    try:
        _run(client, cast, greeter, emulator, runner_factory, fake)
    finally:
        fake.close()


def _run(client, cast, greeter, emulator, runner_factory, fake):
    enable_gateway("midtrans", fake)
    policy = DunningPolicy.objects.create(
        name="E2E",
        invoice_days_before=7,
        reminder_days=[-3, 0, 3],
        suspend_after_days=5,
        terminate_after_days=20,
        export_notice_days=3,
    )
    plan = Plan.objects.create(
        product=greeter.product,
        code="monthly",
        name="Monthly",
        currency="IDR",
        price_minor=99_000,
        dunning_policy=policy,
    )
    token = emulator.create_bot(BOT)
    runner = runner_factory()
    client.force_login(cast.alice)

    def ask(timeout: float = 20) -> str | None:
        return emulator.ask(BOT, "/start", timeout=timeout)

    def settled(instance: Instance, state: str) -> None:
        wait_until(
            lambda: _state(instance) == state,
            40,
            message=f"instance stayed {instance.state}, wanted {state}:\n{runner.output()}",
        )

    def pay_through_midtrans(invoice: Invoice) -> None:
        response = client.post(reverse("billing:pay", args=[invoice.token]), {"method": "midtrans"})
        assert response.status_code == 302 and response["Location"].startswith(fake.url)
        checkout = CheckoutSession.objects.get(invoice=invoice, status="open")
        headers, body = fake.notification(checkout.reference, "paid")
        reply = client.post(
            reverse("billing:callback", args=["midtrans"]),
            data=body,
            content_type="application/json",
            **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
        )
        assert reply.status_code == 200, reply.content

    # 1. Order through the install form: nothing runs before the payment.
    response = client.post(
        reverse("instances:install", args=["greeter"]),
        {
            "instance_name": "Paid greeter",
            "bot_token": token,
            "welcome_text": "Hello {name}, paid",
            "language": "en",
            "max_daily_greetings": "50",
            "reply_delay_seconds": "0",
            "plan": str(plan.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    instance = Instance.objects.get()
    order = Invoice.objects.get(kind=Invoice.Kind.ORDER)
    assert instance.state == "pending" and ask(timeout=3) is None

    # 2. Paid: the bot answers within seconds (no billing run needed).
    pay_through_midtrans(order)
    settled(instance, "running")
    assert ask() == "Hello Alice, paid"
    assert instance.data_dir.is_dir()
    sub = Subscription.objects.get()
    renewal_at = sub.current_period_end

    # 3. Renewal invoiced 7 days ahead, reminders, renewed; unpaid → suspended after 5 days.
    for moment in (-7, -3, 0, 3):
        _run_billing_at(renewal_at + moment * DAY)
    renewal = Invoice.objects.get(kind=Invoice.Kind.RENEWAL)
    assert renewal.status == Invoice.Status.OPEN
    assert BillingAction.objects.filter(kind="reminded").count() == 3
    settled(instance, "running")
    _run_billing_at(renewal_at + 5 * DAY)
    settled(instance, "suspended")
    wait_until(lambda: processes_in(instance.data_dir) == [], 20, message="bot kept running")
    assert ask(timeout=3) is None  # the bot stops answering
    instance.refresh_from_db()
    assert instance.suspension_source == "billing" and renewal.number in instance.suspension_reason
    page = client.get(reverse("instances:detail", args=[instance.id])).content.decode()
    assert renewal.number in page and reverse("billing:pay", args=[renewal.token]) in page
    notice = Notification.objects.get(kind="billing/suspended", channel="email")
    from otomat.notify.services import deliver

    assert deliver(notice.pk, now=notice.next_attempt_at), notice.last_error
    notice.refresh_from_db()
    assert renewal.pay_url() in notice.body and renewal.number in notice.body

    # 4. Paid: running again at once.
    pay_through_midtrans(renewal)
    settled(instance, "running")
    assert ask() == "Hello Alice, paid"
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE

    # 5. The next period goes unpaid: suspended, export offered, terminated, data deleted later.
    second = sub.current_period_end
    for moment in (-7, 0, 5):
        _run_billing_at(second + moment * DAY)
    settled(instance, "suspended")
    _run_billing_at(second + 17 * DAY)
    assert BillingAction.objects.filter(kind="export_offered").count() == 1
    export = client.get(reverse("instances:export", args=[instance.id]))
    assert export.status_code == 200 and export["Content-Type"] == "application/zip"
    _run_billing_at(second + 20 * DAY)
    settled(instance, "terminated")
    wait_until(lambda: processes_in(instance.data_dir) == [], 20, message="process left behind")
    assert ask(timeout=3) is None
    instance.refresh_from_db()
    assert instance.data_dir.exists()  # kept for the grace period…
    with time_machine.travel(instance.terminated_at + 6 * DAY, tick=False):
        assert purge_terminated_data() == 0
    with time_machine.travel(instance.terminated_at + 7 * DAY + timedelta(minutes=1), tick=False):
        assert purge_terminated_data() == 1
    instance.refresh_from_db()
    assert not instance.data_dir.exists() and instance.data_deleted_at is not None  # …then gone
    kinds = list(BillingAction.objects.order_by("at", "id").values_list("kind", flat=True))
    for expected in (
        "invoiced",
        "paid",
        "activated",
        "renewed",
        "reminded",
        "suspended",
        "unsuspended",
        "export_offered",
        "terminated",
    ):
        assert expected in kinds


def _state(instance: Instance) -> str:
    instance.refresh_from_db()
    return instance.state


def _run_billing_at(moment) -> None:
    # Never earlier than now: the runner (real time) and billing (moved time) share rows.
    with time_machine.travel(max(moment, timezone.now()), tick=False):
        run_billing()
