"""A request over the upload limits: a page that says what was too large and the limit (413,
in the person's language, in the site's layout), JSON under /api/; nothing is stored."""

from __future__ import annotations

import pytest
from django.urls import reverse

from otomat.support.models import Ticket

pytestmark = pytest.mark.smoke


@pytest.fixture
def alice(client, cast, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client.force_login(cast.alice)
    return cast.alice


def _new_ticket(client, **extra):
    return client.post(reverse("support:new"), {"subject": "Big", "body": "x" * 5000, **extra})


def test_a_form_over_the_limit_gets_a_page_naming_the_limit(client, alice):
    response = _new_ticket(client)
    assert response.status_code == 413
    page = response.content.decode()
    assert "What you sent is too large: a form may hold at most 1 KB, attached files aside." in page
    assert "Nothing was saved." in page
    assert 'class="topbar"' in page  # the site's layout, not a bare "Bad Request (400)"
    assert Ticket.objects.count() == 0


@pytest.mark.parametrize(
    ("language", "words"),
    [("id", "Yang Anda kirim terlalu besar"), ("pl", "Wysłane dane są za duże")],
)
def test_the_page_is_in_the_persons_language(client, alice, language, words):
    alice.language = language
    alice.save()
    page = _new_ticket(client).content.decode()
    assert words in page
    assert "1 KB" in page


def test_too_many_fields_are_named_as_such(client, alice, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    fields = {f"f{n}": "x" for n in range(10)}
    response = client.post(reverse("support:new"), {"subject": "s", "body": "b", **fields})
    assert response.status_code == 413
    assert "more fields than the 5 accepted" in response.content.decode()
    assert Ticket.objects.count() == 0


def test_other_bad_requests_keep_djangos_answer(client, db, settings):
    settings.ALLOWED_HOSTS = ["otomat.example"]
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400


def test_the_csrf_check_reading_the_form_first_gets_the_same_page(cast, settings):
    # In production the CSRF check reads the form before any view: the limit is hit there.
    from django.test import Client

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    client.get(reverse("support:new"))  # the CSRF cookie, as a browser has it
    token = client.cookies["csrftoken"].value
    response = _new_ticket(client, csrfmiddlewaretoken=token)
    assert response.status_code == 413
    assert "at most 1 KB" in response.content.decode()
    assert Ticket.objects.count() == 0
