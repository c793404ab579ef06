"""Headless Chromium: the owner opens the overview, follows an open incident to its page, posts
a public update and acknowledges it; the update shows on the public status page; the customer
sees their bot's health on its page. In English, Indonesian and Polish, at desktop width and at
390 px (screenshots under $OTOMAT_SCREENSHOTS)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from otomat.instances.models import Instance, InstanceEvent
from otomat.monitoring import incidents
from otomat.monitoring.models import Incident, IncidentUpdate, Severity
from otomat.monitoring.models_uptime import TelegramStatus, UptimeDay
from otomat.testing.browser import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = {"desktop": 1200, "phone": 390}
# The texts the test looks for, per language (everything else is found by structure).
TEXTS = {
    "en": {"overview": "Overview", "answering": "Answering"},
    "id": {"overview": "Ringkasan", "answering": "Menjawab"},
    "pl": {"overview": "Przegląd", "answering": "Odpowiada"},
}


def _both_widths(page, name: str) -> None:
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        shot(page, f"{name}-{label}")
        # Nothing sticks out sideways on a phone.
        if label == "phone":
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{name}: {overflow}px wider than the screen"
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


@pytest.fixture(autouse=True)
def _no_cached_history():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def scene(cast, greeter):
    now = timezone.now()
    running = Instance.objects.create(
        account=cast.alice.account,
        version=greeter,
        name="Movie Search Bot",
        state=Instance.State.RUNNING,
        desired=Instance.Desired.RUNNING,
        last_update_at=now - timedelta(minutes=3),
        created_at=now - timedelta(days=20),
    )
    TelegramStatus.objects.create(
        instance=running, checked_at=now, ok=True, username="movie_search_bot"
    )
    for d in range(1, 12):
        UptimeDay.objects.create(
            instance=running,
            day=(now - timedelta(days=d)).date(),
            up_seconds=86400 - (3600 if d == 4 else 0),
            down_seconds=3600 if d == 4 else 0,
            errors=2 if d == 4 else 0,
        )
    for i in range(3):
        broken = Instance.objects.create(
            account=cast.charlie.account,
            version=greeter,
            name=f"Charlie's helper {i}",
            state=Instance.State.FAILED,
            desired=Instance.Desired.RUNNING,
        )
        InstanceEvent.objects.create(
            instance=broken,
            at=now - timedelta(days=i + 1),
            from_state=Instance.State.RUNNING,
            to_state=Instance.State.FAILED,
            cause="crash loop",
        )
    return running


@pytest.mark.parametrize("lang", ["en", "id", "pl"])
def test_the_owner_follows_an_incident_from_the_overview(
    browser_page, live_server, cast, scene, lang
):
    from playwright.sync_api import expect

    texts = TEXTS[lang]
    incident = incidents.open_incident(
        title="Movie Search Bot crashes at night",
        severity=Severity.CRITICAL,
        summary="KeyError 'token' in the search handler",
        instances=[scene],
        actor=None,
    )
    cast.owner.language = lang
    cast.owner.save()
    page = browser_page
    log_in(page, live_server.url, cast.owner.email, cast.password)
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name=texts["overview"], exact=True)).to_be_visible()
    expect(page.locator('.overview-figure[data-state="failed"] .overview-number')).to_have_text("3")
    expect(page.locator('.overview-figure[data-state="running"] svg')).to_be_visible()
    _both_widths(page, f"overview-01-home-{lang}")

    page.locator("#overview-incidents").get_by_role("link", name="Movie Search Bot crashes").click()
    expect(page.get_by_role("heading", name=f"#{incident.pk} Movie Search Bot")).to_be_visible()
    update = page.locator("form:has(input[name=action][value=update])")
    update.locator("textarea[name=text]").fill("We found the cause and are deploying a fix.")
    update.locator("input[name=public]").check()
    update.get_by_role("button").click()
    expect(page.locator("#timeline")).to_contain_text("We found the cause")
    page.locator("form:has(input[name=action][value=acknowledge]) button").click()
    with translation.override(lang):
        acknowledged = str(Incident.Status.ACKNOWLEDGED.label)
    expect(page.locator("#incident-status")).to_have_text(acknowledged)
    _both_widths(page, f"overview-02-incident-{lang}")
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert incident.acknowledged_by == cast.owner
    assert IncidentUpdate.objects.filter(incident=incident, public=True).exists()

    # The overview polls: the acknowledged incident no longer counts as unacknowledged.
    page.goto(f"{live_server.url}/")
    expect(page.locator("#overview-incidents .check-error")).to_have_count(0)
    if lang == "en":
        # Live: an incident opened meanwhile appears without reloading (the fragment polls).
        incidents.open_incident(title="Disk almost full", severity=Severity.MAJOR, actor=None)
        expect(page.locator("#overview-incidents")).to_contain_text(
            "Disk almost full", timeout=25_000
        )

    # Published: the status page shows it by its public title with the public update.
    Incident.objects.filter(pk=incident.pk).update(public=True, public_title="Slow answers")
    page.context.clear_cookies()
    page.set_extra_http_headers({"Accept-Language": lang})
    page.goto(f"{live_server.url}/status/")
    expect(page.locator("#status-incidents")).to_contain_text("Slow answers")
    expect(page.locator("#status-incidents")).to_contain_text("We found the cause")
    assert "Movie Search Bot" not in page.content()
    assert "Charlie" not in page.content()
    _both_widths(page, f"overview-03-status-{lang}")

    # The customer's page of the bot: answering, uptime bars, @username and the chat link.
    cast.alice.language = lang
    cast.alice.save()
    page.set_extra_http_headers({"Accept-Language": "en"})  # log_in() reads the English form
    log_in(page, live_server.url, cast.alice.email, cast.password)
    page.goto(f"{live_server.url}/instances/{scene.pk}/")
    health = page.locator("#health")
    expect(health).to_contain_text(texts["answering"])
    expect(health).to_contain_text("@movie_search_bot")
    expect(
        health.locator("a[href$='/chat/movie_search_bot'], a[href='https://t.me/movie_search_bot']")
    ).to_have_count(1)
    health.scroll_into_view_if_needed()
    _both_widths(page, f"overview-04-instance-{lang}")
