"""A person's language lasts for their request only: code that runs next in the same thread (a
background task, a service called outside a request) starts from the default language."""

from django.urls import reverse
from django.utils import translation


def test_the_language_of_a_request_does_not_outlive_it(client, cast):
    cast.alice.language = "pl"
    cast.alice.save()
    client.force_login(cast.alice)
    page = client.get(reverse("instances:list")).content.decode()
    assert "Moje instancje" in page
    assert translation.get_language() == "en"
