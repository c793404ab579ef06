"""Forms of the owner's monitoring pages; each refuses bad input with a message per field."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import Account
from otomat.instances.models import Instance
from otomat.monitoring.models import AlertRule, Maintenance, Severity


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = [
            "enabled",
            "severity",
            "failure_threshold",
            "recovery_threshold",
            "grace_seconds",
            "repeat_seconds",
            "flap_window_seconds",
            "flap_changes",
            "group_by",
            "open_incident",
            "notify_customers",
        ]

    def clean_failure_threshold(self):
        value = self.cleaned_data["failure_threshold"]
        if not 1 <= value <= 100:
            raise forms.ValidationError(_("Between 1 and 100 observations."))
        return value

    def clean_recovery_threshold(self):
        value = self.cleaned_data["recovery_threshold"]
        if not 1 <= value <= 100:
            raise forms.ValidationError(_("Between 1 and 100 observations."))
        return value

    def clean_grace_seconds(self):
        value = self.cleaned_data["grace_seconds"]
        if value > 86_400:
            raise forms.ValidationError(_("At most a day (86400 seconds)."))
        return value

    def clean_repeat_seconds(self):
        value = self.cleaned_data["repeat_seconds"]
        if value and not 60 <= value <= 7 * 86_400:
            raise forms.ValidationError(_("0 (never), or between 60 seconds and a week."))
        return value

    def clean_flap_window_seconds(self):
        value = self.cleaned_data["flap_window_seconds"]
        if not 60 <= value <= 86_400:
            raise forms.ValidationError(_("Between 60 seconds and a day."))
        return value

    def clean_flap_changes(self):
        value = self.cleaned_data["flap_changes"]
        if not 2 <= value <= 100:
            raise forms.ValidationError(_("Between 2 and 100 changes."))
        return value


class IncidentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    severity = forms.ChoiceField(label=_("Severity"), choices=Severity.choices)
    summary = forms.CharField(label=_("What is happening"), widget=forms.Textarea, required=False)
    accounts = forms.ModelMultipleChoiceField(
        label=_("Affected customers"),
        queryset=Account.objects.filter(is_internal=False).order_by("name"),
        required=False,
    )
    public = forms.BooleanField(label=_("Show on the status page"), required=False)
    public_title = forms.CharField(label=_("Public title"), max_length=200, required=False)

    def clean(self):
        data = super().clean()
        if data.get("public") and not (data.get("public_title") or "").strip():
            self.add_error("public_title", _("A public incident needs a public title."))
        return data


class UpdateForm(forms.Form):
    text = forms.CharField(label=_("Update"), widget=forms.Textarea, max_length=10_000)
    public = forms.BooleanField(label=_("Show on the status page"), required=False)


class ResolveForm(forms.Form):
    note = forms.CharField(
        label=_("Note"), widget=forms.Textarea, required=False, max_length=10_000
    )
    confirm = forms.BooleanField(
        label=_("Yes, it is resolved"),
        error_messages={"required": _("Tick the box to confirm.")},
    )


class PostmortemForm(forms.Form):
    text = forms.CharField(label=_("Postmortem"), widget=forms.Textarea, max_length=10_000)


class MaintenanceForm(forms.ModelForm):
    class Meta:
        model = Maintenance
        fields = ["title", "description", "starts_at", "ends_at", "scope", "scope_value", "public"]
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends:
            if ends <= starts:
                self.add_error("ends_at", _("The end must come after the start."))
            elif ends <= timezone.now():
                self.add_error("ends_at", _("The window must end in the future."))
            elif ends - starts > timedelta(days=14):
                self.add_error("ends_at", _("A window lasts two weeks at most."))
        scope, value = data.get("scope"), (data.get("scope_value") or "").strip()
        data["scope_value"] = value
        if scope and scope != Maintenance.Scope.ALL and not value:
            self.add_error("scope_value", _("Say which host, version, instance or customer."))
        elif scope == Maintenance.Scope.INSTANCE:
            try:
                exists = Instance.objects.filter(pk=value).exists()
            except (ValueError, forms.ValidationError, Exception):
                exists = False
            if not exists:
                self.add_error("scope_value", _("No instance has this id."))
        elif scope == Maintenance.Scope.ACCOUNT:
            if not value.isdigit() or not Account.objects.filter(pk=int(value)).exists():
                self.add_error("scope_value", _("No customer has this id."))
        elif scope == Maintenance.Scope.ALL:
            data["scope_value"] = ""
        return data


class SilenceForm(forms.Form):
    check_name = forms.ChoiceField(label=_("Check"), required=False)
    match = forms.CharField(
        label=_("Subject or group starts with"),
        max_length=200,
        required=False,
        help_text=_('e.g. "instance:…", "host:shared:movie@1.0" or "disk:/var"'),
    )
    reason = forms.CharField(label=_("Reason"), max_length=300)
    minutes = forms.IntegerField(label=_("For (minutes)"), min_value=1, max_value=7 * 24 * 60)

    def __init__(self, *args, checks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["check_name"].choices = [("", _("Every check"))] + [(c, c) for c in checks]

    def clean(self):
        data = super().clean()
        if not data.get("check_name") and not (data.get("match") or "").strip():
            self.add_error("match", _("Silencing everything: name a check or what it matches."))
        return data
