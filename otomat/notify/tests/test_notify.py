"""Notices by email and by Telegram through the owner's bot (in the emulator): linking a chat
with /start <code>, delivery once per dedupe key, retries with backoff, and notices in each
person's language."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from otomat.notify import services
from otomat.notify.models import Notification, TelegramLink

pytestmark = pytest.mark.smoke
OWNER_BOT = "notices_owner_bot"


@pytest.fixture
def owner_bot(emulator, settings):
    settings.OWNER_BOT_TOKEN = emulator.create_bot(OWNER_BOT)
    settings.OWNER_BOT_USERNAME = OWNER_BOT
    return emulator


def link_alice(client, cast, emulator) -> int:
    client.force_login(cast.alice)
    page = client.post(reverse("notify:telegram"), {"action": "link"}).content.decode()
    code = page.split("<code>/start ")[1].split("</code>")[0]
    emulator.say(OWNER_BOT, f"/start {code}", user_id=4242, first_name="Alice")
    assert services.poll_owner_bot() == 1
    return 4242


def test_a_person_links_telegram_and_gets_notices_there(client, cast, owner_bot):
    chat_id = link_alice(client, cast, owner_bot)
    link = TelegramLink.objects.get(user=cast.alice)
    assert link.chat_id == chat_id
    replies = owner_bot.bot_replies(OWNER_BOT, chat_id, 0)
    assert "Connected" in replies[-1]["text"]
    assert "Connected to" in client.get(reverse("notify:telegram")).content.decode()

    with transaction.atomic():
        queued = services.notify_user(
            cast.alice,
            "billing/unsuspended",
            {"instance": {"name": "Bot & Co"}, "instance_url": "http://x/"},
            dedupe_key="k1",
        )
    assert {n.channel for n in queued} == {"email", "telegram"}
    assert services.deliver_pending() == 2
    assert mail.outbox[-1].subject == "Bot & Co is running again"  # plain text, not &amp;
    texts = [m["text"] for m in owner_bot.bot_replies(OWNER_BOT, chat_id, 0)]
    assert any("Bot & Co is running again" in t for t in texts)
    # The same key again queues nothing.
    assert (
        services.notify_user(
            cast.alice, "billing/unsuspended", {"instance": {"name": "x"}}, dedupe_key="k1"
        )
        == []
    )


def test_a_wrong_or_old_code_links_nothing(client, cast, owner_bot):
    owner_bot.say(OWNER_BOT, "/start not-a-code", user_id=5151)
    owner_bot.say(OWNER_BOT, "hello", user_id=5151)
    assert services.poll_owner_bot() == 2
    assert not TelegramLink.objects.exists()
    assert services.poll_owner_bot() == 0  # the offset moved on: nothing handled twice
    client.force_login(cast.alice)
    page = client.post(reverse("notify:telegram"), {"action": "link"}).content.decode()
    code = page.split("<code>/start ")[1].split("</code>")[0]
    from otomat.notify.models import TelegramLinkCode

    TelegramLinkCode.objects.update(created_at=timezone.now() - timedelta(hours=2))
    owner_bot.say(OWNER_BOT, f"/start {code}", user_id=5151)
    services.poll_owner_bot()
    assert not TelegramLink.objects.exists()


def test_failed_deliveries_are_retried_with_backoff_then_given_up(cast, settings):
    settings.OWNER_BOT_TOKEN = "123:unreachable"
    settings.BOT_API_URL = "http://127.0.0.1:9"  # nothing listens
    TelegramLink.objects.create(user=cast.alice, chat_id=1)
    services.notify_user(
        cast.alice, "billing/activated", {"instance": {"name": "x"}, "instance_url": "u"}
    )
    telegram = Notification.objects.get(channel="telegram")
    now = timezone.now()
    assert services.deliver(telegram.pk, now=now) is False
    telegram.refresh_from_db()
    assert telegram.attempts == 1 and "unreachable" in telegram.last_error
    assert telegram.next_attempt_at == now + timedelta(minutes=1)
    assert services.deliver(telegram.pk, now=now) is False  # not due yet: not even tried
    telegram.refresh_from_db()
    assert telegram.attempts == 1
    for attempt in range(2, services.MAX_ATTEMPTS + 1):
        services.deliver(telegram.pk, now=now + timedelta(days=attempt))
    telegram.refresh_from_db()
    assert telegram.gave_up and telegram.attempts == services.MAX_ATTEMPTS
    assert Notification.objects.get(channel="email").sent_at is None  # email still queued
    assert services.deliver_pending(now=now + timedelta(days=30)) == 1


class _Refused:
    """A Bot API answer: 429 Too Many Requests, retry after ``wait`` seconds."""

    status_code = 429

    def __init__(self, wait: int) -> None:
        self.wait = wait

    def json(self) -> dict:
        return {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {self.wait}",
            "parameters": {"retry_after": self.wait},
        }


@pytest.mark.parametrize("wait", [1, 30])
def test_a_flood_limit_is_retried_after_retry_after_not_minutes_later(
    cast, settings, monkeypatch, wait
):
    from django_tasks_db.models import DBTaskResult

    settings.OWNER_BOT_TOKEN = "123:flooded"
    TelegramLink.objects.create(user=cast.alice, chat_id=1)
    services.notify_user(
        cast.alice, "billing/activated", {"instance": {"name": "x"}, "instance_url": "u"}
    )
    telegram = Notification.objects.get(channel="telegram")
    sent, slept = [], []
    monkeypatch.setattr(services.httpx, "post", lambda *a, **kw: sent.append(1) or _Refused(wait))
    monkeypatch.setattr(services.time, "sleep", slept.append)
    DBTaskResult.objects.all().delete()
    before = timezone.now()
    assert services.deliver(telegram.pk) is False
    # A short wait was waited for twice in line, a long one not at all; then it is queued for
    # when Telegram said, without counting as a failed attempt.
    assert slept == ([wait, wait] if wait <= services.RETRY_AFTER_MAX_SECONDS else [])
    telegram.refresh_from_db()
    assert telegram.attempts == 0 and not telegram.gave_up
    assert "Too Many Requests" in telegram.last_error
    retry = telegram.next_attempt_at - before
    assert timedelta(seconds=wait) <= retry < timedelta(seconds=wait + 5)
    [task] = DBTaskResult.objects.filter(task_path="otomat.notify.tasks.deliver_pending_task")
    assert task.run_after == telegram.next_attempt_at
    # Telegram lets it through then: sent.
    monkeypatch.setattr(services, "send_telegram", lambda *a, **kw: None)
    assert services.deliver(telegram.pk, now=telegram.next_attempt_at) is True


def test_notices_are_in_the_persons_language(cast):
    cast.alice.language = "pl"
    cast.alice.save()
    from otomat.billing.money import Money

    services.notify_user(
        cast.alice,
        "billing/reminder",
        {
            "number": "INV/1",
            "amount_due": Money(12345, "PLN"),
            "overdue_days": 3,
            "pay_url": "http://p/",
            "account": cast.alice.account,
            "due_at": timezone.now(),
        },
    )
    body = Notification.objects.get().body
    assert "123,45\xa0zł" in body and "http://p/" in body


def test_messages_to_one_chat_in_a_row_wait_for_telegrams_pace(client, cast, owner_bot):
    chat_id = link_alice(client, cast, owner_bot)
    for n in range(8):  # faster than Telegram lets a bot write to one chat (burst of 5, 1/s)
        services.send_telegram(chat_id, f"notice {n}")
    texts = [m["text"] for m in owner_bot.bot_replies(OWNER_BOT, chat_id, 0)]
    assert texts[-8:] == [f"notice {n}" for n in range(8)]
