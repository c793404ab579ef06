"""ChoiceLabels: a model's get_FOO_display() reads as Django's, in the reader's language, with
one translation per call instead of one per choice."""

from __future__ import annotations

from unittest import mock

from django.db import models
from django.utils import translation
from django.utils.translation import trans_real

from otomat.instances.models import Instance

STATE = Instance._meta.get_field("state")


def djangos(instance: Instance) -> str:
    return models.Model._get_FIELD_display(instance, STATE)


def test_the_label_follows_the_readers_language():
    instance = Instance(state=Instance.State.SUSPENDED)
    with translation.override("en"):
        english = instance.get_state_display()
    with translation.override("pl"):
        polish = instance.get_state_display()
    assert english == "Suspended" and polish not in ("", english)


def test_one_translation_per_call_where_django_makes_one_per_choice():
    instance = Instance(state=Instance.State.RUNNING)
    with translation.override("pl"):
        translation.gettext("warm")  # the language's catalogue loaded before counting
        with mock.patch.object(
            translation._trans, "gettext", side_effect=trans_real.gettext
        ) as gettext:
            instance.get_state_display()
            ours = gettext.call_count
            gettext.reset_mock()
            djangos(instance)
            theirs = gettext.call_count
    assert ours == 1
    assert theirs >= len(Instance.State.choices)


def test_every_model_with_choice_labels_reads_every_choice_as_djangos():
    from django.apps import apps

    from otomat.lib.choices import ChoiceLabels

    mixed = [m for m in apps.get_models() if issubclass(m, ChoiceLabels)]
    assert len(mixed) >= 15
    checked = 0
    for model in mixed:
        for field in model._meta.concrete_fields:
            if not field.choices:
                continue
            display = f"get_{field.name}_display"
            for value in [*(v for v, _ in field.flatchoices), "not-a-choice", "", None]:
                row = model(**{field.attname: value})
                for language in ("en", "id", "pl"):
                    with translation.override(language):
                        assert getattr(row, display)() == models.Model._get_FIELD_display(
                            row, field
                        ), (model.__name__, field.name, value, language)
                checked += 1
    assert checked > 100
    assert Instance in mixed
