"""Outgoing webhooks, tried from the receiver's side: a receiver written here from
docs/webhooks.md verifies every signature; business actions (an invoice issued and paid, a
ticket opened) reach the owner's URL and the customer's own URL, never another customer's;
failures are retried with backoff and give up; two workers never send one delivery twice;
private addresses are refused; the pages keep every customer to their own webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from otomat.hooks import delivery as sending
from otomat.hooks import services
from otomat.hooks.models import Delivery, Endpoint


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/webhooks.md publishes it."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp, received = int(parts["t"]), parts["v1"]
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, received) and abs(time.time() - timestamp) <= tolerance


class Receiver:
    """A local HTTP server that records what it gets and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"headers": dict(self.headers), "body": body, "path": self.path}
                )
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[dict]:
        found = []
        for request in self.requests:
            headers = {k.lower(): v for k, v in request["headers"].items()}
            assert verify(secret, headers["otomat-signature"], request["body"])
            event = json.loads(request["body"])
            assert headers["otomat-event"] == event["type"]
            assert headers["otomat-delivery"] == event["id"]
            found.append(event)
        return found


@pytest.fixture
def receiver(settings):
    settings.HTTP_ALLOW_PRIVATE = True  # the receiver listens on 127.0.0.1
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    found = Receiver()
    yield found
    found.server.shutdown()


def _invoice(account, number_hint="A"):
    from otomat.billing.invoicing import LineSpec, issue_invoice
    from otomat.billing.money import Money

    invoice, _created = issue_invoice(
        account=account,
        currency="IDR",
        lines=[LineSpec(description=f"Work {number_hint}", unit_price=Money(100_000, "IDR"))],
        kind="manual",
        due_at=timezone.now() + timedelta(days=7),
    )
    return invoice


def test_events_reach_the_owner_and_the_customer_it_concerns_only(
    cast, receiver, django_capture_on_commit_callbacks
):
    from otomat.billing.money import Money
    from otomat.billing.payments import record_payment

    owner_hook = services.create_endpoint(
        user=cast.owner, url=receiver.url + "?who=owner", events=["invoice.issued", "invoice.paid"]
    )
    alice_hook = services.create_endpoint(
        user=cast.alice, url=receiver.url + "?who=alice", events=["invoice.paid"]
    )
    charlie_hook = services.create_endpoint(
        user=cast.charlie, url=receiver.url + "?who=charlie", events=["invoice.paid"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        invoice = _invoice(cast.alice.account)
    with django_capture_on_commit_callbacks(execute=True):
        record_payment(
            invoice,
            amount=Money(invoice.total_minor, "IDR"),
            gateway="manual",
            provider_payment_id="p-1",
        )
    paid = Delivery.objects.filter(event_type="invoice.paid")
    assert {d.endpoint_id for d in paid} == {owner_hook.pk, alice_hook.pk}  # not charlie's
    assert not Delivery.objects.filter(endpoint=charlie_hook).exists()
    assert Delivery.objects.filter(endpoint=owner_hook, event_type="invoice.issued").count() == 1
    assert all(d.status == Delivery.Status.DELIVERED for d in Delivery.objects.all())
    # Each request verifies with the secret of the URL it was sent to.
    secrets = {"owner": owner_hook.secret, "alice": alice_hook.secret}
    for request in receiver.requests:
        who = request["path"].split("who=")[1]
        header = {k.lower(): v for k, v in request["headers"].items()}["otomat-signature"]
        assert verify(secrets[who], header, request["body"])
        assert not verify(secrets["alice" if who == "owner" else "owner"], header, request["body"])
    assert sorted(r["path"].split("who=")[1] for r in receiver.requests) == [
        "alice",
        "owner",
        "owner",
    ]
    paid_ids = {str(d.event_id) for d in paid}
    assert len(paid_ids) == 1
    events = [json.loads(r["body"]) for r in receiver.requests]
    event = next(e for e in events if e["type"] == "invoice.paid")
    assert event["data"]["invoice"]["number"] == invoice.number
    assert event["data"]["invoice"]["status"] == "paid"
    assert "secret" not in json.dumps(event).lower()


def test_a_receiver_verifies_each_signature_and_a_tampered_body_fails(cast, receiver):
    hook = services.create_endpoint(user=cast.owner, url=receiver.url, events=["invoice.paid"])
    row = services.send_test(hook, user=cast.owner)
    assert row.status == Delivery.Status.DELIVERED and row.last_status_code == 200
    (event,) = receiver.events(hook.secret)
    assert event["type"] == "ping" and event["id"] == str(row.event_id)
    request = receiver.requests[0]
    header = {k.lower(): v for k, v in request["headers"].items()}["otomat-signature"]
    assert not verify(hook.secret, header, request["body"].replace(b"test", b"tost"))
    assert not verify("whsec_other", header, request["body"])
    old = header.replace(header.split(",")[0], f"t={int(time.time()) - 3600}")
    assert not verify(hook.secret, old, request["body"])  # an old timestamp is refused


def test_failures_are_retried_with_backoff_then_given_up_and_the_url_disabled(cast, receiver):
    receiver.status = 500
    hook = services.create_endpoint(user=cast.owner, url=receiver.url, events=["ticket.opened"])
    (row,) = sending.dispatch("ticket.opened", {"ticket": {"number": "T-1"}}, account_ids=[])
    row.refresh_from_db()
    assert hook.pk and row.status == Delivery.Status.RETRYING and row.attempts == 1
    assert row.last_status_code == 500 and "500" in row.last_error
    waits = []
    for expected in sending.BACKOFF:
        row.refresh_from_db()
        waits.append(row.next_attempt_at - row.last_attempt_at)
        # Not due yet: nothing is sent.
        assert not sending.attempt(row.pk, now=row.last_attempt_at + expected / 2)
        sending.attempt(row.pk, now=row.next_attempt_at)
    row.refresh_from_db()
    assert waits == sending.BACKOFF
    assert row.status == Delivery.Status.GAVE_UP and row.attempts == sending.MAX_ATTEMPTS
    assert len(receiver.requests) == sending.MAX_ATTEMPTS
    # Three given-up deliveries in a row turn the URL off (and the owner sees why).
    for _ in range(sending.DISABLE_AFTER - 1):
        (other,) = sending.dispatch("ticket.opened", {"n": 1}, account_ids=[])
        Delivery.objects.filter(pk=other.pk).update(attempts=sending.MAX_ATTEMPTS - 1)
        other.refresh_from_db()
        sending.attempt(other.pk, now=other.next_attempt_at)
    hook.refresh_from_db()
    assert not hook.is_active and "in a row" in hook.disabled_reason
    assert sending.dispatch("ticket.opened", {"n": 2}, account_ids=[]) == []


def test_410_gone_disables_at_once_and_a_redirect_is_not_followed(cast, receiver):
    receiver.status = 410
    hook = services.create_endpoint(user=cast.owner, url=receiver.url, events=["ticket.opened"])
    (row,) = sending.dispatch("ticket.opened", {"n": 1}, account_ids=[])
    row.refresh_from_db()
    hook.refresh_from_db()
    assert row.status == Delivery.Status.GAVE_UP and not hook.is_active
    assert "410" in hook.disabled_reason
    receiver.status = 302
    services.update_endpoint(
        hook, user=cast.owner, url=receiver.url, events=["ticket.opened"], is_active=True
    )
    (row,) = sending.dispatch("ticket.opened", {"n": 2}, account_ids=[])
    row.refresh_from_db()
    assert row.status == Delivery.Status.RETRYING and "redirect" in row.last_error


def test_two_workers_never_send_one_delivery_twice(cast, receiver, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    hook = services.create_endpoint(user=cast.owner, url=receiver.url, events=["ticket.opened"])
    (row,) = sending.dispatch("ticket.opened", {"n": 1}, account_ids=[])
    now = timezone.now()
    assert sending.attempt(row.pk, now=now)
    assert not sending.attempt(row.pk, now=now)  # delivered: nothing more
    (second,) = sending.dispatch("ticket.opened", {"n": 2}, account_ids=[])
    now = timezone.now()
    assert sending._claim(second.pk, now)  # a worker holds it…
    assert not sending.attempt(second.pk, now=now)  # …so another one does not send it
    assert len(receiver.requests) == 1
    assert hook.deliveries.count() == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("https://user:pw@example.com/x", "user name and password"),
        ("http://127.0.0.1:9/x", "private or local"),
        ("http://10.0.0.7/x", "private or local"),
        ("http://169.254.169.254/latest/meta-data", "private or local"),
        ("http://[::1]/x", "private or local"),
        ("not a url", "http:// or https://"),
    ],
)
def test_private_and_malformed_addresses_are_refused(cast, settings, url, message):
    settings.HTTP_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError, match=message):
        services.create_endpoint(user=cast.owner, url=url, events=["invoice.paid"])
    assert not Endpoint.objects.exists()


def test_an_address_that_turns_private_later_is_refused_at_delivery(cast, settings, receiver):
    hook = services.create_endpoint(user=cast.owner, url=receiver.url, events=["ticket.opened"])
    settings.HTTP_ALLOW_PRIVATE = False
    (row,) = sending.dispatch("ticket.opened", {"n": 1}, account_ids=[])
    row.refresh_from_db()
    assert row.status == Delivery.Status.RETRYING and receiver.requests == []
    assert hook.pk


def test_customers_subscribe_only_to_their_own_kinds_of_events(cast, receiver):
    with pytest.raises(ValidationError, match="Unknown event"):
        services.create_endpoint(user=cast.alice, url=receiver.url, events=["lead.created"])
    with pytest.raises(ValidationError, match="at least one"):
        services.create_endpoint(user=cast.alice, url=receiver.url, events=[])
    assert not Endpoint.objects.exists()


def test_pages_keep_each_customer_to_their_own_webhooks(client, cast, receiver):
    mine = services.create_endpoint(user=cast.alice, url=receiver.url, events=["invoice.paid"])
    client.force_login(cast.charlie)
    for name in ("detail", "edit", "delete"):
        assert client.get(reverse(f"hooks:{name}", args=[mine.pk])).status_code == 404
    for name in ("test", "roll", "delete"):
        assert client.post(reverse(f"hooks:{name}", args=[mine.pk])).status_code == 404
    assert mine.url not in client.get(reverse("hooks:list")).content.decode()
    assert Endpoint.objects.filter(pk=mine.pk).exists() and receiver.requests == []

    client.force_login(cast.bob)  # alice's colleague: the same account
    page = client.get(reverse("hooks:detail", args=[mine.pk]))
    assert page.status_code == 200 and mine.secret in page.content.decode()
    response = client.post(reverse("hooks:test", args=[mine.pk]), follow=True)
    assert "The test event was delivered" in response.content.decode()


def test_the_form_refuses_bad_input_and_changes_nothing(client, cast, settings):
    settings.HTTP_ALLOW_PRIVATE = False
    client.force_login(cast.alice)
    response = client.post(
        reverse("hooks:new"), {"url": "http://192.168.1.5/hook", "events": ["invoice.paid"]}
    )
    assert response.status_code == 400 and "private or local" in response.content.decode()
    response = client.post(reverse("hooks:new"), {"url": "https://example.com/x"})
    assert response.status_code == 400
    assert not Endpoint.objects.exists()


def test_the_owner_adds_a_webhook_from_the_page_and_deletes_it_after_confirming(
    client, cast, receiver
):
    from otomat.accounts.models import AuditEvent

    client.force_login(cast.owner)
    response = client.post(
        reverse("hooks:new"),
        {"url": receiver.url, "events": ["lead.created", "incident.opened"], "description": "CRM"},
    )
    hook = Endpoint.objects.get()
    assert response.status_code == 302 and hook.account is None
    assert hook.secret.startswith("whsec_")
    page = client.get(reverse("hooks:detail", args=[hook.pk])).content.decode()
    assert "Nothing sent yet" in page
    assert (
        "Delete the webhook" in client.get(reverse("hooks:delete", args=[hook.pk])).content.decode()
    )
    old = hook.secret
    client.post(reverse("hooks:roll", args=[hook.pk]))
    hook.refresh_from_db()
    assert hook.secret != old
    client.post(reverse("hooks:delete", args=[hook.pk]))
    assert not Endpoint.objects.exists()
    assert list(
        AuditEvent.objects.filter(action__startswith="webhook.").values_list("action", flat=True)
    ) == ["webhook.deleted", "webhook.secret_rolled", "webhook.created"]


@pytest.mark.parametrize("language", ["id", "pl"])
def test_the_pages_speak_the_readers_language(client, cast, language):
    cast.alice.language = language
    cast.alice.save()
    client.force_login(cast.alice)
    page = client.get(reverse("hooks:list")).content.decode()
    assert "No webhooks yet" not in page and "Add a webhook" not in page
