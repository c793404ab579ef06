"""Forms of the support pages."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from otomat.billing.forms import MoneyField
from otomat.support.business_hours import Schedule
from otomat.support.models import (
    Announcement,
    Article,
    CannedReply,
    Department,
    KbCategory,
    Priority,
    ProductBug,
    SlaPolicy,
    SupportTerms,
    Ticket,
)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(d, initial) for d in data if d]
        return [super().clean(data, initial)] if data else []


class NewTicketForm(forms.Form):
    instance = forms.ModelChoiceField(queryset=None, required=False, label=_("About"))
    kind = forms.ChoiceField(choices=Ticket.Kind.choices, label=_("What is it?"))
    subject = forms.CharField(max_length=200, label=_("Subject"))
    body = forms.CharField(widget=forms.Textarea, max_length=50_000, label=_("Message"))
    priority = forms.ChoiceField(
        choices=[(p, label) for p, label in Priority.choices if p != Priority.URGENT],
        initial=Priority.NORMAL,
        label=_("Priority"),
    )
    files = MultipleFileField(label=_("Attachments (PDF, images, text or zip; 5 MB each)"))

    def __init__(self, *args, instances=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["instance"].queryset = instances
        self.fields["instance"].empty_label = _("Nothing in particular")
        self.fields["subject"].widget.attrs.update({"autocomplete": "off"})


class ReplyForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), max_length=50_000, label=_("Reply")
    )
    files = MultipleFileField(label=_("Attachments"))


class QuoteForm(forms.Form):
    price = MoneyField(label=_("Price"))
    days = forms.IntegerField(min_value=1, max_value=365, label=_("Days of work"))
    description = forms.CharField(max_length=300, label=_("What will be done"))
    reply = forms.ModelChoiceField(
        queryset=CannedReply.objects.filter(out_of_scope=True),
        required=False,
        label=_("Out-of-scope reply"),
    )


class TimeForm(forms.Form):
    minutes = forms.IntegerField(min_value=1, max_value=1440, label=_("Minutes"))
    note = forms.CharField(max_length=200, required=False, label=_("Note"))


class DepartmentForm(forms.ModelForm):
    hours = forms.CharField(
        label=_("Business hours"),
        help_text=_('JSON, e.g. {"mon-fri": "09:00-17:00", "sat": "10:00-14:00"}'),
    )
    extra_holidays = forms.CharField(
        label=_("Extra days off"), required=False, help_text=_("Dates, comma separated: 2026-12-24")
    )

    class Meta:
        model = Department
        fields = [
            "name",
            "slug",
            "hours",
            "timezone",
            "holiday_country",
            "extra_holidays",
            "is_default",
            "position",
        ]
        labels = {
            "slug": _("Short name (in addresses)"),
            "is_default": _("Default department"),
            "position": _("Position in the list"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["hours"] = json.dumps(self.instance.hours)
            self.initial["extra_holidays"] = ", ".join(self.instance.extra_holidays or [])

    def clean_hours(self):
        try:
            spec = json.loads(self.cleaned_data["hours"] or "{}")
            Schedule.parse(spec)
        except (ValueError, TypeError, AttributeError) as exc:
            raise forms.ValidationError(str(exc)) from None
        return spec

    def clean_extra_holidays(self):
        from datetime import date

        days = []
        for part in (self.cleaned_data.get("extra_holidays") or "").split(","):
            if part.strip():
                try:
                    days.append(date.fromisoformat(part.strip()).isoformat())
                except ValueError:
                    raise forms.ValidationError(_("Use dates like 2026-12-24.")) from None
        return sorted(set(days))

    def clean_timezone(self):
        import zoneinfo

        value = self.cleaned_data["timezone"]
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(_("Unknown time zone.")) from None
        return value

    def clean_holiday_country(self):
        import holidays

        value = (self.cleaned_data.get("holiday_country") or "").upper()
        if value and value not in holidays.list_supported_countries():
            raise forms.ValidationError(_("Unknown country code."))
        return value


class SlaPolicyForm(forms.ModelForm):
    class Meta:
        model = SlaPolicy
        fields = [
            "name",
            "plan",
            "priority",
            "first_response_minutes",
            "next_response_minutes",
            "resolution_minutes",
            "warn_percent",
            "escalate_percent",
        ]
        labels = {
            "plan": _("Plan"),
            "priority": _("Priority"),
            "warn_percent": _("Warn at (% of the time used)"),
            "escalate_percent": _("Escalate at (% of the time used)"),
        }

    def clean(self):
        data = super().clean()
        warn, escalate = data.get("warn_percent"), data.get("escalate_percent")
        if warn and escalate and warn >= escalate:
            raise forms.ValidationError(_("Warn before escalating."))
        return data


class SupportTermsForm(forms.ModelForm):
    class Meta:
        model = SupportTerms
        fields = [
            "plan",
            "free_support_days",
            "revision_quota",
            "included_minutes",
            "hourly_rate_minor",
        ]
        labels = {
            "plan": _("Plan"),
            "hourly_rate_minor": _("Hourly rate (in the currency's smallest unit, e.g. cents)"),
        }


class CannedReplyForm(forms.ModelForm):
    class Meta:
        model = CannedReply
        fields = ["title", "body", "department", "out_of_scope"]
        labels = {"department": _("Department"), "out_of_scope": _("For out-of-scope requests")}

    def clean_body(self) -> str:
        from otomat.support.quotes import check_placeholders

        body = self.cleaned_data["body"]
        check_placeholders(body)
        return body


class KbCategoryForm(forms.ModelForm):
    class Meta:
        model = KbCategory
        fields = ["name", "slug", "position"]
        labels = {"slug": _("Short name (in addresses)"), "position": _("Position in the list")}


class ArticleForm(forms.ModelForm):
    class Meta:
        model = Article
        fields = [
            "category",
            "product",
            "language",
            "translation_key",
            "title",
            "slug",
            "body",
            "status",
        ]
        labels = {
            "category": _("Category"),
            "product": _("Product"),
            "slug": _("Short name (in addresses)"),
        }


class BugForm(forms.ModelForm):
    class Meta:
        model = ProductBug
        fields = ["title", "description", "status", "is_public", "public_title", "public_note"]

    def clean(self):
        data = super().clean()
        if data.get("is_public") and not (data.get("public_title") or "").strip():
            self.add_error(
                "public_title", _("A public bug needs a public title (no customer details).")
            )
        return data

    def clean_status(self):
        status = self.cleaned_data["status"]
        if status == ProductBug.Status.RELEASED and not self.instance.fixed_in_id:
            raise forms.ValidationError(_("Record the release with its version below."))
        return status


class AnnouncementForm(forms.ModelForm):
    class Meta:
        model = Announcement
        fields = ["title", "body", "audience", "product"]
        labels = {"audience": _("Audience"), "product": _("Product")}

    def clean(self):
        data = super().clean()
        if data.get("audience") == Announcement.Audience.PRODUCT and not data.get("product"):
            self.add_error("product", _("Choose the product."))
        return data
