"""Staff pages of leads (list, detail with status, assignee, notes and the customer account,
entering one by hand) and the owner's estimator pages (options and settings)."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.accounts.models import Account, User
from otomat.projects import estimator, leads, options
from otomat.projects.forms import LeadByHandForm, NoteForm, OptionForm, SettingsForm, StatusForm
from otomat.projects.models import EstimatorOption, EstimatorSettings, Lead

PAGE_SIZE = 25


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


def _language() -> str:
    return (get_language() or "en")[:2]


@staff_required
def lead_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    source = request.GET.get("source", "")
    q = request.GET.get("q", "").strip()[:100]
    rows = (
        Lead.objects.select_related("assignee", "account")
        .annotate(n_estimates=Count("estimates"))
        .order_by("-created_at", "-pk")  # annotate() drops Meta.ordering
    )
    if status in Lead.Status.values:
        rows = rows.filter(status=status)
    if source in Lead.Source.values:
        rows = rows.filter(source=source)
    if q:
        rows = rows.filter(Q(name__icontains=q) | Q(email__icontains=q) | Q(company__icontains=q))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = "".join(
        f"{name}={value}&" for name, value in (("status", status), ("source", source)) if value
    )
    return render(
        request,
        "projects/manage/leads.html",
        {
            "page": page,
            "status": status,
            "source": source,
            "q": q,
            "query": query + (f"q={q}&" if q else ""),
            "statuses": Lead.Status.choices,
            "sources": Lead.Source.choices,
            "filtered": bool(status or source or q),
        },
    )


@staff_required
def lead_new(request: HttpRequest) -> HttpResponse:
    form = LeadByHandForm(request.POST or None, initial={"language": _language()})
    if request.method == "POST" and form.is_valid():
        try:
            lead = leads.create_lead_by_hand(actor=request.user, **form.cleaned_data)
        except leads.LeadError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("The lead is saved."))
            return redirect("projects:lead", pk=lead.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "projects/manage/lead_new.html", {"form": form}, status=status)


@staff_required
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = get_object_or_404(Lead.objects.select_related("assignee", "account"), pk=pk)
    return render(request, "projects/manage/lead.html", _lead_context(lead))


def _lead_context(lead: Lead, **extra) -> dict:
    return {
        "lead": lead,
        "estimates": lead.estimates.all(),
        "notes": lead.lead_notes.select_related("author"),
        "history": leads.history(lead).select_related("actor")[:50],
        "status_form": StatusForm(initial={"status": lead.status}),
        "note_form": NoteForm(),
        "staff_people": User.objects.filter(is_staff=True, is_active=True).order_by("email"),
        "accounts": Account.objects.filter(
            is_internal=False, status=Account.Status.ACTIVE
        ).order_by("name")[:500],
        "language": _language(),
        **extra,
    }


@staff_required
@require_POST
def lead_action(request: HttpRequest, pk: int) -> HttpResponse:
    """One action on a lead, named by ``action``: status, assign, note, link, create_account."""
    lead = get_object_or_404(Lead, pk=pk)
    action = request.POST.get("action", "")
    try:
        if action == "status":
            form = StatusForm(request.POST)
            if not form.is_valid():
                raise leads.LeadError(_("Unknown status."))
            leads.set_status(lead, form.cleaned_data["status"], actor=request.user)
            done = _("The status is changed.")
        elif action == "assign":
            assignee = _pick(User.objects.filter(is_staff=True), request.POST.get("assignee"))
            leads.assign(lead, assignee, actor=request.user)
            done = _("The lead is assigned.")
        elif action == "note":
            form = NoteForm(request.POST)
            if not form.is_valid():
                raise leads.LeadError(_("The note is empty or too long."))
            leads.add_note(lead, form.cleaned_data["body"], actor=request.user)
            done = _("The note is added.")
        elif action == "link":
            account = _pick(Account.objects.all(), request.POST.get("account"))
            leads.link_account(lead, account, actor=request.user)
            done = _("The customer account is linked.") if account else _("The link is removed.")
        elif action == "create_account":
            leads.create_account_for(
                lead, actor=request.user, account_name=request.POST.get("account_name", "")
            )
            done = _("The customer account is created; they get a link to choose a password.")
        else:
            raise leads.LeadError(_("Unknown action."))
    except leads.LeadError as exc:
        messages.error(request, str(exc))
        lead.refresh_from_db()
        return render(request, "projects/manage/lead.html", _lead_context(lead), status=400)
    messages.success(request, done)
    return redirect("projects:lead", pk=lead.pk)


def _pick(queryset, value: str | None):
    """The row ``value`` names (None for an empty value); LeadError for an unknown one."""
    if not value:
        return None
    try:
        return queryset.get(pk=int(value))
    except (ValueError, queryset.model.DoesNotExist):
        raise leads.LeadError(_("Unknown choice.")) from None


# -- the owner's estimator ------------------------------------------------------------------


@owner_required
def option_list(request: HttpRequest) -> HttpResponse:
    row = EstimatorSettings.current()
    language = _language()
    rows = [
        {
            "option": option,
            "title": option.text("title", language),
            "group": option.text("group", language),
            "requires": [o.text("title", language) for o in option.requires.all()],
            "weeks": estimator.format_weeks(option.weeks_min, option.weeks_max, language),
            "cost": estimator.format_money_range(
                option.cost_min_minor, option.cost_max_minor, row.currency, language
            ),
        }
        for option in EstimatorOption.objects.prefetch_related("requires")
    ]
    return render(request, "projects/manage/options.html", {"rows": rows, "settings_row": row})


@owner_required
def option_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    option = get_object_or_404(EstimatorOption, pk=pk) if pk else EstimatorOption()
    currency = EstimatorSettings.current().currency
    form = OptionForm(request.POST or None, instance=option, currency=currency)
    if request.method == "POST":
        if form.is_valid():
            options.save_option(form, actor=request.user)
            messages.success(request, _("The option is saved."))
            return redirect("projects:options")
        status = 400
    else:
        status = 200
    return render(
        request,
        "projects/manage/option_edit.html",
        {"form": form, "option": option, "currency": currency},
        status=status,
    )


@owner_required
def option_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks to confirm (naming what requires it); POST deletes."""
    option = get_object_or_404(EstimatorOption, pk=pk)
    if request.method == "POST":
        options.delete_option(option, actor=request.user)
        messages.success(request, _("The option is deleted."))
        return redirect("projects:options")
    return render(
        request,
        "projects/manage/option_delete.html",
        {"option": option, "required_by": option.required_by.all()},
    )


@owner_required
def estimator_settings(request: HttpRequest) -> HttpResponse:
    row = EstimatorSettings.current()
    form = SettingsForm(request.POST or None, instance=row)
    if request.method == "POST":
        if form.is_valid():
            options.save_settings(form, actor=request.user)
            messages.success(request, _("The estimator's settings are saved."))
            return redirect("projects:settings")
        status = 400
    else:
        status = 200
    return render(request, "projects/manage/settings.html", {"form": form}, status=status)
