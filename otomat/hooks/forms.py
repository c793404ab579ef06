from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class EndpointForm(forms.Form):
    url = forms.CharField(
        label=_("URL"),
        max_length=500,
        help_text=_("Otomat POSTs each event here as JSON, signed (see the documentation)."),
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/otomat-events"}),
    )
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=_("Events"), widget=forms.CheckboxSelectMultiple, choices=()
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, event_choices, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].choices = event_choices
        if not editing:
            del self.fields["is_active"]
