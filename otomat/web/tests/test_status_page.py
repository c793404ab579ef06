"""The public status page and badge: each listed product's state from its instances in
aggregate, public incidents by their public title with public updates only, public maintenance,
90 days of uptime per product, translated; and no customer's private data anywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from otomat.billing.models import BillingSettings
from otomat.instances.models import Instance
from otomat.monitoring import incidents
from otomat.monitoring.models import Alert, Maintenance, Severity
from otomat.monitoring.models_uptime import UptimeDay, UptimeHour
from otomat.web.status import product_history

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
S = Instance.State
TOKEN = "123456789:AAEsecretSECRETsecretSECRETsecret12"


@pytest.fixture(autouse=True)
def _no_cached_history():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def bot(cast, greeter, name, account=None, **fields):
    fields.setdefault("state", S.RUNNING)
    fields.setdefault("desired", Instance.Desired.RUNNING)
    return Instance.objects.create(
        account=account or cast.alice.account,
        version=greeter,
        name=name,
        secrets={"bot_token": TOKEN},
        config={"welcome": "Hello from Alice's private welcome"},
        bot_id="123456789",
        **fields,
    )


def page(client, **headers) -> str:
    response = client.get(reverse("web:status"), **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_a_product_is_operational_degraded_or_in_an_outage(client, cast, greeter, clock):
    bots = [bot(cast, greeter, f"Greeter {i}") for i in range(4)]
    bot(cast, greeter, "Parked", state=S.STOPPED, desired=Instance.Desired.STOPPED)
    bot(cast, greeter, "Unpaid", state=S.SUSPENDED, suspension_source="billing")
    assert 'data-status="operational"' in page(client)
    # One of four down (a crash loop): degraded. Stopped and suspended bots do not count.
    Instance.objects.filter(pk=bots[0].pk).update(state=S.FAILED)
    html = page(client)
    assert 'data-product="greeter" data-status="degraded"' in html
    assert "Some bots have problems" in html
    # A second bot running but flagged at Telegram (revoked token): half down, an outage.
    Alert.objects.create(
        check_name="telegram",
        subject=f"instance:{bots[1].pk}",
        state=Alert.State.FIRING,
        instance=bots[1],
    )
    html = page(client)
    assert 'data-product="greeter" data-status="outage"' in html
    assert "Major outage" in html
    badge = client.get(reverse("web:status_badge"))
    assert badge["Content-Type"].startswith("image/svg+xml")
    assert "Outage" in badge.content.decode()
    one = client.get(reverse("web:status_badge"), {"product": "greeter"}).content.decode()
    assert "Greeter Bot" in one and "Outage" in one


def test_the_badge_refuses_an_unknown_or_unlisted_product(client, cast, greeter):
    assert client.get(reverse("web:status_badge"), {"product": "nope"}).status_code == 404
    assert client.get(reverse("web:status_badge"), {"product": "<script>"}).status_code == 404
    greeter.product.is_listed = False
    greeter.product.save()
    assert client.get(reverse("web:status_badge"), {"product": "greeter"}).status_code == 404
    assert client.post(reverse("web:status_badge")).status_code == 405
    assert client.post(reverse("web:status")).status_code == 405
    assert "greeter" not in page(client)


def test_the_status_page_and_badge_show_no_private_data(client, cast, greeter, clock):
    settings = BillingSettings.get()
    settings.seller_name = "Demo Bot Studio"
    settings.save()
    alice_bot = bot(cast, greeter, "Alice Secret Movie Bot")
    charlie_bot = bot(cast, greeter, "Charlie Hidden Helper", account=cast.charlie.account)
    Instance.objects.filter(pk=charlie_bot.pk).update(state=S.FAILED)
    Alert.objects.create(
        check_name="instance",
        subject=f"instance:{alice_bot.pk}",
        state=Alert.State.FIRING,
        instance=alice_bot,
        account=cast.alice.account,
        summary="Alice Secret Movie Bot of alice@example.com",
        details=TOKEN,
    )
    public = incidents.open_incident(
        title="Charlie Hidden Helper of Charlie Corp crashes",
        severity=Severity.MAJOR,
        summary="charlie@example.com reported it",
        accounts=[cast.charlie.account],
        instances=[charlie_bot],
        actor=cast.owner,
    )
    public.public, public.public_title = True, "Greeter Bot answers slowly"
    public.save()
    incidents.post_update(
        public, "We are restarting the greeter hosts.", actor=cast.owner, public=True
    )
    incidents.post_update(public, "Alice Anders called about it", actor=cast.owner, public=False)
    incidents.open_incident(
        title="Private trouble of Alice's Bots", severity=Severity.MINOR, actor=cast.owner
    )
    Maintenance.objects.create(
        title="Database upgrade",
        description="A few minutes without answers.",
        starts_at=T0 + timedelta(hours=2),
        ends_at=T0 + timedelta(hours=3),
        scope=Maintenance.Scope.INSTANCE,
        scope_value=str(alice_bot.pk),
        public=True,
    )
    Maintenance.objects.create(
        title="Bob Berg's private window",
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        public=False,
    )
    html = page(client)
    assert "Demo Bot Studio" in html
    assert "Greeter Bot answers slowly" in html
    assert "We are restarting the greeter hosts." in html
    assert "Database upgrade" in html and "A few minutes without answers." in html
    badge = client.get(reverse("web:status_badge")).content.decode()
    badge += client.get(reverse("web:status_badge"), {"product": "greeter"}).content.decode()
    for text in (html, badge):
        for secret in (
            "Alice",
            "alice@example.com",
            "Bob",
            "bob@example.com",
            "Charlie",
            "charlie@example.com",
            "staff@example.com",
            "owner@example.com",
            "Alice Secret Movie Bot",
            "Charlie Hidden Helper",
            "Alice's Bots",
            "Charlie Corp",
            TOKEN,
            "AAEsecret",
            "123456789",
            str(alice_bot.pk),
            str(charlie_bot.pk),
            "Private trouble",
            "private window",
            "private welcome",
        ):
            assert secret not in text, secret


def test_the_status_page_speaks_the_visitors_language(client, cast, greeter, clock):
    bot(cast, greeter, "Greeter")
    assert "Operational" in page(client, HTTP_ACCEPT_LANGUAGE="en")
    html = page(client, HTTP_ACCEPT_LANGUAGE="id")
    assert 'lang="id"' in html and "Beroperasi" in html
    html = page(client, HTTP_ACCEPT_LANGUAGE="pl")
    assert 'lang="pl"' in html and "Działa" in html
    badge = client.get(reverse("web:status_badge"), HTTP_ACCEPT_LANGUAGE="pl").content.decode()
    assert "Działa" in badge


def test_uptime_history_per_product_sums_its_instances_days_and_todays_hours(cast, greeter, clock):
    a, b = bot(cast, greeter, "A"), bot(cast, greeter, "B")
    yesterday = date(2026, 3, 9)
    UptimeDay.objects.create(instance=a, day=yesterday, up_seconds=86400)
    UptimeDay.objects.create(instance=b, day=yesterday, up_seconds=43200, down_seconds=43200)
    today = datetime(2026, 3, 10, 3, tzinfo=UTC)
    UptimeHour.objects.create(instance=a, hour=today, up_seconds=3600, end="up")
    UptimeHour.objects.create(instance=b, hour=today, down_seconds=1200, up_seconds=2400, end="up")
    # A rolled-up day's hours are not counted twice.
    UptimeHour.objects.create(
        instance=a, hour=datetime(2026, 3, 9, 5, tzinfo=UTC), down_seconds=3600, end="down"
    )
    history = product_history([greeter.product], T0)[greeter.product.pk]
    assert len(history) == 90
    assert history[-1][0] == date(2026, 3, 10)
    assert str(history[-2][1]) == "75.00"
    assert str(history[-1][1]) == "83.33"
    assert history[0][1] is None


def test_only_a_visitors_copy_of_the_page_may_be_cached(client, cast, greeter):
    assert "max-age=30" in client.get(reverse("web:status"))["Cache-Control"]
    client.force_login(cast.alice)
    response = client.get(reverse("web:status"))
    assert "private" in response["Cache-Control"] and "max-age" not in response["Cache-Control"]
    assert "alice@example.com" in response.content.decode() or "Alice" in response.content.decode()


def test_the_uptime_history_is_read_once_per_cache_period(client, cast, greeter, clock):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a = bot(cast, greeter, "A")
    UptimeDay.objects.create(instance=a, day=date(2026, 3, 9), up_seconds=86400)
    with CaptureQueriesContext(connection) as first:
        page(client)
    with CaptureQueriesContext(connection) as second:
        page(client)
    history_reads = [q for q in first.captured_queries if "uptime" in q["sql"].lower()]
    assert len(history_reads) == 2
    assert not [q for q in second.captured_queries if "uptime" in q["sql"].lower()]
    # The states stay live.
    Instance.objects.filter(pk=a.pk).update(state=S.FAILED)
    assert 'data-status="outage"' in page(client)
