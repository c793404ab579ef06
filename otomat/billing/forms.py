"""Forms for the billing pages. Money is typed in major units and parsed exactly (Decimal, the
currency's decimals) — never as floats."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from otomat.billing.models import (
    BillingProfile,
    BillingSettings,
    Coupon,
    CreditNote,
    DunningPolicy,
    Plan,
    TaxRate,
)
from otomat.billing.money import Money


class MoneyField(forms.CharField):
    """A major-unit amount (e.g. "150000" IDR, "49.99" EUR) parsed into minor units of the
    currency the form gives it (``form.currency``)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("max_length", 30)
        super().__init__(*args, **kwargs)
        self.widget.attrs.setdefault("inputmode", "decimal")

    def clean_amount(self, value: str, currency: str) -> Money:
        """Parse ``value`` as written in any of our locales: "150000", "150.000" and "150,000"
        (thousands), "49.99" and "49,99" (decimals), "1 234,50". A separator followed by three
        digits groups thousands; one followed by one or two digits is the decimal point. Raises
        ValidationError for anything else or for more decimals than ``currency`` has."""
        text = (value or "").strip().replace(" ", "").replace("\xa0", "").replace("\u202f", "")
        if not re.fullmatch(r"\d{1,30}([.,]\d{1,3})*", text):
            raise forms.ValidationError(_("Enter an amount such as 150000 or 49.99."))
        parts = re.split(r"[.,]", text)
        decimals = ""
        if len(parts) > 1 and len(parts[-1]) < 3:
            decimals = parts.pop()
        if any(len(group) != 3 for group in parts[1:]):
            raise forms.ValidationError(_("Enter an amount such as 150000 or 49.99."))
        amount = Decimal("".join(parts) + (f".{decimals}" if decimals else ""))
        try:
            return Money.of(amount, currency)
        except ValueError:
            raise forms.ValidationError(
                _("%(currency)s amounts cannot have that many decimals.") % {"currency": currency}
            ) from None


class PlanForm(forms.ModelForm):
    price = MoneyField(label=_("Price per period"))
    setup_fee = MoneyField(label=_("Setup fee"), required=False, initial="0")

    class Meta:
        model = Plan
        fields = [
            "product",
            "code",
            "name",
            "currency",
            "period_months",
            "trial_days",
            "tax_rate",
            "dunning_policy",
            "is_active",
            "position",
        ]
        labels = {
            "product": _("Product"),
            "code": _("Code"),
            "period_months": _("Billing period"),
            "trial_days": _("Trial days"),
            "tax_rate": _("Tax rate"),
            "dunning_policy": _("Dunning policy"),
            "position": _("Position in the list"),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["price"].initial = str(self.instance.price.decimal)
            self.fields["setup_fee"].initial = str(self.instance.setup_fee.decimal)
            if self.instance.subscriptions.exists():
                # Changing these under existing subscribers would rewrite what they bought.
                for name in ("currency", "period_months", "product"):
                    self.fields[name].disabled = True
                    self.fields[name].help_text = _("Fixed: the plan has subscribers.")
                # Left editable, so that a change is refused with the reason (by the plan
                # itself, Plan.check_terms) instead of being dropped as a disabled field's is.
                for name in ("price", "setup_fee", "trial_days"):
                    self.fields[name].help_text = _("Fixed: the plan has subscribers.")

    def clean(self):
        data = super().clean()
        currency = data.get("currency") or self.instance.currency
        if currency:
            for name in ("price", "setup_fee"):
                raw = self.data.get(self.add_prefix(name), "") or "0"
                try:
                    data[f"{name}_money"] = self.fields[name].clean_amount(raw, currency)
                except forms.ValidationError as exc:
                    self.add_error(name, exc)
        return data

    def save(self, commit: bool = True) -> Plan:
        plan = super().save(commit=False)
        plan.price_minor = self.cleaned_data["price_money"].amount_minor
        plan.setup_fee_minor = self.cleaned_data["setup_fee_money"].amount_minor
        if commit:
            plan.save()
        return plan


class TaxRateForm(forms.ModelForm):
    class Meta:
        model = TaxRate
        fields = ["name", "rate_percent", "inclusive", "is_active"]
        labels = {"is_active": _("Active")}


class DunningPolicyForm(forms.ModelForm):
    reminder_days = forms.CharField(
        label=_("Reminder days"),
        required=False,
        help_text=_("Days relative to the due date, comma separated, e.g. -3, 0, 3, 5."),
    )

    class Meta:
        model = DunningPolicy
        fields = [
            "name",
            "invoice_days_before",
            "reminder_days",
            "suspend_after_days",
            "terminate_after_days",
            "export_notice_days",
            "late_fee_percent",
            "late_fee_after_days",
        ]
        labels = {
            "export_notice_days": _("Days before termination to offer a data export"),
            "late_fee_after_days": _("Late fee after (days overdue)"),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["reminder_days"] = ", ".join(str(d) for d in self.instance.reminder_days)

    def clean_reminder_days(self) -> list[int]:
        text = self.cleaned_data.get("reminder_days") or ""
        try:
            days = sorted({int(part) for part in text.replace(";", ",").split(",") if part.strip()})
        except ValueError:
            raise forms.ValidationError(_("Use whole numbers separated by commas.")) from None
        if any(not -60 <= d <= 365 for d in days):
            raise forms.ValidationError(_("Reminder days must be between -60 and 365."))
        return days


class CouponForm(forms.ModelForm):
    amount_off = MoneyField(label=_("Amount off"), required=False)

    class Meta:
        model = Coupon
        fields = [
            "code",
            "percent_off",
            "currency",
            "duration",
            "duration_periods",
            "max_redemptions",
            "valid_until",
            "plans",
            "is_active",
        ]
        labels = {
            "code": _("Code"),
            "percent_off": _("Percent off"),
            "currency": _("Currency"),
            "duration": _("Duration"),
            "duration_periods": _("Number of periods"),
            "max_redemptions": _("Maximum redemptions"),
            "valid_until": _("Valid until"),
            "plans": _("Plans"),
            "is_active": _("Active"),
        }
        widgets = {"valid_until": forms.DateTimeInput(attrs={"type": "datetime-local"})}

    def clean_code(self) -> str:
        code = (self.cleaned_data.get("code") or "").strip().upper()
        if not code.replace("-", "").replace("_", "").isalnum():
            raise forms.ValidationError(_("Use letters, digits, - and _ only."))
        return code

    def clean(self):
        data = super().clean()
        raw = (self.data.get(self.add_prefix("amount_off")) or "").strip()
        percent = data.get("percent_off")
        if bool(raw) == bool(percent):
            raise forms.ValidationError(_("Give either a percentage or an amount off."))
        if raw:
            currency = data.get("currency")
            if not currency:
                self.add_error("currency", _("An amount off needs its currency."))
            else:
                try:
                    data["amount_off_money"] = self.fields["amount_off"].clean_amount(raw, currency)
                except forms.ValidationError as exc:
                    self.add_error("amount_off", exc)
        if data.get("duration") == Coupon.Duration.REPEATING and not data.get("duration_periods"):
            self.add_error("duration_periods", _("How many periods?"))
        return data

    def save(self, commit: bool = True) -> Coupon:
        coupon = super().save(commit=False)
        money = self.cleaned_data.get("amount_off_money")
        coupon.amount_off_minor = money.amount_minor if money else None
        if commit:
            coupon.save()
            self.save_m2m()
        return coupon


class BillingSettingsForm(forms.ModelForm):
    class Meta:
        model = BillingSettings
        fields = [
            "seller_name",
            "seller_address",
            "seller_tax_id",
            "seller_email",
            "order_payment_days",
            "bank_transfer_instructions",
        ]
        labels = {
            "order_payment_days": _("Days to pay an order"),
        }


class BillingProfileForm(forms.ModelForm):
    class Meta:
        model = BillingProfile
        fields = ["legal_name", "address", "tax_id"]


class ProofForm(forms.Form):
    amount = MoneyField(label=_("Amount transferred"))
    file = forms.FileField(label=_("Transfer confirmation (PDF, PNG or JPEG, 5 MB at most)"))
    note = forms.CharField(label=_("Note"), required=False, max_length=300)


class CreditNoteForm(forms.Form):
    amount = MoneyField(label=_("Amount to credit (gross)"))
    reason = forms.CharField(label=_("Reason"), max_length=300)
    refund_method = forms.ChoiceField(label=_("Refund"), choices=CreditNote.RefundMethod.choices)


class ManualPaymentForm(forms.Form):
    amount = MoneyField(label=_("Amount received"))
    reference = forms.CharField(
        label=_("Transfer reference"),
        max_length=100,
        help_text=_("The bank's reference; the same reference is never recorded twice."),
    )
