"""The customer's "My instances" and the staff "All instances" cost the same few queries however
many instances they list, and read no instance's configuration or secrets to list it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

from otomat.instances import crypto, services


def token(n: int) -> str:
    return f"12345{n}:" + "A" * 35


@pytest.fixture
def alices_instances(cast, greeter):
    return [
        services.install_instance(
            account=cast.alice.account,
            version=greeter,
            name=f"Alice bot {n}",
            config={"bot_token": token(n)},
            actor=cast.alice,
        )
        for n in range(6)
    ]


def test_my_instances_lists_every_bot_in_a_few_queries_without_decrypting(
    client, cast, alices_instances, django_assert_max_num_queries, monkeypatch
):
    client.force_login(cast.alice)
    decrypted = []
    real = crypto.decrypt_json
    monkeypatch.setattr(crypto, "decrypt_json", lambda token: decrypted.append(1) or real(token))
    # Session, user, second factor, account, the instances with their versions and products.
    with django_assert_max_num_queries(5):
        page = client.get(reverse("instances:list")).content.decode()
    assert all(f"Alice bot {n}" in page for n in range(6))
    assert decrypted == []


def test_all_instances_lists_a_page_in_a_few_queries_without_decrypting(
    client, cast, alices_instances, django_assert_max_num_queries, monkeypatch
):
    client.force_login(cast.staff)
    decrypted = []
    real = crypto.decrypt_json
    monkeypatch.setattr(crypto, "decrypt_json", lambda token: decrypted.append(1) or real(token))
    with django_assert_max_num_queries(8):
        page = client.get(reverse("instances:manage")).content.decode()
    assert (
        all(f"Alice bot {n}" in page for n in range(6)) and escape(cast.alice.account.name) in page
    )
    assert decrypted == []
