"""A customer sees their own account's leads and estimates and nothing of anyone else's: another
account's lead is a 404 on the pages and in the API, exactly like a missing one."""

from __future__ import annotations

from otomat.accounts.models import ApiToken
from otomat.projects import estimator
from otomat.projects.models import Lead


def two_leads(cast):
    mine = Lead.objects.create(
        name="Alice Anders",
        email="alice@example.com",
        source="estimator",
        account=cast.alice.account,
    )
    estimator.create_estimate({"shop": 1}, lead=mine)
    theirs = Lead.objects.create(
        name="Charlie Chen",
        email="charlie@example.com",
        source="contact",
        message="Secret plans",
        account=cast.charlie.account,
    )
    return mine, theirs


def test_a_customer_sees_their_accounts_leads_only(client, cast, options):
    mine, theirs = two_leads(cast)
    client.force_login(cast.bob)  # alice's teammate sees the account's leads
    page = client.get("/projects/mine/").content.decode()
    assert "Alice Anders" in page and "4–7 weeks" in page
    assert "Charlie Chen" not in page
    detail = client.get(f"/projects/mine/{mine.pk}/")
    assert detail.status_code == 200 and "Online shop" in detail.content.decode()
    assert client.get(f"/projects/mine/{theirs.pk}/").status_code == 404
    assert client.get("/projects/mine/999999/").status_code == 404


def test_an_outsider_sees_nothing_of_alices(client, cast, options):
    mine, _theirs = two_leads(cast)
    client.force_login(cast.charlie)
    page = client.get("/projects/mine/").content.decode()
    assert "Charlie Chen" in page and "Alice Anders" not in page
    assert client.get(f"/projects/mine/{mine.pk}/").status_code == 404


def test_staff_without_an_account_have_no_own_leads(client, cast, options):
    two_leads(cast)
    client.force_login(cast.staff)
    assert "No project requests yet." in client.get("/projects/mine/").content.decode()


def test_the_api_scopes_leads_to_the_tokens_account(client, cast, options):
    mine, theirs = two_leads(cast)
    _, token = ApiToken.issue(cast.charlie, "test")
    auth = {"authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/projects/leads", headers=auth).json()
    assert [row["name"] for row in listed] == ["Charlie Chen"]
    assert client.get(f"/api/v1/projects/leads/{mine.pk}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/projects/leads/{theirs.pk}", headers=auth).status_code == 200
