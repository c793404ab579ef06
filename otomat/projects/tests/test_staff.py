"""Staff pages of leads (list with filters, detail with status, notes, assignee and the
customer account, entering one by hand) and the owner's estimator pages (options with
translations, dependencies without circles, ranges that start before they end; settings)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from otomat.accounts.models import Account, AuditEvent, User
from otomat.projects import leads
from otomat.projects.models import EstimatorOption, EstimatorSettings, Lead


def make_lead(**extra) -> Lead:
    fields = {"name": "Marta Nowak", "email": "marta@example.pl", "source": "estimator", **extra}
    return Lead.objects.create(**fields)


def test_the_list_filters_by_status_source_and_search(client, cast):
    make_lead(name="Marta Nowak", company="Domki")
    make_lead(name="Budi Santoso", email="budi@example.id", source="contact", status="contacted")
    client.force_login(cast.staff)
    page = client.get("/projects/manage/leads/")
    assert page.status_code == 200
    assert "Marta Nowak" in page.content.decode() and "Budi Santoso" in page.content.decode()
    text = client.get("/projects/manage/leads/?status=contacted").content.decode()
    assert "Budi Santoso" in text and "Marta Nowak" not in text
    text = client.get("/projects/manage/leads/?source=estimator").content.decode()
    assert "Marta Nowak" in text and "Budi Santoso" not in text
    text = client.get("/projects/manage/leads/?q=domki").content.decode()
    assert "Marta Nowak" in text and "Budi Santoso" not in text
    text = client.get("/projects/manage/leads/?q=nobody").content.decode()
    assert "No lead matches these filters." in text
    # unknown filter values are ignored, not an error
    assert client.get("/projects/manage/leads/?status=bogus&page=x").status_code == 200


def test_the_list_pages_and_says_when_empty(client, cast):
    client.force_login(cast.staff)
    assert "No leads yet." in client.get("/projects/manage/leads/").content.decode()
    Lead.objects.bulk_create(
        [Lead(name=f"Lead {n:02}", email=f"l{n}@example.com", source="manual") for n in range(30)]
    )
    first = client.get("/projects/manage/leads/").content.decode()
    assert "Page 1 of 2" in first
    assert "Page 2 of 2" in client.get("/projects/manage/leads/?page=2").content.decode()


def test_customers_and_outsiders_see_no_staff_page(client, cast):
    lead = make_lead()
    client.force_login(cast.alice)
    for path in (
        "/projects/manage/leads/",
        f"/projects/manage/leads/{lead.pk}/",
        "/projects/manage/options/",
        "/projects/manage/settings/",
    ):
        assert client.get(path).status_code == 404
    assert (
        client.post(
            f"/projects/manage/leads/{lead.pk}/action/", {"action": "status", "status": "won"}
        ).status_code
        == 404
    )
    assert Lead.objects.get().status == "new"


def test_staff_move_a_lead_and_the_history_says_who(client, cast):
    lead = make_lead()
    client.force_login(cast.staff)
    url = f"/projects/manage/leads/{lead.pk}/action/"
    assert client.post(url, {"action": "status", "status": "contacted"}).status_code == 302
    assert client.post(url, {"action": "status", "status": "contacted"}).status_code == 302
    lead.refresh_from_db()
    assert lead.status == "contacted"
    events = AuditEvent.objects.filter(action="projects.lead_status")
    assert [(e.actor, e.data) for e in events] == [(cast.staff, {"from": "new", "to": "contacted"})]
    page = client.get(f"/projects/manage/leads/{lead.pk}/").content.decode()
    assert "status New → Contacted" in page


def test_a_bad_action_changes_nothing(client, cast):
    lead = make_lead()
    client.force_login(cast.staff)
    url = f"/projects/manage/leads/{lead.pk}/action/"
    for data in (
        {"action": "status", "status": "bogus"},
        {"action": "assign", "assignee": str(cast.alice.pk)},
        {"action": "assign", "assignee": "nope"},
        {"action": "note", "body": "   "},
        {"action": "note", "body": "x" * 5001},
        {"action": "link", "account": "999999"},
        {"action": "explode"},
    ):
        assert client.post(url, data).status_code == 400, data
    lead.refresh_from_db()
    assert (lead.status, lead.assignee, lead.account) == ("new", None, None)
    assert not lead.lead_notes.exists()
    assert client.get(url).status_code == 405


def test_notes_and_the_assignee(client, cast):
    lead = make_lead()
    client.force_login(cast.owner)
    url = f"/projects/manage/leads/{lead.pk}/action/"
    client.post(url, {"action": "note", "body": "Called: wants Allegro first."})
    client.post(url, {"action": "assign", "assignee": str(cast.staff.pk)})
    lead.refresh_from_db()
    assert lead.assignee == cast.staff
    page = client.get(f"/projects/manage/leads/{lead.pk}/").content.decode()
    assert "Called: wants Allegro first." in page
    assert "assigned to staff@example.com" in page


def test_link_a_lead_to_an_account_or_create_one(client, cast):
    lead = make_lead(company="Domki nad jeziorem")
    client.force_login(cast.staff)
    url = f"/projects/manage/leads/{lead.pk}/action/"
    client.post(url, {"action": "link", "account": str(cast.alice.account.pk)})
    lead.refresh_from_db()
    assert lead.account == cast.alice.account
    client.post(url, {"action": "link", "account": ""})
    lead.refresh_from_db()
    assert lead.account is None

    with pytest.MonkeyPatch.context():
        answer = client.post(url, {"action": "create_account", "account_name": ""})
    assert answer.status_code == 302
    lead.refresh_from_db()
    account = Account.objects.get(name="Domki nad jeziorem")
    assert lead.account == account
    person = User.objects.get(email="marta@example.pl")
    assert account.responsible == person and not person.has_usable_password()
    # a second time: it already has one
    assert client.post(url, {"action": "create_account"}).status_code == 400
    assert Account.objects.filter(name="Domki nad jeziorem").count() == 1


def test_create_account_sends_the_password_link(cast, django_capture_on_commit_callbacks):
    lead = make_lead(language="pl")
    with django_capture_on_commit_callbacks(execute=True):
        leads.create_account_for(lead, actor=cast.staff)
    assert mail.outbox[-1].to == ["marta@example.pl"]
    assert User.objects.get(email="marta@example.pl").language == "pl"


def test_create_account_refuses_an_email_someone_has(client, cast):
    lead = make_lead(email="alice@example.com")
    with pytest.raises(leads.LeadError, match="link their account instead"):
        leads.create_account_for(lead, actor=cast.staff)
    assert Account.objects.count() == 2


def test_a_closed_account_cannot_be_linked(cast):
    account = cast.charlie.account
    Account.objects.filter(pk=account.pk).update(status="closed")
    account.refresh_from_db()
    with pytest.raises(leads.LeadError):
        leads.link_account(make_lead(), account, actor=cast.staff)


def test_staff_enter_a_lead_by_hand(client, cast):
    client.force_login(cast.staff)
    answer = client.post(
        "/projects/manage/leads/new/",
        {
            "name": "Budi Santoso",
            "email": "budi@example.id",
            "company": "Warung Budi",
            "language": "id",
            "assignee": str(cast.staff.pk),
        },
    )
    lead = Lead.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/projects/manage/leads/{lead.pk}/"
    assert (lead.source, lead.language, lead.assignee) == ("manual", "id", cast.staff)
    assert AuditEvent.objects.filter(action="projects.lead_created", actor=cast.staff).exists()
    bad = client.post("/projects/manage/leads/new/", {"name": "", "email": "x", "language": "xx"})
    assert bad.status_code == 400
    assert Lead.objects.count() == 1


# -- the owner's estimator -------------------------------------------------------------------


def option_data(**extra) -> dict:
    return {
        "key": "seo",
        "kind": "choice",
        "group": "Reach",
        "title": "Search engine optimisation",
        "description": "",
        "title_pl": "Pozycjonowanie",
        "title_id": "Optimasi mesin pencari",
        "weeks_min": "1",
        "weeks_max": "2",
        "cost_min": "2500.50",
        "cost_max": "4000",
        "max_quantity": "1",
        "position": "5",
        "is_active": "on",
        **extra,
    }


def test_the_owner_adds_an_option_with_translations(client, cast, options):
    client.force_login(cast.owner)
    assert client.get("/projects/manage/options/new/").status_code == 200
    answer = client.post(
        "/projects/manage/options/new/", option_data(requires=[options["website"].pk])
    )
    assert answer.status_code == 302
    seo = EstimatorOption.objects.get(key="seo")
    assert (seo.cost_min_minor, seo.cost_max_minor) == (250050, 400000)
    assert seo.text("title", "pl") == "Pozycjonowanie"
    assert seo.text("title", "id") == "Optimasi mesin pencari"
    assert [o.key for o in seo.requires.all()] == ["website"]
    assert AuditEvent.objects.filter(action="projects.option_created", actor=cast.owner).exists()
    listing = client.get("/projects/manage/options/").content.decode()
    assert "Search engine optimisation" in listing and "PLN\xa02,500.50–4,000.00" in listing


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"weeks_min": "3", "weeks_max": "2"}, "The time range ends before it starts."),
        ({"cost_min": "5000", "cost_max": "4000"}, "The cost range ends before it starts."),
        ({"cost_min": "1.005"}, "Ensure that there are no more than 2 decimal places."),
        ({"cost_min": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"key": "_base"}, "A key cannot start with “_”."),
        ({"key": "shop"}, "already exists"),
        ({"key": "no spaces"}, "Enter a valid “slug”"),
        (
            {"kind": "quantity", "max_quantity": "0"},
            "Ensure this value is greater than or equal to 1.",
        ),
    ],
)
def test_bad_options_are_refused(client, cast, options, extra, message):
    client.force_login(cast.owner)
    answer = client.post("/projects/manage/options/new/", option_data(**extra))
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert not EstimatorOption.objects.filter(key__in=["seo", "no spaces"]).exists()
    assert EstimatorOption.objects.count() == len(options)


def test_dependencies_never_go_round_in_a_circle(client, cast, options):
    client.force_login(cast.owner)
    shop = options["shop"]
    data = option_data(key="shop", title="Online shop", requires=[options["payments"].pk])
    answer = client.post(f"/projects/manage/options/{shop.pk}/", data)
    assert answer.status_code == 400
    assert (
        "These dependencies go round in a circle: Online shop → Online payments → Online shop."
        in answer.content.decode()
    )
    assert not shop.requires.exists()
    # a longer circle: website → marketplace → shop → website
    client.post(
        f"/projects/manage/options/{options['website'].pk}/",
        option_data(key="website", title="Company website", requires=[options["marketplace"].pk]),
    )
    answer = client.post(
        f"/projects/manage/options/{shop.pk}/",
        option_data(key="shop", title="Online shop", requires=[options["website"].pk]),
    )
    assert answer.status_code == 400 and "go round in a circle" in answer.content.decode()


def test_an_option_is_withdrawn_or_deleted_after_a_confirmation(client, cast, options):
    client.force_login(cast.owner)
    mobile = options["mobile"]
    client.post(
        f"/projects/manage/options/{mobile.pk}/",
        option_data(key="mobile", title="Mobile app", is_active=""),
    )
    mobile.refresh_from_db()
    assert not mobile.is_active
    assert "Mobile app" not in client.get("/projects/estimate/").content.decode()

    shop = options["shop"]
    confirm = client.get(f"/projects/manage/options/{shop.pk}/delete/")
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Delete “Online shop”?" in text and "Online payments" in text  # what requires it
    assert EstimatorOption.objects.filter(pk=shop.pk).exists()
    client.post(f"/projects/manage/options/{shop.pk}/delete/")
    assert not EstimatorOption.objects.filter(pk=shop.pk).exists()
    assert not options["payments"].requires.exists()
    assert client.get("/projects/manage/options/999999/").status_code == 404


def test_staff_who_are_not_the_owner_do_not_manage_the_estimator(client, cast, options):
    client.force_login(cast.staff)
    assert client.get("/projects/manage/options/").status_code == 404
    assert client.post("/projects/manage/options/new/", option_data()).status_code == 404
    assert not EstimatorOption.objects.filter(key="seo").exists()


def test_the_owner_sets_currency_base_range_and_texts(client, cast, options):
    client.force_login(cast.owner)
    assert client.get("/projects/manage/settings/").status_code == 200
    answer = client.post(
        "/projects/manage/settings/",
        {
            "currency": "IDR",
            "title": "Estimate your project",
            "intro": "Pick and see.",
            "title_id": "Perkirakan proyek Anda",
            "intro_id": "Pilih dan lihat.",
            "title_pl": "",
            "intro_pl": "",
            "base_weeks_min": "2",
            "base_weeks_max": "3",
            "base_cost_min": "5000000",
            "base_cost_max": "8000000",
        },
    )
    assert answer.status_code == 302
    row = EstimatorSettings.current()
    assert (row.currency, row.base_cost_min_minor, row.base_weeks_max) == (
        "IDR",
        5000000,
        Decimal(3),
    )
    assert row.translations == {
        "id": {"title": "Perkirakan proyek Anda", "intro": "Pilih dan lihat."}
    }
    client.logout()
    page = client.get("/projects/estimate/", headers={"accept-language": "id"}).content.decode()
    assert "Perkirakan proyek Anda" in page and "Pilih dan lihat." in page
    client.force_login(cast.owner)
    bad = client.post(
        "/projects/manage/settings/",
        {
            "currency": "IDR",
            "title": "x",
            "base_weeks_min": "3",
            "base_weeks_max": "2",
            "base_cost_min": "0.5",
            "base_cost_max": "1",
        },
    )
    assert bad.status_code == 400
    assert "IDR allows" in bad.content.decode() or "time range ends" in bad.content.decode()
    assert EstimatorSettings.current().base_weeks_max == Decimal(3)
