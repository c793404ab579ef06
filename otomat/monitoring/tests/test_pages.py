"""The owner's monitoring pages: rules, incidents, maintenance and silences. Bad input gets a
clear error and changes nothing; customers get 404; staff actions are in the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from otomat.accounts.models import AuditEvent
from otomat.monitoring import alerts, incidents
from otomat.monitoring.models import (
    AlertPreference,
    AlertRule,
    Incident,
    IncidentUpdate,
    Maintenance,
    Silence,
)


def local(dt) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def incident(cast):
    return incidents.open_incident(title="Disk full", severity="critical", summary="93 %")


STAFF_PAGES = [
    ("monitoring:rules", []),
    ("monitoring:incidents", []),
    ("monitoring:incident_new", []),
    ("monitoring:windows", []),
]


@pytest.mark.parametrize("name,args", STAFF_PAGES)
def test_customers_get_404_on_staff_pages(client, cast, name, args):
    client.force_login(cast.alice)
    assert client.get(reverse(name, args=args)).status_code == 404
    client.force_login(cast.staff)
    assert client.get(reverse(name, args=args)).status_code == 200


def test_customers_cannot_see_or_act_on_an_incident(client, cast, incident):
    client.force_login(cast.alice)
    url = reverse("monitoring:incident", args=[incident.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "acknowledge"}).status_code == 404
    assert client.post(reverse("monitoring:rule_edit", args=["instance"]), {}).status_code == 404
    incident.refresh_from_db()
    assert incident.status == Incident.Status.OPEN


def test_the_incident_list_shows_open_incidents_first(client, cast):
    old = incidents.open_incident(title="Old outage", severity="minor")
    incidents.resolve(old, actor=cast.owner)
    incidents.open_incident(title="Current outage", severity="major")
    client.force_login(cast.staff)
    page = client.get(reverse("monitoring:incidents")).content.decode()
    assert page.index("Current outage") < page.index("Old outage")
    page = client.get(reverse("monitoring:incidents") + "?status=resolved").content.decode()
    assert "Old outage" in page and "Current outage" not in page


def test_only_the_owner_changes_a_rule_and_bad_values_change_nothing(client, cast):
    url = reverse("monitoring:rule_edit", args=["instance"])
    client.force_login(cast.staff)
    assert client.get(url).status_code == 403 or client.get(url).status_code == 404
    client.force_login(cast.owner)
    good = {
        "enabled": "on",
        "severity": "critical",
        "failure_threshold": "2",
        "recovery_threshold": "3",
        "grace_seconds": "30",
        "repeat_seconds": "600",
        "flap_window_seconds": "900",
        "flap_changes": "4",
        "group_by": "group",
        "open_incident": "on",
    }
    for field, bad in [
        ("failure_threshold", "0"),
        ("recovery_threshold", "abc"),
        ("repeat_seconds", "5"),
        ("flap_changes", "1"),
        ("flap_window_seconds", "10"),
        ("grace_seconds", "999999"),
        ("severity", "apocalyptic"),
    ]:
        response = client.post(url, {**good, field: bad})
        assert response.status_code == 200
        assert "has-error" in response.content.decode(), field
        assert not AlertRule.objects.exists(), field
    response = client.post(url, good)
    assert response.status_code == 302
    rule = AlertRule.objects.get(check_name="instance")
    assert (rule.failure_threshold, rule.recovery_threshold, rule.notify_customers) == (2, 3, False)
    assert alerts.rules()["instance"].grace_seconds == 30
    assert AuditEvent.objects.filter(action="monitoring.rule_changed", actor=cast.owner).exists()
    assert client.get(reverse("monitoring:rule_edit", args=["nonsense"])).status_code == 404


def test_a_manual_incident_needs_a_title_and_a_public_title_when_public(client, cast):
    client.force_login(cast.staff)
    url = reverse("monitoring:incident_new")
    assert client.post(url, {"title": "", "severity": "major"}).status_code == 200
    response = client.post(url, {"title": "Payments slow", "severity": "major", "public": "on"})
    assert "A public incident needs a public title." in response.content.decode()
    assert client.post(url, {"title": "x", "severity": "nope"}).status_code == 200
    assert not Incident.objects.exists()
    response = client.post(
        url,
        {
            "title": "Payments slow",
            "severity": "major",
            "summary": "The gateway answers in 30 s.",
            "accounts": [cast.alice.account.pk],
        },
    )
    incident = Incident.objects.get()
    assert response.url == reverse("monitoring:incident", args=[incident.pk])
    assert incident.source == Incident.Source.MANUAL and incident.opened_by == cast.staff
    assert list(incident.accounts.all()) == [cast.alice.account]
    assert AuditEvent.objects.filter(action="monitoring.incident_opened", actor=cast.staff).exists()
    # The owner hears of it; Alice's account is affected but she did not ask to be told.
    from otomat.notify.models import Notification

    told = Notification.objects.get(user=cast.owner, channel="email")
    assert told.subject == "Incident: Payments slow"
    assert not Notification.objects.filter(user=cast.alice).exists()


def test_the_incident_page_posts_updates_acknowledges_resolves_and_keeps_a_postmortem(
    client, cast, incident
):
    client.force_login(cast.staff)
    url = reverse("monitoring:incident", args=[incident.pk])
    assert "Disk full" in client.get(url).content.decode()

    # Bad input: an empty update, a resolve without the confirmation, an unknown action.
    assert client.post(url, {"action": "update", "text": "  "}).status_code == 400
    response = client.post(url, {"action": "resolve", "note": "done"})
    assert response.status_code == 400 and "Tick the box to confirm." in response.content.decode()
    assert client.post(url, {"action": "explode"}).status_code == 400
    assert client.post(url, {"action": "postmortem", "text": ""}).status_code == 400
    incident.refresh_from_db()
    assert incident.status == Incident.Status.OPEN and not incident.postmortem
    assert list(incident.updates.values_list("kind", flat=True)) == ["opened"]

    client.post(url, {"action": "update", "text": "Cleaning old logs.", "public": "on"})
    client.post(url, {"action": "acknowledge"})
    again = client.post(url, {"action": "acknowledge"})
    assert again.status_code == 400  # only an open incident can be acknowledged
    client.post(url, {"action": "resolve", "note": "Logs rotated.", "confirm": "on"})
    client.post(url, {"action": "postmortem", "text": "Log rotation was off since the upgrade."})
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.resolved_by == cast.staff
    assert incident.acknowledged_by == cast.staff
    assert incident.postmortem.startswith("Log rotation")
    kinds = list(incident.updates.values_list("kind", flat=True))
    assert kinds == ["opened", "update", "acknowledged", "resolved", "postmortem"]
    assert IncidentUpdate.objects.get(kind="update").public
    response = client.post(url, {"action": "resolve", "confirm": "on"})
    assert response.status_code == 400  # resolved already
    actions = set(AuditEvent.objects.filter(actor=cast.staff).values_list("action", flat=True))
    assert {
        "monitoring.incident_update",
        "monitoring.incident_acknowledged",
        "monitoring.incident_resolved",
        "monitoring.incident_postmortem",
    } <= actions


def test_maintenance_windows_are_validated_and_end_early(client, cast):
    client.force_login(cast.staff)
    url = reverse("monitoring:windows")
    now = timezone.now()
    base = {
        "action": "maintenance",
        "m-title": "Database upgrade",
        "m-starts_at": local(now),
        "m-ends_at": local(now + timedelta(hours=1)),
        "m-scope": "all",
        "m-public": "on",
    }
    for changes, message in [
        ({"m-ends_at": local(now - timedelta(hours=1))}, "The end must come after the start."),
        ({"m-title": ""}, "This field is required."),
        ({"m-scope": "instance", "m-scope_value": "not-a-uuid"}, "No instance has this id."),
        ({"m-scope": "account", "m-scope_value": "999"}, "No customer has this id."),
        ({"m-scope": "group"}, "Say which host, version, instance or customer."),
        ({"m-ends_at": local(now + timedelta(days=30))}, "A window lasts two weeks at most."),
    ]:
        response = client.post(url, {**base, **changes})
        assert response.status_code == 400
        assert message in response.content.decode(), message
    assert not Maintenance.objects.exists()
    assert client.post(url, base).status_code == 302
    window = Maintenance.objects.get()
    assert window.created_by == cast.staff and window.scope_value == ""
    end = reverse("monitoring:window_end", args=["maintenance", window.pk])
    assert client.post(end).status_code == 302
    window.refresh_from_db()
    assert window.ended_early_at is not None
    client.post(end)  # twice: nothing more
    assert AuditEvent.objects.filter(action="monitoring.maintenance_ended").count() == 1
    assert client.post(reverse("monitoring:window_end", args=["other", 1])).status_code == 404
    assert AuditEvent.objects.filter(action="monitoring.maintenance_created").exists()


def test_silences_are_validated_and_end_early(client, cast):
    client.force_login(cast.staff)
    url = reverse("monitoring:windows")
    base = {
        "action": "silence",
        "s-check_name": "host.disk",
        "s-reason": "new disk",
        "s-minutes": "60",
    }
    for changes in [
        {"s-minutes": "0"},
        {"s-minutes": "99999"},
        {"s-reason": ""},
        {"s-check_name": "no.such.check"},
        {"s-check_name": "", "s-match": ""},
    ]:
        assert client.post(url, {**base, **changes}).status_code == 400, changes
    assert not Silence.objects.exists()
    assert client.post(url, base).status_code == 302
    silence = Silence.objects.get()
    assert silence.check_name == "host.disk" and silence.ends_at > timezone.now()
    client.post(reverse("monitoring:window_end", args=["silence", silence.pk]))
    silence.refresh_from_db()
    assert silence.ended_early_at is not None
    assert AuditEvent.objects.filter(action="monitoring.silence_created", actor=cast.staff).exists()


def test_a_customer_opts_in_to_hear_of_their_bots(client, cast):
    client.force_login(cast.alice)
    url = reverse("monitoring:preferences")
    assert "Problem alerts" in client.get(url).content.decode()
    assert not AlertPreference.objects.get(user=cast.alice).instance_alerts  # default off
    assert client.post(url, {"instance_alerts": "maybe"}).status_code == 400
    assert not AlertPreference.objects.get(user=cast.alice).instance_alerts
    client.post(url, {"instance_alerts": "on"})
    assert AlertPreference.objects.get(user=cast.alice).instance_alerts
    client.force_login(cast.staff)
    assert client.get(url).status_code == 404


def test_the_pages_and_the_owner_message_speak_the_persons_language(client, cast, incident):
    from otomat.monitoring import notices

    cast.staff.language = "pl"
    cast.staff.save()
    client.force_login(cast.staff)
    page = client.get(reverse("monitoring:incident", args=[incident.pk])).content.decode()
    assert "Oś czasu" in page and "Potwierdź" in page
    from django.utils import translation

    with translation.override("id"):
        markup = notices._buttons(incident)
    assert [b["text"] for b in markup["inline_keyboard"][0]] == ["Akui", "Buka"]


def test_an_incident_is_published_only_with_a_public_title(client, cast, incident):
    client.force_login(cast.staff)
    url = reverse("monitoring:incident", args=[incident.pk])
    response = client.post(url, {"action": "public", "public": "on", "public_title": "  "})
    assert response.status_code == 400
    assert "A public incident needs a public title." in response.content.decode()
    incident.refresh_from_db()
    assert not incident.public
    client.post(url, {"action": "public", "public": "on", "public_title": "Slow answers"})
    incident.refresh_from_db()
    assert incident.public and incident.public_title == "Slow answers"
    assert AuditEvent.objects.filter(action="monitoring.incident_public").exists()
