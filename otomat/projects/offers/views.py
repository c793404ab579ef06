"""The owner's and staff's pages: offers list, detail (versions, contract status, milestones),
the editor, sending and withdrawing, and the contract templates (owner only). Thin: parse, call
a service, render. Non-staff get a 404 on all of them."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.accounts.models import Account
from otomat.projects.models import Estimate, Lead
from otomat.projects.offers import contracts, schedule, services
from otomat.projects.offers.downloads import pdf_response
from otomat.projects.offers.forms import EXTRA_ROWS, TemplateForm, major, parse_editor
from otomat.projects.offers.models import Contract, ContractTemplate, Milestone, Offer


def staff_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@staff_required
def offer_list(request):
    qs = Offer.objects.select_related("lead", "account").order_by("-created_at", "-pk")
    status = request.GET.get("status", "")
    if status in Offer.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "offers/staff/list.html",
        {"page": page, "status": status, "statuses": Offer.Status.choices},
    )


def _editor_rows(offer: Offer | None, data) -> dict:
    """The rows the editor shows: the offer's (or the posted ones) and blank ones to add."""
    if data is not None:
        return {"posted": data}
    if offer is None:
        return {"lines": [], "milestones": [], "steps": []}
    cur = offer.currency
    milestones = list(offer.milestones.all())
    position = {m.pk: n for n, m in enumerate(milestones, start=1)}
    return {
        "lines": [
            {
                "kind": line.kind,
                "title": line.title,
                "description": line.description,
                "quantity": line.quantity,
                "unit_price": major(line.unit_price_minor, cur) if line.kind == "exact" else "",
                "cost_min": major(line.cost_min_minor, cur) if line.kind == "range" else "",
                "cost_max": major(line.cost_max_minor, cur) if line.kind == "range" else "",
                "weeks_min": line.weeks_min,
                "weeks_max": line.weeks_max,
            }
            for line in offer.lines.all()
        ],
        "milestones": [
            {
                "title": m.title,
                "weeks": m.weeks if m.weeks is not None else "",
                "due_date": m.due_date.isoformat() if m.due_date else "",
                "amount": major(m.amount_minor, cur),
            }
            for m in milestones
        ],
        "steps": [
            {
                "label": s.label,
                "trigger": s.trigger,
                "milestone": position.get(s.milestone_id, ""),
                "percent": s.percent if s.percent is not None else "",
                "amount": major(s.amount_minor, cur),
            }
            for s in offer.payment_steps.all()
        ],
    }


def _padded(rows: list[dict]) -> list[dict]:
    return rows + [{} for _n in range(EXTRA_ROWS)]


def _editor(request, offer: Offer | None, *, error: str = "", posted=None):
    rows = _editor_rows(offer, None)
    if posted is not None:
        rows = _posted_rows(posted)
    fields = posted or {}
    if offer is not None and posted is None:
        fields = {
            "title": offer.title,
            "summary": offer.summary,
            "currency": offer.currency,
            "language": offer.language,
            "valid_until": offer.valid_until.isoformat(),
            "revision_rounds": offer.revision_rounds,
            "agreed_total": major(offer.agreed_total_minor, offer.currency),
        }
    context = {
        "offer": offer,
        "error": error,
        "fields": fields,
        "lines": _padded(rows["lines"]),
        "milestones": _padded(rows["milestones"]),
        "steps": _padded(rows["steps"]),
        "leads": Lead.objects.order_by("-created_at")[:200],
        "accounts": Account.objects.filter(is_internal=False).order_by("name")[:500],
        "currencies": Offer._meta.get_field("currency").choices,
        "languages": Offer._meta.get_field("language").choices,
        "kinds": Offer.lines.rel.related_model.Kind.choices,
        "triggers": Offer.payment_steps.rel.related_model.Trigger.choices,
    }
    return render(request, "offers/staff/editor.html", context, status=400 if error else 200)


def _posted_rows(post) -> dict:
    out = {}
    for prefix, key in (("line", "lines"), ("milestone", "milestones"), ("step", "steps")):
        try:
            count = min(int(post.get(f"{prefix}-count", "0")), 100)
        except ValueError:
            count = 0
        out[key] = [
            {
                k.removeprefix(f"{prefix}-{n}-"): v
                for k, v in post.items()
                if k.startswith(f"{prefix}-{n}-")
            }
            for n in range(count)
        ]
        out[key] = [row for row in out[key] if any(v.strip() for v in row.values())]
    return out


@staff_required
def offer_new(request):
    if request.method != "POST":
        return _editor(request, None)
    lead = account = None
    if request.POST.get("lead"):
        lead = Lead.objects.filter(pk=_pk(request.POST["lead"])).first()
    if request.POST.get("account"):
        account = Account.objects.filter(pk=_pk(request.POST["account"]), is_internal=False).first()
    try:
        if (request.POST.get("lead") and lead is None) or (
            request.POST.get("account") and not account
        ):
            raise services.OfferError(_("Unknown lead or account."))
        data = parse_editor(request.POST)
        offer = services.create_offer(data, actor=request.user, lead=lead, account=account)
    except services.OfferError as exc:
        return _editor(request, None, error=str(exc), posted=request.POST)
    messages.success(request, _("Offer %(number)s saved as a draft.") % {"number": offer.number})
    return redirect("offers:detail", offer.pk)


def _pk(raw: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


@staff_required
@require_POST
def offer_from_estimate(request, estimate_id: int):
    estimate = get_object_or_404(Estimate, pk=estimate_id)
    try:
        offer = services.from_estimate(estimate, actor=request.user)
    except services.OfferError as exc:
        messages.error(request, str(exc))
        return redirect("offers:list")
    messages.success(
        request, _("Offer %(number)s drafted from the estimate.") % {"number": offer.number}
    )
    return redirect("offers:edit", offer.pk)


@staff_required
def offer_edit(request, pk: int):
    offer = get_object_or_404(Offer, pk=pk)
    if request.method != "POST":
        if not offer.is_editable:
            messages.error(request, _("This offer can no longer change."))
            return redirect("offers:detail", offer.pk)
        return _editor(request, offer)
    try:
        data = parse_editor(request.POST)
        before = offer.version
        offer = services.update_offer(offer, data, actor=request.user)
    except services.OfferError as exc:
        return _editor(request, offer, error=str(exc), posted=request.POST)
    if offer.version != before:
        messages.success(
            request,
            _("Saved as version %(version)s; the client now reads this one.")
            % {"version": offer.version},
        )
    else:
        messages.success(request, _("Offer saved."))
    return redirect("offers:detail", offer.pk)


@staff_required
def offer_detail(request, pk: int):
    offer = get_object_or_404(Offer.objects.select_related("lead", "account", "estimate"), pk=pk)
    contract = Contract.objects.filter(offer=offer).first()
    return render(
        request,
        "offers/staff/detail.html",
        {
            "offer": offer,
            "totals": services.totals(offer),
            "schedule": services.schedule_amounts(offer),
            "versions": offer.versions.all(),
            "contract": contract,
            "intact": contracts.verify(contract) if contract else None,
            "signature": getattr(contract, "signature", None) if contract else None,
            "client_url": services.client_url(offer),
        },
    )


@staff_required
@require_POST
def offer_send(request, pk: int):
    offer = get_object_or_404(Offer, pk=pk)
    try:
        services.send_offer(offer, actor=request.user)
    except services.OfferError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Offer sent to the client."))
    return redirect("offers:detail", offer.pk)


@staff_required
@require_POST
def offer_withdraw(request, pk: int):
    offer = get_object_or_404(Offer, pk=pk)
    try:
        services.withdraw_offer(offer, actor=request.user)
    except services.OfferError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Offer withdrawn."))
    return redirect("offers:detail", offer.pk)


@staff_required
@require_POST
def milestone_done(request, pk: int, milestone_id: int):
    milestone = get_object_or_404(Milestone, pk=milestone_id, offer_id=pk)
    try:
        invoices = schedule.complete_milestone(milestone, actor=request.user)
    except services.OfferError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Milestone done; invoices: %(numbers)s")
            % {"numbers": ", ".join(i.number for i in invoices) or "—"},
        )
    return redirect("offers:detail", pk)


@staff_required
@require_POST
def release_invoice(request, pk: int):
    offer = get_object_or_404(Offer, pk=pk)
    try:
        invoices = schedule.invoice_release(offer, actor=request.user)
    except services.OfferError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Release invoiced: %(numbers)s")
            % {"numbers": ", ".join(i.number for i in invoices) or "—"},
        )
    return redirect("offers:detail", pk)


@staff_required
def staff_pdf(request, pk: int):
    contract = get_object_or_404(Contract, offer_id=pk)
    return pdf_response(request, contract, signed=request.GET.get("signed") == "1")


@staff_required
def templates(request):
    if not request.user.is_superuser:
        raise Http404
    language = request.POST.get("language") or request.GET.get("language") or "en"
    if language not in services.LANGUAGES:
        raise Http404
    error = ""
    if request.method == "POST":
        form = TemplateForm(request.POST)
        if form.is_valid():
            try:
                contracts.save_template(
                    language=form.cleaned_data["language"],
                    title=form.cleaned_data["title"],
                    body=form.cleaned_data["body"],
                    actor=request.user,
                )
            except ValidationError as exc:
                error = " ".join(exc.messages)
            else:
                messages.success(request, _("Contract template saved."))
                return redirect(f"{request.path}?language={language}")
        else:
            error = " ".join(e for errors in form.errors.values() for e in errors)
        title, body = request.POST.get("title", ""), request.POST.get("body", "")
    else:
        title, body = contracts.template_for(language)
    saved = ContractTemplate.objects.filter(language=language).first()
    return render(
        request,
        "offers/staff/templates.html",
        {
            "language": language,
            "languages": Offer._meta.get_field("language").choices,
            "title": title,
            "body": body,
            "error": error,
            "saved": saved,
            "placeholders": contracts.PLACEHOLDERS,
            "now": timezone.now(),
        },
        status=400 if error else 200,
    )
