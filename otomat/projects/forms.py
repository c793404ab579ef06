"""Forms of the estimator, the contact form and the staff pages. Money is typed in major units
(18000.00) and kept in minor units; translations (id, pl) sit beside the English fields."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from otomat.accounts.models import Account, User
from otomat.billing.money import Money
from otomat.projects.leads import MAX_MESSAGE, MAX_NOTE
from otomat.projects.models import EstimatorOption, EstimatorSettings, Lead

TRANSLATED = ("id", "pl")
LANGUAGE_NAMES = dict(settings.LANGUAGES)


class ContactFields(forms.Form):
    """What a visitor leaves: their contact, a message, and two fields people never fill: a
    honeypot (``website``, hidden) and the browser's time zone (set by a script)."""

    name = forms.CharField(label=_("Your name"), max_length=200)
    email = forms.EmailField(label=_("Email"), max_length=254)
    phone = forms.CharField(label=_("Phone (optional)"), max_length=40, required=False)
    company = forms.CharField(label=_("Company (optional)"), max_length=200, required=False)
    message = forms.CharField(
        label=_("About your project (optional)"),
        max_length=MAX_MESSAGE,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    website = forms.CharField(required=False, max_length=200)  # the honeypot
    timezone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def is_bot(self) -> bool:
        """True when the hidden honeypot was filled (people never see it)."""
        return bool((self.data.get("website") or "").strip())


class ContactForm(ContactFields):
    message = forms.CharField(
        label=_("What is your project about?"),
        max_length=MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 6}),
    )


class LeadByHandForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("Email"), max_length=254)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    company = forms.CharField(label=_("Company"), max_length=200, required=False)
    message = forms.CharField(
        label=_("What they need"),
        max_length=MAX_MESSAGE,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    assignee = forms.ModelChoiceField(
        label=_("Followed up by"),
        queryset=User.objects.filter(is_staff=True, is_active=True),
        required=False,
        empty_label=_("The owner"),
    )
    account = forms.ModelChoiceField(
        label=_("Customer account"),
        queryset=Account.objects.filter(is_internal=False, status=Account.Status.ACTIVE),
        required=False,
        empty_label=_("None yet"),
    )


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Note"), max_length=MAX_NOTE, widget=forms.Textarea(attrs={"rows": 3})
    )


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=Lead.Status.choices)


def _minor(value: Decimal | None, currency: str, label: str) -> int:
    try:
        amount = Money.of(value or Decimal(0), currency)
    except ValueError:
        raise forms.ValidationError(
            _("%(field)s has more decimals than %(currency)s allows."),
            params={"field": label, "currency": currency},
        ) from None
    if amount.amount_minor < 0:
        raise forms.ValidationError(_("Amounts cannot be negative."))
    return amount.amount_minor


def _major(minor: int, currency: str) -> Decimal:
    return Money(minor, currency).decimal


def _money_field(label) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, min_value=0, max_digits=16, decimal_places=2, initial=Decimal(0)
    )


class TranslationsMixin:
    """Skips the model's own range check once a field error says it better. Adds ``<field>_<lang>`` fields for each translated text and keeps them in
    ``translations`` (``{"pl": {"title": ...}}``); an empty one falls back to English."""

    translated_fields: tuple[str, ...] = ()

    def _add_translation_fields(self) -> None:
        existing = getattr(self.instance, "translations", None) or {}
        for language in TRANSLATED:
            for name in self.translated_fields:
                model_field = self.instance._meta.get_field(name)
                widget = (
                    forms.Textarea(attrs={"rows": 3}) if name in ("description", "intro") else None
                )
                self.fields[f"{name}_{language}"] = forms.CharField(
                    label=f"{model_field.verbose_name.capitalize()} ({LANGUAGE_NAMES[language]})",
                    required=False,
                    max_length=getattr(model_field, "max_length", None) or 5000,
                    widget=widget,
                    initial=existing.get(language, {}).get(name, ""),
                )

    def _post_clean(self) -> None:
        if not self.errors:
            super()._post_clean()

    def _translations(self) -> dict:
        result = {}
        for language in TRANSLATED:
            texts = {
                name: self.cleaned_data.get(f"{name}_{language}", "").strip()
                for name in self.translated_fields
            }
            texts = {k: v for k, v in texts.items() if v}
            if texts:
                result[language] = texts
        return result


class OptionForm(TranslationsMixin, forms.ModelForm):
    translated_fields = ("group", "title", "description")
    cost_min = _money_field(_("Cost from"))
    cost_max = _money_field(_("Cost to"))

    class Meta:
        model = EstimatorOption
        fields = [
            "key",
            "kind",
            "group",
            "title",
            "description",
            "weeks_min",
            "weeks_max",
            "max_quantity",
            "requires",
            "position",
            "is_active",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "requires": forms.CheckboxSelectMultiple,
        }
        labels = {"position": _("Position in the list")}

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self._add_translation_fields()
        others = EstimatorOption.objects.all()
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
            self.fields["cost_min"].initial = _major(self.instance.cost_min_minor, currency)
            self.fields["cost_max"].initial = _major(self.instance.cost_max_minor, currency)
        self.fields["requires"].queryset = others
        self.fields["requires"].required = False
        self.fields["weeks_min"].min_value = self.fields["weeks_max"].min_value = 0
        self.fields["key"].help_text = _(
            "Letters, digits and hyphens; the API and stored estimates use it."
        )
        self.fields["max_quantity"].help_text = _("For a quantity: the most units one may pick.")

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if key.startswith("_"):
            raise forms.ValidationError(_("A key cannot start with “_”."))
        return key

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        cost_min = _minor(data.get("cost_min"), self.currency, str(_("Cost from")))
        cost_max = _minor(data.get("cost_max"), self.currency, str(_("Cost to")))
        if data["weeks_min"] > data["weeks_max"]:
            self.add_error("weeks_max", _("The time range ends before it starts."))
        if cost_min > cost_max:
            self.add_error("cost_max", _("The cost range ends before it starts."))
        if data.get("kind") == EstimatorOption.Kind.CHOICE:
            data["max_quantity"] = 1
        from otomat.projects.options import dependency_cycle

        cycle = dependency_cycle(self.instance, list(data.get("requires") or []))
        if cycle:
            self.add_error(
                "requires",
                _("These dependencies go round in a circle: %(cycle)s.")
                % {"cycle": " → ".join(cycle)},
            )
        self.instance.cost_min_minor, self.instance.cost_max_minor = cost_min, cost_max
        self.instance.translations = self._translations()
        return data


class SettingsForm(TranslationsMixin, forms.ModelForm):
    translated_fields = ("title", "intro")
    base_cost_min = _money_field(_("Base cost from"))
    base_cost_max = _money_field(_("Base cost to"))

    class Meta:
        model = EstimatorSettings
        fields = ["currency", "title", "intro", "base_weeks_min", "base_weeks_max"]
        widgets = {"intro": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_translation_fields()
        currency = self.instance.currency
        self.fields["base_cost_min"].initial = _major(self.instance.base_cost_min_minor, currency)
        self.fields["base_cost_max"].initial = _major(self.instance.base_cost_max_minor, currency)
        self.fields["base_weeks_min"].min_value = self.fields["base_weeks_max"].min_value = 0
        self.fields["currency"].help_text = _(
            "Every option's amounts are in this currency; changing it does not convert them."
        )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        currency = data["currency"]
        cost_min = _minor(data.get("base_cost_min"), currency, str(_("Base cost from")))
        cost_max = _minor(data.get("base_cost_max"), currency, str(_("Base cost to")))
        if data["base_weeks_min"] > data["base_weeks_max"]:
            self.add_error("base_weeks_max", _("The time range ends before it starts."))
        if cost_min > cost_max:
            self.add_error("base_cost_max", _("The cost range ends before it starts."))
        self.instance.base_cost_min_minor, self.instance.base_cost_max_minor = cost_min, cost_max
        self.instance.translations = self._translations()
        return data
