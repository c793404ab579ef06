"""Every field of the staff and customer forms is labelled in the reader's language: a model
field without a translated label shows Django's English default ("Period months", "Is active")
on a Polish or Indonesian page."""

from __future__ import annotations

import importlib
import inspect

import pytest
from django import forms
from django.utils import translation

MODULES = [
    "otomat.accounts.forms",
    "otomat.billing.forms",
    "otomat.catalog.forms",
    "otomat.hooks.forms",
    "otomat.monitoring.forms",
    "otomat.projects.forms",
    "otomat.projects.booking.forms",
    "otomat.projects.offers.forms",
    "otomat.support.forms",
]
# Words that are spelled the same in English and the language.
SAME = {
    "pl": {"Status", "Plan", "Slug", "Email", "E-mail", "URL"},
    "id": {"Status", "Email", "URL"},
}
# Forms that need arguments to be built.
ARGUMENTS = {"OptionForm": {"currency": "IDR"}, "EndpointForm": {"event_choices": []}}


def labels(cls, lang: str) -> dict[str, str]:
    with translation.override(lang):
        try:
            form = cls(**ARGUMENTS.get(cls.__name__, {}))
        except (TypeError, AttributeError):
            return {}  # needs a request or objects to be built; its labels are its own
        return {name: str(field.label or "") for name, field in form.fields.items()}


def forms_of(module: str):
    mod = importlib.import_module(module)
    for _, cls in inspect.getmembers(mod, inspect.isclass):
        if issubclass(cls, forms.BaseForm) and cls.__module__ == module:
            yield cls


@pytest.mark.django_db
@pytest.mark.parametrize("lang", ["id", "pl"])
def test_every_form_field_is_labelled_in_the_readers_language(lang):
    english_left = []
    checked = 0
    for module in MODULES:
        for cls in forms_of(module):
            english = labels(cls, "en")
            translated = labels(cls, lang)
            for name, label in english.items():
                checked += 1
                if label and label == translated.get(name) and label not in SAME[lang]:
                    english_left.append(f"{cls.__module__}.{cls.__name__}.{name}: {label!r}")
    assert checked > 100  # the forms were built, not skipped
    assert not english_left, "\n".join(english_left)
