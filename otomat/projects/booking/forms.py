"""Forms of the booking pages. They check shapes; the rules themselves are the services'."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import TIMEZONE_CHOICES
from otomat.projects.booking import services
from otomat.projects.booking.models import Host, MeetingType

WEEKDAYS = [
    _("Monday"),
    _("Tuesday"),
    _("Wednesday"),
    _("Thursday"),
    _("Friday"),
    _("Saturday"),
    _("Sunday"),
]


class OfferedTime(forms.DateTimeField):
    """One of the offered slots as the page writes it: ISO 8601 with its offset. A time without
    an offset is refused rather than read in some zone the visitor never saw."""

    def to_python(self, value):
        raw = (value or "").strip() if isinstance(value, str) else value
        if isinstance(raw, str) and raw:
            try:
                parsed = datetime.fromisoformat(raw)
            except ValueError:
                raise forms.ValidationError(_("Pick one of the offered times.")) from None
            if parsed.tzinfo is None:
                raise forms.ValidationError(_("Pick one of the offered times."))
            return parsed
        return super().to_python(value)


class BookForm(forms.Form):
    start = OfferedTime(widget=forms.HiddenInput)
    name = forms.CharField(label=_("Your name"), max_length=200)
    email = forms.EmailField(label=_("Your email"), max_length=254)
    message = forms.CharField(
        label=_("What would you like to talk about?"),
        required=False,
        max_length=services.MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    tz = forms.ChoiceField(choices=TIMEZONE_CHOICES, widget=forms.HiddenInput)


class RescheduleForm(forms.Form):
    start = OfferedTime(widget=forms.HiddenInput)


class CancelForm(forms.Form):
    confirm = forms.BooleanField(label=_("Yes, cancel this meeting"))


class RulesForm(forms.ModelForm):
    days_off = forms.CharField(
        label=_("Days off"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "2026-12-24 Christmas Eve"}),
        help_text=_("One date a line, like 2026-12-24, then a reason if you like."),
    )

    class Meta:
        model = Host
        fields = [
            "timezone",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "min_notice_minutes",
            "max_per_day",
            "horizon_days",
            "holiday_country",
        ]
        help_texts = {
            "holiday_country": _("A two-letter country code (PL, ID…) or empty."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        host = self.instance
        for weekday, label in enumerate(WEEKDAYS):
            self.fields[f"day_{weekday}"] = forms.CharField(
                label=label,
                required=False,
                max_length=200,
                initial=services.format_intervals(host, weekday) if host.pk else "",
                help_text=_("e.g. 09:00-12:00, 13:00-17:00; empty: no meetings that day")
                if weekday == 0
                else "",
            )
        if host.pk and not self.is_bound:
            self.fields["days_off"].initial = "\n".join(
                f"{d.date.isoformat()} {d.reason}".strip() for d in host.days_off.all()
            )

    def clean_holiday_country(self):
        value = (self.cleaned_data.get("holiday_country") or "").strip().upper()
        if not value:
            return ""
        import holidays

        if value not in holidays.list_supported_countries():
            raise forms.ValidationError(_("No public holidays are known for this country code."))
        return value

    def clean(self):
        data = super().clean()
        for weekday in range(7):
            name = f"day_{weekday}"
            try:
                services.parse_intervals(data.get(name, ""))
            except services.BookingError as exc:
                self.add_error(name, str(exc))
        try:
            services.parse_days_off(data.get("days_off", ""))
        except services.BookingError as exc:
            self.add_error("days_off", str(exc))
        return data

    def weekly(self) -> dict[int, str]:
        return {d: self.cleaned_data.get(f"day_{d}", "") for d in range(7)}

    def rule_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class MeetingTypeForm(forms.ModelForm):
    name_id = forms.CharField(label=_("Name in Indonesian"), max_length=200, required=False)
    name_pl = forms.CharField(label=_("Name in Polish"), max_length=200, required=False)
    description_id = forms.CharField(
        label=_("Description in Indonesian"), required=False, widget=forms.Textarea({"rows": 2})
    )
    description_pl = forms.CharField(
        label=_("Description in Polish"), required=False, widget=forms.Textarea({"rows": 2})
    )

    class Meta:
        model = MeetingType
        fields = [
            "name",
            "slug",
            "description",
            "duration_minutes",
            "slot_step_minutes",
            "video_link_template",
            "cutoff_hours",
            "is_active",
        ]
        labels = {"name": _("Name (English)"), "description": _("Description (English)")}
        widgets = {"description": forms.Textarea({"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        translations = self.instance.translations or {}
        for language in ("id", "pl"):
            for field in ("name", "description"):
                self.fields[f"{field}_{language}"].initial = translations.get(language, {}).get(
                    field, ""
                )

    def save(self, commit=True):
        meeting_type = super().save(commit=False)
        meeting_type.translations = {
            language: {
                field: self.cleaned_data[f"{field}_{language}"].strip()
                for field in ("name", "description")
                if self.cleaned_data[f"{field}_{language}"].strip()
            }
            for language in ("id", "pl")
        }
        return meeting_type


class CalendarForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    url = forms.CharField(
        label=_("iCal address"),
        max_length=2000,
        help_text=_("The secret iCal (.ics) address from Google, Outlook, Booking.com…"),
    )


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Yes, make a new address; the old one stops working at once")
    )
