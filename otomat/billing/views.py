"""Customer billing pages and the public payment page. Thin: scope, parse, call a service,
render. A customer sees only their account's invoices and subscriptions (another account's are
404, never 403); the payment page is reached by the invoice's unguessable token."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.forms import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from otomat.billing import documents, payments, subscriptions
from otomat.billing.forms import BillingProfileForm, ProofForm
from otomat.billing.invoicing import BillingError
from otomat.billing.models import (
    BillingProfile,
    BillingSettings,
    CreditBalance,
    CreditNote,
    Invoice,
    Plan,
    Subscription,
)


def scoped_invoices(request: HttpRequest):
    qs = Invoice.objects.select_related("account", "subscription__instance")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


def scoped_subscriptions(request: HttpRequest):
    qs = Subscription.objects.select_related("plan__product", "instance", "account")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    if account is None:
        return redirect("billing:dashboard")
    subs = (
        scoped_subscriptions(request)
        .filter(account=account)
        .exclude(status__in=[Subscription.Status.CANCELED, Subscription.Status.TERMINATED])
    )
    open_invoices = scoped_invoices(request).filter(status=Invoice.Status.OPEN).order_by("due_at")
    return render(
        request,
        "billing/overview.html",
        {
            "subscriptions": subs,
            "open_invoices": open_invoices,
            "balances": CreditBalance.objects.filter(account=account, balance_minor__gt=0),
            "recent_payments": account.payments.select_related("invoice")[:10],
            "methods": payments.available_methods(account.currency),
        },
    )


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    invoices = scoped_invoices(request)
    status = request.GET.get("status", "")
    if status in Invoice.Status.values:
        invoices = invoices.filter(status=status)
    page = Paginator(invoices.order_by("-issued_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "billing/invoice_list.html",
        {"page": page, "status": status, "statuses": Invoice.Status.choices},
    )


@login_required
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = get_object_or_404(scoped_invoices(request), pk=invoice_id)
    return render(request, "billing/invoice_detail.html", _pay_context(request, invoice))


def _is_member(request: HttpRequest, invoice: Invoice) -> bool:
    """Staff, or a person of the invoice's account: may see the whole invoice."""
    return request.user.is_authenticated and (
        request.user.is_staff or request.user.account == invoice.account
    )


def _pay_context(request: HttpRequest, invoice: Invoice, proof_form: ProofForm | None = None):
    member = _is_member(request, invoice)
    return {
        "invoice": invoice,
        "lines": invoice.lines.all(),
        "payments": invoice.payments.all() if member else [],
        "credit_notes": invoice.credit_notes.all() if member else [],
        "methods": payments.available_methods(invoice.currency)
        if invoice.status == Invoice.Status.OPEN
        else [],
        "bank_instructions": BillingSettings.get().bank_transfer_instructions,
        "proofs": invoice.proofs.all() if member else [],
        "proof_form": proof_form or ProofForm(),
        "can_upload": member and not request.user.is_staff,
        "member": member,
    }


@login_required
def invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = get_object_or_404(scoped_invoices(request), pk=invoice_id)
    return _pdf_response(request, documents.stored_pdf(invoice), invoice.number)


@login_required
def credit_note_pdf(request: HttpRequest, note_id: int) -> HttpResponse:
    qs = CreditNote.objects.select_related("invoice__account")
    if not request.user.is_staff:
        qs = qs.filter(account=request.user.account) if request.user.account else qs.none()
    note = get_object_or_404(qs, pk=note_id)
    return _pdf_response(request, documents.stored_pdf(note), note.number)


def _pdf_response(request: HttpRequest, document, number: str) -> HttpResponse:
    """The stored PDF byte for byte, its SHA-256 as a strong ETag (304 when it matches)."""
    etag = f'"{document.sha256}"'
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(bytes(document.content), content_type="application/pdf")
        filename = number.replace("/", "-") + ".pdf"
        response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def _refuse_other_customers(request: HttpRequest, invoice: Invoice) -> None:
    """The token link works for whoever got the notice, logged in or not — but a person logged
    in to *another* customer account gets a 404, as everywhere else."""
    user = request.user
    if user.is_authenticated and not user.is_staff and user.account != invoice.account:
        raise Http404


def pay(request: HttpRequest, token: str) -> HttpResponse:
    """The payment page linked from every notice: works without logging in (the token is the
    capability), shows what is due and the ways to pay. A visitor who is not a member of the
    account sees only what paying needs (number, amount, due date), never the buyer's legal
    name, address or tax id. Once the invoice is paid or void the link stops working: 410 and
    a page that says so, without pay buttons (a POST starts no checkout either)."""
    invoice = get_object_or_404(Invoice.objects.select_related("account"), token=token)
    _refuse_other_customers(request, invoice)
    if invoice.status != Invoice.Status.OPEN:
        member = _is_member(request, invoice)
        return render(
            request, "billing/pay_closed.html", {"invoice": invoice, "member": member}, status=410
        )
    if request.method == "POST":
        method = request.POST.get("method", "")
        return_url = request.build_absolute_uri(reverse("billing:pay_return", args=[token]))
        try:
            checkout = payments.start_checkout(invoice, method, return_url=return_url)
        except BillingError as exc:
            messages.error(request, str(exc))
        else:
            return redirect(checkout.redirect_url)
    if request.user.is_authenticated:
        return render(request, "billing/pay.html", _pay_context(request, invoice))
    # Someone holding the link without logging in: the due time in the account's zone (named).
    with timezone.override(documents.buyer_zone(invoice.buyer or {})):
        return render(request, "billing/pay.html", _pay_context(request, invoice))


def pay_return(request: HttpRequest, token: str) -> HttpResponse:
    """Where the provider sends the customer back; the status updates itself (HTMX) until the
    provider's callback has arrived."""
    invoice = get_object_or_404(Invoice, token=token)
    _refuse_other_customers(request, invoice)
    template = "billing/_pay_status.html" if request.htmx else "billing/pay_return.html"
    return render(request, template, {"invoice": invoice, "member": _is_member(request, invoice)})


@login_required
@require_POST
def upload_proof(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = get_object_or_404(scoped_invoices(request), pk=invoice_id)
    if request.user.is_staff:
        raise Http404
    form = ProofForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            amount = form.fields["amount"].clean_amount(
                form.cleaned_data["amount"], invoice.currency
            )
            payments.submit_transfer_proof(
                invoice,
                upload=form.cleaned_data["file"],
                amount=amount,
                note=form.cleaned_data["note"],
                user=request.user,
            )
        except ValidationError as exc:
            form.add_error("amount", exc)
        except BillingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Thank you. Staff will confirm the transfer soon."))
            return redirect("billing:invoice", invoice_id=invoice.id)
    return render(
        request, "billing/invoice_detail.html", _pay_context(request, invoice, form), status=400
    )


@csrf_exempt
@require_POST
def callback(request: HttpRequest, gateway: str) -> HttpResponse:
    """A payment provider's server-to-server notification (signature checked by the adapter)."""
    status, content_type, body = payments.receive_callback(
        gateway,
        headers=dict(request.headers),
        body=request.body,
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    return HttpResponse(body, status=status, content_type=content_type)


@login_required
def change_plan(request: HttpRequest, subscription_id: int) -> HttpResponse:
    sub = get_object_or_404(scoped_subscriptions(request), pk=subscription_id)
    plans = Plan.objects.filter(
        product=sub.plan.product, is_active=True, currency=sub.plan.currency
    ).exclude(pk=sub.plan_id)
    wanted = request.POST.get("plan") or request.GET.get("plan") or ""
    chosen = plans.filter(pk=int(wanted)).first() if wanted.isdigit() else None
    preview, error = None, ""
    if wanted and chosen is None:
        error = _("Choose one of the plans listed.")
    if chosen is not None:
        try:
            preview = subscriptions.preview_plan_change(sub, chosen)
        except BillingError as exc:
            error = str(exc)
    if request.method == "POST" and chosen is not None and not error:
        try:
            invoice = subscriptions.change_plan(sub, chosen, actor=request.user)
        except BillingError as exc:
            error = str(exc)
        else:
            messages.success(request, _("Plan changed to %(name)s.") % {"name": chosen.name})
            if invoice is not None and invoice.status == Invoice.Status.OPEN:
                return redirect("billing:pay", token=invoice.token)
            return redirect("billing:overview")
    return render(
        request,
        "billing/change_plan.html",
        {"sub": sub, "plans": plans, "chosen": chosen, "preview": preview, "error": error},
        status=400 if error else 200,
    )


@login_required
@require_POST
def cancel(request: HttpRequest, subscription_id: int) -> HttpResponse:
    sub = get_object_or_404(scoped_subscriptions(request), pk=subscription_id)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Confirm the cancellation first."))
        return redirect("billing:overview")
    try:
        subscriptions.cancel_subscription(sub, actor=request.user)
    except BillingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("Cancelled. It keeps running until the end of the paid period.")
        )
    return redirect("billing:overview")


@login_required
@require_POST
def resume(request: HttpRequest, subscription_id: int) -> HttpResponse:
    sub = get_object_or_404(scoped_subscriptions(request), pk=subscription_id)
    try:
        subscriptions.resume_subscription(sub, actor=request.user)
    except BillingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("It renews again as usual."))
    return redirect("billing:overview")


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    if account is None:
        raise Http404
    instance = BillingProfile.objects.filter(account=account).first() or BillingProfile(
        account=account
    )
    form = BillingProfileForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Saved. New invoices show these details."))
        return redirect("billing:overview")
    return render(
        request,
        "billing/profile.html",
        {"form": form, "balance": {b.currency: b for b in account.credit_balances.all()}},
        status=400 if form.errors else 200,
    )
