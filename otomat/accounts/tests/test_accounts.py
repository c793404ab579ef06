"""Sign-up, login and its rate limit, password reset, team members, audit trail."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from otomat.accounts.models import Account, AuditEvent, Membership, User

pytestmark = pytest.mark.smoke


def test_a_visitor_signs_up_and_becomes_the_responsible_person(client, db):
    response = client.post(
        reverse("accounts:signup"),
        {
            "full_name": "Dewi Lestari",
            "email": "Dewi@Example.com",
            "account_name": "Toko Dewi",
            "password": "pisang-goreng-42",
            "language": "id",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="dewi@example.com")
    assert user.language == "id"
    assert user.account.name == "Toko Dewi"
    assert user.membership.role == Membership.Role.RESPONSIBLE
    assert AuditEvent.objects.filter(action="account.signed_up", actor=user).exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"full_name": "", "email": "a@example.com", "password": "pisang-goreng-42"}, "full_name"),
        ({"full_name": "A", "email": "not-an-email", "password": "pisang-goreng-42"}, "email"),
        ({"full_name": "A", "email": "a@example.com", "password": "123"}, "password"),
        ({"full_name": "A", "email": "a@example.com", "password": "password"}, "password"),
        (
            {
                "full_name": "A",
                "email": "a@example.com",
                "password": "pisang-goreng-42",
                "language": "xx",
            },
            "language",
        ),
    ],
)
def test_bad_sign_ups_show_the_error_next_to_the_field_and_store_nothing(client, db, data, field):
    data = {"language": "en", "account_name": "", **data}
    response = client.post(reverse("accounts:signup"), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert User.objects.count() == 0 and Account.objects.count() == 0


def test_a_taken_email_is_refused(client, cast):
    response = client.post(
        reverse("accounts:signup"),
        {
            "full_name": "Imposter",
            "email": "ALICE@example.com",
            "password": "pisang-goreng-42",
            "language": "en",
            "account_name": "",
        },
    )
    assert response.status_code == 400
    assert Account.objects.count() == 2


def test_login_is_refused_after_too_many_failures(client, cast, settings):
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("accounts:login")
    for _ in range(2):
        assert (
            client.post(url, {"username": "alice@example.com", "password": "wrong"}).status_code
            == 200
        )
    # The third failure reaches the limit: its answer is already the lock page.
    assert (
        client.post(url, {"username": "alice@example.com", "password": "wrong"}).status_code == 429
    )
    blocked = client.post(url, {"username": "alice@example.com", "password": cast.password})
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_good_login_clears_the_failures(client, cast):
    url = reverse("accounts:login")
    client.post(url, {"username": "alice@example.com", "password": "wrong"})
    response = client.post(url, {"username": "alice@example.com", "password": cast.password})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.login", actor=cast.alice).exists()


def test_password_reset_sends_a_working_link(client, cast):
    client.post(reverse("accounts:password_reset"), {"email": "alice@example.com"})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.context["validlink"]
    response = client.post(
        form_page.redirect_chain[-1][0],
        {
            "new_password1": "a-brand-new-secret-77",
            "new_password2": "a-brand-new-secret-77",
        },
    )
    assert response.status_code == 302
    cast.alice.refresh_from_db()
    assert cast.alice.check_password("a-brand-new-secret-77")


def test_the_responsible_person_adds_and_removes_a_member(
    client, cast, django_capture_on_commit_callbacks
):
    client.force_login(cast.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("accounts:members"), {"full_name": "Eka", "email": "eka@example.com"}
        )
    assert response.status_code == 302
    eka = User.objects.get(email="eka@example.com")
    assert eka.account == cast.alice.account
    assert any("eka@example.com" in m.to for m in mail.outbox)
    client.post(reverse("accounts:remove_member", args=[eka.id]))
    eka.refresh_from_db()
    assert not eka.is_active
    assert not Membership.objects.filter(user=eka).exists()


def test_a_member_cannot_manage_the_team(client, cast):
    client.force_login(cast.bob)
    response = client.post(
        reverse("accounts:members"), {"full_name": "X", "email": "x@example.com"}
    )
    assert response.status_code == 400
    assert not User.objects.filter(email="x@example.com").exists()
    client.post(reverse("accounts:remove_member", args=[cast.alice.id]))
    assert Membership.objects.filter(user=cast.alice).exists()


def test_an_outsider_cannot_remove_someone_elses_member(client, cast):
    client.force_login(cast.charlie)
    assert client.post(reverse("accounts:remove_member", args=[cast.bob.id])).status_code == 404
    cast.bob.refresh_from_db()
    assert cast.bob.is_active


def test_customers_see_only_their_own_audit_events(client, cast):
    client.force_login(cast.charlie)
    page = client.get(reverse("accounts:audit_log")).content.decode()
    assert "Charlie Corp" in page or "account.signed_up" in page
    assert "Bob Berg" not in page


def test_api_tokens_are_shown_once_and_stored_hashed(client, cast):
    client.force_login(cast.alice)
    response = client.post(reverse("accounts:api_tokens"), {"name": "ci"})
    token = response.context["new_token"]
    assert token.startswith("otm_")
    row = cast.alice.api_tokens.get()
    assert token not in (row.digest, row.prefix)
    assert token not in client.get(reverse("accounts:api_tokens")).content.decode()
