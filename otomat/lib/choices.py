"""``get_FOO_display()`` with one translation per call.

Django's own builds ``dict(make_hashable(field.flatchoices))`` on every call, and hashing a lazy
label translates it: an instance's state (7 choices) costs 8 translations, about 50 µs, and a
list page shows one per row. ``ChoiceLabels`` keeps each field's value → label mapping; the
labels stay lazy, so each call still gives its label in the reader's language, translated once.
"""

from __future__ import annotations

from django.db import models
from django.utils.encoding import force_str


class ChoiceLabels:
    """Mix into a model before ``models.Model``; its ``get_FOO_display()`` read as before."""

    def _get_FIELD_display(self, field: models.Field):
        value = getattr(self, field.attname)
        labels = _labels(field)
        if labels is None:
            return super()._get_FIELD_display(field)
        try:
            label = labels.get(value, value)
        except TypeError:  # an unhashable value: Django's way
            return super()._get_FIELD_display(field)
        return force_str(label, strings_only=True)


def _labels(field: models.Field) -> dict | None:
    """The field's value → (lazy) label, kept on the field; None for choices that may change
    (a callable's), which are read each time as Django does."""
    labels = field.__dict__.get("_otomat_choice_labels")
    if labels is None:
        if not isinstance(field.choices, list | tuple):
            return None
        labels = {value: label for value, label in field.flatchoices}
        field._otomat_choice_labels = labels
    return labels
