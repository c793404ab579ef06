"""The owner bot's Acknowledge button in the emulator (no runner): it acknowledges once, a
second press says so, and only staff may use it; Open is a link to the incident page."""

from __future__ import annotations

from django.test import TestCase
from django.urls import reverse

from otomat.monitoring import alerts, notices, receivers
from otomat.monitoring.models import Incident
from otomat.monitoring.signals import Signal
from otomat.notify import services as notify
from otomat.notify.tests.test_notify import OWNER_BOT, owner_bot  # noqa: F401

OWNER_CHAT = 7002


def link(client, user, emulator, chat_id) -> None:
    client.force_login(user)
    page = client.post(reverse("notify:telegram"), {"action": "link"}).content.decode()
    code = page.split("<code>/start ")[1].split("</code>")[0]
    emulator.say(OWNER_BOT, f"/start {code}", user_id=chat_id)
    assert notify.poll_owner_bot() == 1


def press(emulator, message: dict, data: str) -> dict:
    response = emulator.client.post(
        f"/control/bots/{OWNER_BOT}/callbacks",
        json={"user_id": OWNER_CHAT, "message_id": message["message_id"], "data": data},
    )
    assert response.status_code == 201, response.text
    assert notify.poll_owner_bot() == 1
    return emulator.client.get(
        f"/control/bots/{OWNER_BOT}/callbacks/{response.json()['id']}"
    ).json()


def test_acknowledge_from_telegram_once_and_open_links_the_page(client, cast, owner_bot):  # noqa: F811
    link(client, cast.owner, owner_bot, OWNER_CHAT)
    with TestCase.captureOnCommitCallbacks(execute=True):
        alerts.report(
            [Signal(check="host.disk", subject="disk:/data", ok=False, summary="disk 95 % full")]
        )
    notify.deliver_pending()
    incident = Incident.objects.get()
    message = owner_bot.bot_replies(OWNER_BOT, OWNER_CHAT, 0)[-1]
    assert message["text"].startswith("Down: disk 95 % full")
    ack, open_ = message["reply_markup"]["inline_keyboard"][0]
    assert open_ == {"text": "Open", "url": notices.incident_url(incident)}

    first = press(owner_bot, message, ack["callback_data"])
    assert first["answer"]["text"] == "Acknowledged."
    incident.refresh_from_db()
    assert (
        incident.status == Incident.Status.ACKNOWLEDGED and incident.acknowledged_by == cast.owner
    )
    # The edited message keeps Open only, so a second press is an old button's (forced here).
    response = owner_bot.client.post(
        f"/control/bots/{OWNER_BOT}/callbacks",
        json={
            "user_id": OWNER_CHAT,
            "message_id": message["message_id"],
            "data": ack["callback_data"],
            "force": True,
        },
    )
    assert notify.poll_owner_bot() == 1
    again = owner_bot.client.get(
        f"/control/bots/{OWNER_BOT}/callbacks/{response.json()['id']}"
    ).json()
    assert again["answer"]["text"] == "It was acknowledged or resolved already."
    assert incident.updates.filter(kind="acknowledged").count() == 1


def test_only_staff_acknowledge_and_bad_data_does_nothing(cast):
    incident = Incident.objects.create(title="x")
    answer, text, _markup = receivers.acknowledge_button(
        cast.alice, f"{notices.ACK_PREFIX}{incident.pk}"
    )
    assert answer == "Only staff can acknowledge incidents." and text is None
    assert receivers.acknowledge_button(cast.owner, f"{notices.ACK_PREFIX}nope") is None
    answer, *_ = receivers.acknowledge_button(cast.owner, f"{notices.ACK_PREFIX}999999")
    assert answer == "This incident no longer exists."
    incident.refresh_from_db()
    assert incident.status == Incident.Status.OPEN
