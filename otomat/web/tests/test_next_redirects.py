"""Every ``next`` parameter sends a person back into this site only: the login and its code step,
the logout, the language switcher, and the staff billing run's posted ``next``."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.smoke

EVIL = ["https://evil.example/", "//evil.example", "///evil.example", "https:evil.example"]


def off_site(url: str) -> bool:
    return "evil.example" in url


@pytest.mark.parametrize("evil", EVIL)
def test_the_login_ignores_a_foreign_next(client, cast, evil):
    response = client.post(
        reverse("accounts:login"),
        {"username": "alice@example.com", "password": cast.password, "next": evil},
    )
    assert response.status_code == 302 and not off_site(response.url)
    assert "_auth_user_id" in client.session


def test_the_login_keeps_a_local_next(client, cast):
    response = client.post(
        reverse("accounts:login"),
        {"username": "alice@example.com", "password": cast.password, "next": "/instances/"},
    )
    assert response.url == "/instances/"


@pytest.mark.parametrize("evil", EVIL)
def test_the_logout_ignores_a_foreign_next(client, cast, evil):
    client.force_login(cast.alice)
    response = client.post(reverse("accounts:logout"), {"next": evil})
    assert response.status_code == 302 and not off_site(response.url)


@pytest.mark.parametrize("evil", EVIL)
def test_the_language_switcher_ignores_a_foreign_next(client, db, evil):
    response = client.post(reverse("set_language"), {"language": "id", "next": evil})
    assert response.status_code == 302 and not off_site(response.url)


@pytest.fixture
def subscription(cast, plan, greeter):
    from otomat.billing.subscriptions import place_order

    instance, _ = place_order(
        account=cast.alice.account,
        version=greeter,
        plan=plan,
        name="Alice's greeter",
        config={
            "bot_token": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi",
            "welcome_text": "Hello {name}",
            "language": "en",
            "max_daily_greetings": 50,
            "reply_delay_seconds": 0,
        },
        actor=cast.alice,
    )
    return instance.subscription


@pytest.mark.parametrize("evil", EVIL)
def test_the_staff_billing_run_ignores_a_foreign_next(client, cast, subscription, evil):
    """It redirected to any posted ``next`` before."""
    client.force_login(cast.staff)
    url = reverse("billing:run_subscription", args=[subscription.pk])
    response = client.post(url, {"next": evil})
    assert response.status_code == 302
    assert response.url == reverse("billing:dashboard")


def test_the_staff_billing_run_keeps_a_local_next(client, cast, subscription):
    client.force_login(cast.staff)
    url = reverse("billing:run_subscription", args=[subscription.pk])
    response = client.post(url, {"next": "/billing/manage/invoices/"})
    assert response.url == "/billing/manage/invoices/"
