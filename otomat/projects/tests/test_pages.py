"""The public pages with the test client: the estimator's live range, storing an estimate,
leaving a contact (a lead, with the owner's notice queued), reopening by link, the contact
form; and what bots and floods get (a honeypot, a per-address limit, size limits)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from otomat.accounts.models import AuditEvent
from otomat.notify.models import Notification
from otomat.projects.models import Estimate, Lead

ESTIMATOR = "/projects/estimate/"
PREVIEW = "/projects/estimate/preview/"


def contact(**extra):
    return {
        "name": "Marta Nowak",
        "email": "Marta@Example.PL",
        "company": "Domki nad jeziorem",
        **extra,
    }


def test_the_estimator_page_shows_the_options_and_the_base_range(client, options):
    page = client.get(ESTIMATOR)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Online shop" in text and "Needs: Online shop." in text
    assert "1–2 weeks" in text
    assert "PLN\xa03,000–5,000" in text


def test_it_speaks_polish_to_a_polish_visitor(client, options):
    page = client.get(ESTIMATOR, headers={"accept-language": "pl"})
    text = page.content.decode()
    assert "Wyceń swój projekt" in text
    assert "Sklep internetowy" in text
    assert "3000–5000\xa0zł".replace("3000", "3\xa0000").replace("5000", "5\xa0000") in text


def test_the_range_updates_as_options_are_picked(client, options):
    answer = client.post(PREVIEW, {"opt-shop": "1", "opt-payments": "1", "opt-languages": "2"})
    assert answer.status_code == 200
    text = answer.content.decode()
    assert 'id="range"' in text
    assert "6–10.5 weeks" in text
    assert "PLN\xa021,000–36,000" in text
    assert Estimate.objects.count() == 0  # a preview stores nothing


def test_a_preview_names_a_missing_dependency(client, options):
    answer = client.post(PREVIEW, {"opt-payments": "1"})
    assert answer.status_code == 200  # HTMX swaps in successful answers only
    assert 'role="alert"' in answer.content.decode()
    assert "“Online payments” needs “Online shop”: pick it too." in answer.content.decode()


def test_without_scripts_recalculate_shows_the_range_on_the_page(client, options):
    page = client.post(ESTIMATOR, {"opt-booking": "1", "action": "preview"})
    assert page.status_code == 200
    assert "3–5 weeks" in page.content.decode()
    assert "checked" in page.content.decode()
    assert Estimate.objects.count() == 0


def test_save_stores_the_estimate_and_opens_its_link(client, options):
    answer = client.post(ESTIMATOR, {"opt-shop": "1", "action": "save"})
    estimate = Estimate.objects.get()
    assert answer.status_code == 302
    assert answer["Location"] == f"/projects/e/{estimate.token}/"
    assert estimate.lead is None
    page = client.get(answer["Location"])
    assert "4–7 weeks, PLN\xa015,000–25,000" in page.content.decode()
    assert "Send my estimate" in page.content.decode()


def test_sending_makes_a_lead_with_its_estimate_and_tells_the_owner(client, cast, options):
    answer = client.post(
        ESTIMATOR,
        {
            "opt-booking": "1",
            "opt-shop": "1",
            "opt-payments": "1",
            **contact(phone="+48 600 100 200", message="Domki, rezerwacje i płatności"),
            "timezone": "Europe/Warsaw",
            "action": "send",
        },
        headers={"accept-language": "pl"},
    )
    lead = Lead.objects.get()
    estimate = Estimate.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/projects/e/{estimate.token}/"
    assert estimate.lead == lead
    assert (lead.source, lead.status, lead.language, lead.timezone) == (
        "estimator",
        "new",
        "pl",
        "Europe/Warsaw",
    )
    assert lead.email == "marta@example.pl"
    assert [line["key"] for line in estimate.lines] == ["_base", "shop", "payments", "booking"]
    assert estimate.lines[1]["title"] == "Sklep internetowy"
    notice = Notification.objects.get(user=cast.owner, kind="projects/lead_received")
    assert notice.channel == "email"
    assert "Marta Nowak" in notice.subject
    assert "7–11.5 weeks, PLN 24,000–40,000" in notice.subject  # in the owner's English
    assert "+48 600 100 200" in notice.body
    assert reverse("projects:lead", args=[lead.pk]) in notice.body
    assert not Notification.objects.filter(user=cast.alice).exists()
    event = AuditEvent.objects.get(action="projects.lead_received")
    assert event.target_id == str(lead.pk) and event.ip == "127.0.0.1"
    page = client.get(answer["Location"], headers={"accept-language": "pl"})
    assert "Mamy je, Marta Nowak" in page.content.decode()


def test_the_owner_hears_by_telegram_too_once_linked(client, cast, options, settings):
    from otomat.notify.models import TelegramLink

    settings.OWNER_BOT_TOKEN = "123:abc"
    TelegramLink.objects.create(user=cast.owner, chat_id=42)
    client.post(ESTIMATOR, {"opt-shop": "1", **contact(), "action": "send"})
    telegram = Notification.objects.get(user=cast.owner, channel="telegram")
    assert telegram.headers["reply_markup"]["inline_keyboard"][0][0]["url"].endswith(
        reverse("projects:lead", args=[Lead.objects.get().pk])
    )


def test_a_saved_estimate_is_sent_later_from_its_page(client, cast, options):
    client.post(ESTIMATOR, {"opt-website": "1", "action": "save"})
    estimate = Estimate.objects.get()
    url = f"/projects/e/{estimate.token}/"
    answer = client.post(url, contact())
    assert answer.status_code == 302
    estimate.refresh_from_db()
    assert estimate.lead.name == "Marta Nowak"
    # a second send of the same estimate changes nothing
    client.post(url, contact(name="Someone Else"))
    assert Lead.objects.count() == 1


def test_bad_contact_details_are_refused_and_nothing_is_stored(client, options):
    answer = client.post(
        ESTIMATOR, {"opt-shop": "1", "name": "", "email": "not-an-email", "action": "send"}
    )
    assert answer.status_code == 400
    text = answer.content.decode()
    assert "This field is required." in text and "Enter a valid email address." in text
    assert "checked" in text  # what was picked stays picked
    assert not Lead.objects.exists() and not Estimate.objects.exists()


def test_a_missing_dependency_on_send_is_refused(client, options):
    answer = client.post(ESTIMATOR, {"opt-payments": "1", **contact(), "action": "send"})
    assert answer.status_code == 400
    assert "needs “Online shop”" in answer.content.decode()
    assert not Lead.objects.exists() and not Estimate.objects.exists()


def test_an_unknown_option_or_quantity_is_refused(client, options):
    for data in ({"opt-teleporter": "1"}, {"opt-languages": "99"}, {"opt-languages": "x"}):
        answer = client.post(ESTIMATOR, {**data, **contact(), "action": "send"})
        assert answer.status_code == 400
    assert not Lead.objects.exists() and not Estimate.objects.exists()


def test_oversized_text_is_refused(client, options):
    answer = client.post(ESTIMATOR, {**contact(message="x" * 5001), "action": "send"})
    assert answer.status_code == 400
    assert not Lead.objects.exists()
    answer = client.post(ESTIMATOR, {**contact(name="x" * 201), "action": "send"})
    assert answer.status_code == 400


def test_the_honeypot_thanks_a_bot_and_keeps_nothing(client, cast, options):
    answer = client.post(
        ESTIMATOR,
        {"opt-shop": "1", **contact(), "website": "http://spam.example", "action": "send"},
    )
    assert answer.status_code == 200 and "Thank you" in answer.content.decode()
    answer = client.post("/projects/contact/", {**contact(message="Buy"), "website": "x"})
    assert answer.status_code == 200
    assert not Lead.objects.exists() and not Estimate.objects.exists()
    assert not Notification.objects.exists()


def test_one_address_sends_a_few_leads_an_hour_then_gets_a_429(client, options, settings):
    settings.PROJECTS_LEADS_PER_HOUR = 2
    for n in range(2):
        answer = client.post(ESTIMATOR, {**contact(email=f"m{n}@example.pl"), "action": "send"})
        assert answer.status_code == 302
    answer = client.post(ESTIMATOR, {**contact(email="m3@example.pl"), "action": "send"})
    assert answer.status_code == 429
    assert "Please try again in 60 minutes" in answer.content.decode()
    answer = client.post("/projects/contact/", contact(message="Hello"))
    assert answer.status_code == 429
    assert Lead.objects.count() == 2
    # another address is still served
    answer = client.post("/projects/contact/", contact(message="Hello"), REMOTE_ADDR="10.0.0.9")
    assert answer.status_code == 200
    assert Lead.objects.count() == 3


def test_saved_estimates_are_limited_per_address_too(client, options, settings):
    settings.PROJECTS_ESTIMATES_PER_HOUR = 1
    assert client.post(ESTIMATOR, {"action": "save"}).status_code == 302
    assert client.post(ESTIMATOR, {"action": "save"}).status_code == 429
    assert Estimate.objects.count() == 1


def test_the_contact_form_makes_a_contact_lead(client, cast, options):
    answer = client.post(
        "/projects/contact/", contact(message="Integracja z Allegro zamiast Base Linkera")
    )
    assert answer.status_code == 200 and "Thank you" in answer.content.decode()
    lead = Lead.objects.get()
    assert lead.source == "contact" and lead.estimates.count() == 0
    assert Notification.objects.filter(user=cast.owner, kind="projects/lead_received").exists()


def test_the_contact_form_needs_a_message(client, options):
    answer = client.post("/projects/contact/", contact())
    assert answer.status_code == 400
    assert not Lead.objects.exists()


def test_an_unknown_estimate_link_is_a_404(client, options):
    assert client.get("/projects/e/nope/").status_code == 404
    assert client.get("/projects/e/" + "x" * 24 + "/").status_code == 404


def test_a_preview_is_post_only(client, options):
    assert client.get(PREVIEW).status_code == 405


def test_no_options_yet_says_so(client, db):
    page = client.get(ESTIMATOR)
    assert page.status_code == 200
    assert "No options are offered yet." in page.content.decode()


@pytest.mark.parametrize("path", ["/projects/mine/", "/projects/manage/leads/"])
def test_private_pages_need_a_login(client, db, path):
    answer = client.get(path)
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]


def test_a_new_lead_is_an_event_line_on_the_console(client, options, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="otomat.events")
    client.post(ESTIMATOR, {"opt-shop": "1", **contact(), "action": "send"})
    lines = [r.getMessage() for r in caplog.records if r.name == "otomat.events"]
    assert lines == ["new lead (estimator): Domki nad jeziorem"]


@pytest.mark.parametrize(
    ("language", "subject", "line"),
    [
        ("pl", "Nowe zapytanie: Marta Nowak (4–7 tygodni, 15 000–25 000 zł)", "Telefon: +48 600"),
        ("id", "Prospek baru: Marta Nowak (4–7 minggu, PLN 15.000–25.000)", "Telepon: +48 600"),
    ],
)
def test_the_owners_notice_is_in_the_owners_language(
    client, cast, options, language, subject, line
):
    cast.owner.language = language
    cast.owner.save()
    client.post(ESTIMATOR, {"opt-shop": "1", **contact(phone="+48 600"), "action": "send"})
    notice = Notification.objects.get(user=cast.owner)
    assert notice.subject == subject
    assert line in notice.body
