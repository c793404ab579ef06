"""Public pages (no login): "Estimate your project" with its live range (HTMX; a plain submit
without scripts), the estimate a visitor reopens by its link, and the contact form. And the
customer's own leads and estimates, scoped to their account (another account's is a 404)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.accounts.throttle import client_ip
from otomat.projects import estimator, leads, throttle
from otomat.projects.forms import ContactFields, ContactForm
from otomat.projects.models import EstimatorSettings, Lead

PREFIX = "opt-"  # a picked option's form field: opt-<key> = quantity ("1" for a checkbox)


def _language() -> str:
    return (get_language() or "en")[:2]


def _selections(data) -> dict[str, str]:
    """What the form picked: every ``opt-<key>`` field, empty ones as 0 (not picked)."""
    return {
        name[len(PREFIX) :]: (value.strip() or "0")
        for name, value in data.items()
        if name.startswith(PREFIX)
    }


def _option_row(option, picked: dict[str, str], currency: str, language: str) -> dict:
    """An option as the page shows it, with what is picked and its own range."""
    return {
        "option": option,
        "title": option.text("title", language),
        "description": option.text("description", language),
        "value": picked.get(option.key, ""),
        "requires": [o.text("title", language) for o in option.requires.all()],
        "cost": estimator.format_money_range(
            option.cost_min_minor, option.cost_max_minor, currency, language
        ),
        "weeks": estimator.format_weeks(option.weeks_min, option.weeks_max, language),
    }


def _estimator_context(request: HttpRequest, *, picked=None, form=None, result=None, error=""):
    language = _language()
    row = EstimatorSettings.current()
    options = estimator.active_options()
    if result is None and not error:
        try:
            result = estimator.compute(
                picked or {}, language=language, options=options, settings_row=row
            )
        except estimator.EstimateError as exc:
            error = str(exc)
    groups: dict[str, list] = {}  # in the seller's order, each group where its first option is
    for option in options:
        item = _option_row(option, picked or {}, row.currency, language)
        groups.setdefault(option.text("group", language), []).append(item)
    return {
        "settings_row": row,
        "title": estimator.settings_text(row, "title", language),
        "intro": estimator.settings_text(row, "intro", language),
        "groups": list(groups.items()),
        "result": result,
        "error": error,
        "form": form or ContactFields(),
        "language": language,
    }


def estimate_page(request: HttpRequest) -> HttpResponse:
    """GET: the options and the base range. POST ``action``: ``preview`` recalculates (the
    page without scripts), ``save`` stores the estimate and opens its link, ``send`` stores it
    with the visitor's contact as a lead (the owner is told)."""
    if request.method != "POST":
        return render(request, "projects/estimate.html", _estimator_context(request))
    picked = _selections(request.POST)
    action = request.POST.get("action", "send")
    form = ContactFields(request.POST)
    language = _language()
    try:
        result = estimator.compute(picked, language=language)
    except estimator.EstimateError as exc:
        context = _estimator_context(request, picked=picked, form=form, error=str(exc))
        return render(request, "projects/estimate.html", context, status=400)
    if action == "preview":
        context = _estimator_context(request, picked=picked, result=result)
        return render(request, "projects/estimate.html", context)
    if form.is_bot():
        return render(request, "projects/thanks.html", {"estimate": None})
    if action == "save":
        if throttle.over_limit(request, "estimate"):
            return throttle.too_many(request)
        throttle.count(request, "estimate")
        estimate = estimator.create_estimate(picked, language=language)
        return redirect("projects:estimate", token=estimate.token)
    if not form.is_valid():
        context = _estimator_context(request, picked=picked, form=form, result=result)
        return render(request, "projects/estimate.html", context, status=400)
    if throttle.over_limit(request, "lead"):
        return throttle.too_many(request)
    try:
        with transaction.atomic():
            estimate = estimator.create_estimate(picked, language=language)
            _submit(request, form, source=Lead.Source.ESTIMATOR, estimate=estimate)
    except (estimator.EstimateError, leads.LeadError) as exc:
        context = _estimator_context(request, picked=picked, form=form, error=str(exc))
        return render(request, "projects/estimate.html", context, status=400)
    throttle.count(request, "lead")
    messages.success(request, _("Thank you: we have your estimate and will write to you soon."))
    return redirect("projects:estimate", token=estimate.token)


def _submit(request: HttpRequest, form, *, source: str, estimate=None) -> Lead:
    data = form.cleaned_data
    return leads.submit_lead(
        source=source,
        name=data["name"],
        email=data["email"],
        phone=data.get("phone", ""),
        company=data.get("company", ""),
        message=data.get("message", ""),
        language=_language(),
        timezone=data.get("timezone", ""),
        estimate=estimate,
        ip=client_ip(request),
    )


@require_POST
def estimate_preview(request: HttpRequest) -> HttpResponse:
    """The range of what the form picks, as the partial the page swaps in (nothing stored). A
    refused selection is a 200 too, with the refusal in the partial: HTMX swaps in only
    successful answers, and the visitor must read why."""
    picked = _selections(request.POST)
    try:
        result, error = estimator.compute(picked, language=_language()), ""
    except estimator.EstimateError as exc:
        result, error = None, str(exc)
    return render(
        request,
        "projects/_range.html",
        {"result": result, "error": error, "language": _language()},
    )


def estimate_detail(request: HttpRequest, token: str) -> HttpResponse:
    """A stored estimate by its private link; without a lead yet, a form to send it."""
    estimate = estimator.reopen(token)
    if estimate is None:
        raise Http404
    form = ContactFields()
    status = 200
    if request.method == "POST" and estimate.lead_id is None:
        form = ContactFields(request.POST)
        if form.is_bot():
            return render(request, "projects/thanks.html", {"estimate": estimate})
        if form.is_valid():
            if throttle.over_limit(request, "lead"):
                return throttle.too_many(request)
            try:
                _submit(request, form, source=Lead.Source.ESTIMATOR, estimate=estimate)
            except leads.LeadError as exc:
                form.add_error(None, str(exc))
            else:
                throttle.count(request, "lead")
                messages.success(
                    request, _("Thank you: we have your estimate and will write to you soon.")
                )
                return redirect("projects:estimate", token=estimate.token)
        status = 400
    return render(
        request,
        "projects/estimate_detail.html",
        {"estimate": estimate, "form": form, "language": _language()},
        status=status,
    )


def contact(request: HttpRequest) -> HttpResponse:
    """The plain contact form: a lead with source "contact"."""
    form = ContactForm(request.POST or None)
    if request.method == "POST":
        if form.is_bot():
            return render(request, "projects/thanks.html", {"estimate": None})
        if form.is_valid():
            if throttle.over_limit(request, "lead"):
                return throttle.too_many(request)
            try:
                _submit(request, form, source=Lead.Source.CONTACT_FORM)
            except leads.LeadError as exc:
                form.add_error(None, str(exc))
            else:
                throttle.count(request, "lead")
                return render(request, "projects/thanks.html", {"estimate": None})
        return render(request, "projects/contact.html", {"form": form}, status=400)
    return render(request, "projects/contact.html", {"form": form})


# -- the customer's own ----------------------------------------------------------------------


def _own_leads(request: HttpRequest):
    account = request.user.account
    if account is None:
        return Lead.objects.none()
    return Lead.objects.filter(account=account)


@login_required
def my_leads(request: HttpRequest) -> HttpResponse:
    rows = _own_leads(request).prefetch_related("estimates")
    return render(request, "projects/my_leads.html", {"leads": rows, "language": _language()})


@login_required
def my_lead(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_object_or_404(_own_leads(request), pk=pk)
    return render(
        request,
        "projects/my_lead.html",
        {"lead": lead, "estimates": lead.estimates.all(), "language": _language()},
    )
