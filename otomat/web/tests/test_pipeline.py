"""The projects pipeline page: staff see every step's waiting work, a customer only their own
projects and counts; both in their language; a visitor is sent to log in."""

import pytest
from django.urls import reverse


@pytest.fixture
def projects(cast):
    from otomat.projects.board.models import Card, Project

    mine = Project.objects.create(account=cast.alice.account, title="Alice's shop")
    theirs = Project.objects.create(account=cast.charlie.account, title="Charlie's portal")
    Card.objects.create(
        project=mine, title="Checkout", status="waiting_client", whose_move="client"
    )
    Card.objects.create(project=theirs, title="Login", status="blocked", whose_move="us")
    return mine, theirs


def test_staff_see_every_project_and_what_waits(
    client, cast, projects, django_assert_max_num_queries
):
    client.force_login(cast.owner)
    with django_assert_max_num_queries(30):
        page = client.get(reverse("web:pipeline"))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Alice&#x27;s shop" in text and "Charlie&#x27;s portal" in text
    assert reverse("projects:leads") in text and reverse("board:workshop") in text


def test_a_customer_sees_only_their_own(client, cast, projects):
    client.force_login(cast.charlie)
    text = client.get(reverse("web:pipeline")).content.decode()
    assert "Charlie&#x27;s portal" in text and "Alice&#x27;s shop" not in text
    assert reverse("projects:leads") not in text  # no staff links
    assert reverse("projects:estimator") in text


@pytest.mark.parametrize(
    ("language", "words"), [("id", "Proyek yang berjalan"), ("pl", "Projekty w toku")]
)
def test_the_page_speaks_the_readers_language(client, cast, projects, language, words):
    cast.alice.language = language
    cast.alice.save()
    client.force_login(cast.alice)
    text = client.get(reverse("web:pipeline")).content.decode()
    assert words in text and "Projects in progress" not in text


def test_a_visitor_is_sent_to_log_in(client, db):
    response = client.get(reverse("web:pipeline"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_a_person_without_an_account_sees_no_ones_leads(client, db):
    from otomat.accounts.models import User
    from otomat.projects.models import Lead

    Lead.objects.create(name="Visitor", email="v@example.com", source="estimator")
    loner = User.objects.create_user(email="loner@example.com", password="x")
    client.force_login(loner)
    response = client.get(reverse("web:pipeline"))
    assert response.status_code == 404 and b"Visitor" not in response.content
