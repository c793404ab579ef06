"""The interface speaks English, Indonesian and Polish: a person's saved language wins, a visitor
gets their browser's language or the switcher's choice."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(
    ("language", "word"), [("en", "My instances"), ("id", "Instans saya"), ("pl", "Moje instancje")]
)
def test_a_customer_sees_the_interface_in_their_language(client, cast, language, word):
    cast.alice.language = language
    cast.alice.save()
    client.force_login(cast.alice)
    page = client.get(reverse("instances:list")).content.decode()
    assert word in page
    assert f'<html lang="{language}">' in page


def test_a_visitor_gets_the_browser_language(client, db):
    page = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="pl").content.decode()
    assert 'lang="pl"' in page


def test_the_switcher_changes_the_language(client, db):
    client.post(reverse("set_language"), {"language": "id", "next": "/"})
    page = client.get(reverse("accounts:login")).content.decode()
    assert 'lang="id"' in page


def test_the_switcher_saves_a_logged_in_persons_language(client, cast):
    from otomat.accounts.models import AuditEvent

    cast.alice.language = "en"
    cast.alice.save()
    client.force_login(cast.alice)
    client.post(reverse("set_language"), {"language": "pl", "next": "/"})
    page = client.get(reverse("instances:list")).content.decode()
    assert '<html lang="pl">' in page and "Moje instancje" in page
    cast.alice.refresh_from_db()
    assert cast.alice.language == "pl"
    assert AuditEvent.objects.filter(action="account.preferences_changed").count() == 1
    # An unknown language changes nothing.
    client.post(reverse("set_language"), {"language": "xx", "next": "/"})
    cast.alice.refresh_from_db()
    assert cast.alice.language == "pl"
    assert '<html lang="pl">' in client.get(reverse("instances:list")).content.decode()
    assert AuditEvent.objects.filter(action="account.preferences_changed").count() == 1
