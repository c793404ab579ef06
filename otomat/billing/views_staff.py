"""The owner's and staff's billing pages: dashboard, the log of automatic actions, invoices,
transfer proofs, callbacks, and the configuration (plans, taxes, dunning, coupons, gateways)."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from otomat.accounts.config_pages import ConfigPages
from otomat.accounts.services import record_audit
from otomat.billing import dunning, invoicing, payments, reports
from otomat.billing.forms import (
    BillingSettingsForm,
    CouponForm,
    CreditNoteForm,
    DunningPolicyForm,
    ManualPaymentForm,
    PlanForm,
    TaxRateForm,
)
from otomat.billing.gateways import REGISTRY
from otomat.billing.models import (
    BillingAction,
    BillingSettings,
    Coupon,
    DunningPolicy,
    GatewayCallback,
    GatewayConfig,
    Invoice,
    Plan,
    Subscription,
    TaxRate,
    TransferProof,
)
from otomat.billing.money import Money
from otomat.lib import charts
from otomat.lib.redirects import safe_next_url


def staff_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def owner_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_superuser:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _fmt(currency: str):
    from django.utils.translation import get_language

    lang = get_language() or "en"
    return lambda minor: Money(int(minor), currency).format(lang)


# The dashboard's charts, drawn once per set of figures and language in each web process (the
# figures themselves are shared by the processes for a minute: reports.dashboard_figures).
_CHARTS_KEPT = 8
_charts_drawn: dict[tuple, dict] = {}


def _dashboard_charts(figures: dict) -> dict:
    from django.utils.translation import get_language

    if "version" not in figures:  # figures kept by an older release: drawn every time
        return _draw_dashboard_charts(figures)
    key = (figures["version"], get_language())
    drawn = _charts_drawn.get(key)
    if drawn is None:
        drawn = _draw_dashboard_charts(figures)
        if len(_charts_drawn) >= _CHARTS_KEPT:
            _charts_drawn.clear()
        _charts_drawn[key] = drawn
    return drawn


def _draw_dashboard_charts(figures: dict) -> dict:
    empty = _("No data yet")
    labels, mrr_series = figures["mrr_history"]
    mrr_charts = [
        (
            _("MRR (%(currency)s)") % {"currency": cur},
            charts.line_chart(
                labels,
                [charts.Series(cur, [m.amount_minor for m in values])],
                title=_("MRR (%(currency)s)") % {"currency": cur},
                value_format=_fmt(cur),
                empty_text=empty,
                width=1000,
                height=260,
            ),
        )
        for cur, values in mrr_series.items()
    ]
    rev_labels, rev_series = figures["revenue_by_month"]
    revenue_charts = [
        (
            _("Revenue per month (%(currency)s)") % {"currency": cur},
            charts.bar_chart(
                rev_labels,
                [charts.Series(cur, [m.amount_minor for m in values])],
                title=_("Revenue per month (%(currency)s)") % {"currency": cur},
                value_format=_fmt(cur),
                empty_text=empty,
            ),
        )
        for cur, values in rev_series.items()
    ]
    product_charts = [
        (
            _("Revenue by product, last 12 months (%(currency)s)") % {"currency": cur},
            charts.horizontal_bar_chart(
                [(name, m.amount_minor) for name, m in items],
                title=_("Revenue by product, last 12 months (%(currency)s)") % {"currency": cur},
                value_format=_fmt(cur),
                empty_text=empty,
            ),
        )
        for cur, items in figures["revenue_by_product"].items()
    ]
    churn_labels, churn_values = figures["churn"]
    churn_chart = charts.bar_chart(
        churn_labels,
        [charts.Series(_("Churn %"), churn_values)],
        title=_("Monthly churn (%)"),
        value_format=lambda v: f"{v}%",
        empty_text=empty,
    )
    overdue = figures["overdue"]
    overdue_chart = (
        charts.bar_chart(
            ["1-7", "8-30", "31+"],
            [
                charts.Series(cur, [parts[b].amount_minor for b in ("1-7", "8-30", "31+")])
                for cur, parts in overdue.items()
            ],
            title=_("Overdue by days late"),
            value_format=_fmt(next(iter(overdue), "USD")),
            empty_text=empty,
        )
        if len(overdue) == 1
        else ""
    )
    return {
        "mrr_charts": mrr_charts,
        "revenue_charts": revenue_charts,
        "product_charts": product_charts,
        "churn_chart": churn_chart,
        "overdue_chart": overdue_chart,
    }


@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    figures = reports.dashboard_figures(now)  # kept a minute, dropped on any billing change
    return render(
        request,
        "billing/staff/dashboard.html",
        {
            "mrr": figures["mrr"],
            "overdue": figures["overdue"],
            "counts": figures["counts"],
            **_dashboard_charts(figures),
            "actions": BillingAction.objects.select_related("account", "invoice")[:15],
            "pending_proofs": TransferProof.objects.filter(
                status=TransferProof.Status.PENDING
            ).count(),
            "failed_subs": Subscription.objects.filter(failures__gt=0).count(),
        },
    )


@staff_required
def actions(request: HttpRequest) -> HttpResponse:
    qs = BillingAction.objects.select_related("account", "invoice", "subscription__instance")
    kind = request.GET.get("kind", "")
    query = request.GET.get("q", "").strip()
    if kind in BillingAction.Kind.values:
        qs = qs.filter(kind=kind)
    if query:
        qs = qs.filter(account__name__icontains=query) | qs.filter(reason__icontains=query)
    page = Paginator(qs.order_by("-at", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/staff/actions.html",
        {"page": page, "kinds": BillingAction.Kind.choices, "kind": kind, "q": query},
    )


@staff_required
def invoices(request: HttpRequest) -> HttpResponse:
    qs = Invoice.objects.select_related("account")
    status = request.GET.get("status", "")
    query = request.GET.get("q", "").strip()
    if status == "overdue":
        qs = qs.filter(status=Invoice.Status.OPEN, due_at__lte=timezone.now())
    elif status in Invoice.Status.values:
        qs = qs.filter(status=status)
    if query:
        qs = qs.filter(account__name__icontains=query) | qs.filter(number__icontains=query)
    page = Paginator(qs.order_by("-issued_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/staff/invoices.html",
        {"page": page, "status": status, "q": query, "statuses": Invoice.Status.choices},
    )


@staff_required
def invoice_manage(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """Staff actions on one invoice: record a bank payment, void, issue a credit note."""
    invoice = get_object_or_404(Invoice.objects.select_related("account"), pk=invoice_id)
    payment_form = ManualPaymentForm(prefix="pay")
    credit_form = CreditNoteForm(prefix="cn")
    action = request.POST.get("action") if request.method == "POST" else None
    failed = False
    try:
        if action == "record_payment":
            payment_form = ManualPaymentForm(request.POST, prefix="pay")
            if payment_form.is_valid():
                amount = payment_form.fields["amount"].clean_amount(
                    payment_form.cleaned_data["amount"], invoice.currency
                )
                _payment, created = payments.record_payment(
                    invoice,
                    amount=amount,
                    gateway=payments.MANUAL,
                    provider_payment_id=payment_form.cleaned_data["reference"],
                    actor=request.user,
                    actor_label=f"user:{request.user.email}",
                    note="recorded by staff",
                )
                if created:
                    messages.success(request, _("Payment recorded."))
                else:
                    messages.warning(request, _("This transfer reference was already recorded."))
                return redirect("billing:invoice_manage", invoice_id=invoice.id)
        elif action == "void":
            invoicing.void_invoice(
                invoice, reason=request.POST.get("reason", ""), actor=request.user
            )
            messages.success(request, _("Invoice voided."))
            return redirect("billing:invoice_manage", invoice_id=invoice.id)
        elif action == "credit_note":
            credit_form = CreditNoteForm(request.POST, prefix="cn")
            if credit_form.is_valid():
                amount = credit_form.fields["amount"].clean_amount(
                    credit_form.cleaned_data["amount"], invoice.currency
                )
                note = invoicing.issue_credit_note(
                    invoice,
                    amount=amount,
                    reason=credit_form.cleaned_data["reason"],
                    refund_method=credit_form.cleaned_data["refund_method"],
                    actor=request.user,
                )
                messages.success(request, _("Credit note %(number)s issued.") % {"number": note})
                return redirect("billing:invoice_manage", invoice_id=invoice.id)
    except (invoicing.BillingError, ValidationError) as exc:
        failed = True
        messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
    return render(
        request,
        "billing/staff/invoice.html",
        {
            "invoice": invoice,
            "lines": invoice.lines.all(),
            "payments": invoice.payments.all(),
            "credit_notes": invoice.credit_notes.all(),
            "proofs": invoice.proofs.all(),
            "actions": invoice.actions.all()[:20],
            "payment_form": payment_form,
            "credit_form": credit_form,
        },
        status=400 if failed or payment_form.errors or credit_form.errors else 200,
    )


@staff_required
def proofs(request: HttpRequest) -> HttpResponse:
    pending = TransferProof.objects.filter(status=TransferProof.Status.PENDING).select_related(
        "invoice__account", "uploaded_by"
    )
    page = Paginator(pending.order_by("uploaded_at"), 25).get_page(request.GET.get("page"))
    return render(request, "billing/staff/proofs.html", {"page": page})


@staff_required
@require_POST
def review_proof(request: HttpRequest, proof_id: int) -> HttpResponse:
    proof = get_object_or_404(TransferProof, pk=proof_id)
    try:
        if request.POST.get("decision") == "approve":
            payments.approve_transfer_proof(proof, actor=request.user)
            messages.success(request, _("Approved; the payment is recorded."))
        elif request.POST.get("decision") == "reject":
            payments.reject_transfer_proof(
                proof, actor=request.user, note=request.POST.get("note", "")
            )
            messages.success(request, _("Rejected; the customer was told why."))
        else:
            messages.error(request, _("Choose approve or reject."))
    except invoicing.BillingError as exc:
        messages.error(request, str(exc))
    return redirect("billing:proofs")


@staff_required
def proof_file(request: HttpRequest, proof_id: int) -> HttpResponse:
    from django.http import FileResponse

    proof = get_object_or_404(TransferProof, pk=proof_id)
    return FileResponse(proof.file.open("rb"), content_type=proof.content_type)


@staff_required
def callbacks(request: HttpRequest) -> HttpResponse:
    qs = GatewayCallback.objects.all()
    status = request.GET.get("status", "")
    if status in GatewayCallback.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs.order_by("-received_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/staff/callbacks.html",
        {"page": page, "status": status, "statuses": GatewayCallback.Status.choices},
    )


@staff_required
@require_POST
def run_subscription(request: HttpRequest, subscription_id: int) -> HttpResponse:
    sub = get_object_or_404(Subscription, pk=subscription_id)
    report = dunning.run_subscription(sub.pk)
    if report.failed:
        messages.error(request, _("The run failed; see the subscription's last error."))
    else:
        messages.success(request, _("Billing looked at it now."))
    return redirect(safe_next_url(request, request.POST.get("next"), "billing:dashboard"))


# -- configuration ------------------------------------------------------------------------------

CONFIG = {
    "plans": (Plan, PlanForm, gettext_lazy("Plans")),
    "tax-rates": (TaxRate, TaxRateForm, gettext_lazy("Tax rates")),
    "dunning": (DunningPolicy, DunningPolicyForm, gettext_lazy("Dunning policies")),
    "coupons": (Coupon, CouponForm, gettext_lazy("Coupons")),
}


_PAGES = ConfigPages(app="billing", registry=CONFIG)


@owner_required
def config_list(request: HttpRequest, kind: str) -> HttpResponse:
    return _PAGES.list(request, kind)


@owner_required
def config_edit(request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    return _PAGES.edit(request, kind, pk)


@owner_required
def settings_page(request: HttpRequest) -> HttpResponse:
    form = BillingSettingsForm(request.POST or None, instance=BillingSettings.get())
    if request.method == "POST" and form.is_valid():
        form.save()
        record_audit("billing.settings.saved", actor=request.user)
        messages.success(request, _("Saved."))
        return redirect("billing:settings")
    return render(
        request,
        "billing/staff/settings.html",
        {"form": form, "kinds": CONFIG},
        status=400 if form.errors else 200,
    )


@owner_required
def gateways(request: HttpRequest) -> HttpResponse:
    """Payment providers: enable, enter credentials (secrets are never shown again; a blank
    secret keeps the stored one), optional API base (a provider's sandbox)."""
    codes = [payments.MANUAL, *REGISTRY]
    rows = {c.code: c for c in GatewayConfig.objects.all()}
    if request.method == "POST":
        code = request.POST.get("code", "")
        if code not in codes:
            raise Http404
        config = rows.get(code) or GatewayConfig(code=code)
        credentials = dict(config.credentials)
        errors = []
        if code != payments.MANUAL:
            for field in REGISTRY[code].credential_fields:
                value = request.POST.get(f"{code}-{field.name}", "").strip()
                if value or not field.secret:
                    credentials[field.name] = value
                if (
                    field.required
                    and not credentials.get(field.name)
                    and request.POST.get("enabled")
                ):
                    errors.append(_("%(field)s is required.") % {"field": field.label})
        api_base = request.POST.get("api_base", "").strip()
        if api_base and not api_base.startswith(("https://", "http://")):
            errors.append(_("The API base must be an http(s) URL."))
        if errors:
            for error in errors:
                messages.error(request, error)
        else:
            config.credentials = credentials
            config.enabled = bool(request.POST.get("enabled"))
            config.api_base = api_base
            config.save()
            record_audit(
                "billing.gateway.saved",
                actor=request.user,
                data={"code": code, "enabled": config.enabled},  # never the credentials
            )
            messages.success(request, _("Saved."))
            return redirect("billing:gateways")
    entries = []
    for code in codes:
        config = rows.get(code)
        fields = [] if code == payments.MANUAL else REGISTRY[code].credential_fields
        entries.append(
            {
                "code": code,
                "label": _("Bank transfer") if code == payments.MANUAL else REGISTRY[code].label,
                "config": config,
                "fields": [
                    {
                        "field": f,
                        "stored": bool(config and config.credentials.get(f.name)),
                        "value": ""
                        if f.secret or not config
                        else config.credentials.get(f.name, ""),
                    }
                    for f in fields
                ],
                "callback_url": payments.notify_url(code) if code != payments.MANUAL else "",
            }
        )
    return render(request, "billing/staff/gateways.html", {"entries": entries, "kinds": CONFIG})
