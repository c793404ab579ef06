"""The client's pages: the offer by its private link (the lead, or a logged-in member of the
offer's account), accepting and declining it, the contract's signing page, its PDFs and the
certificate of completion, and the customer's list of their offers. Pages are in the offer's
language. A draft, an unknown link, or another customer's offer is a 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.accounts.throttle import client_ip
from otomat.projects.offers import contracts, services
from otomat.projects.offers.downloads import pdf_response
from otomat.projects.offers.forms import DeclineForm, SignForm
from otomat.projects.offers.models import Contract, Offer


def _offer(request, token: str) -> Offer:
    """The offer of this private link, if the reader may see it (else 404): never a draft,
    and a logged-in customer of another account is refused even with the link."""
    offer = get_object_or_404(
        Offer.objects.select_related("lead", "account").exclude(status=Offer.Status.DRAFT),
        token=token,
    )
    user = request.user
    if user.is_authenticated and not user.is_staff and offer.account_id is not None:
        account = user.account
        if account is None or account.pk != offer.account_id:
            raise Http404
    return offer


def _actor(request, offer: Offer):
    """The logged-in customer deciding (a member of the offer's account), or None: the lead
    by the private link."""
    user = request.user
    member = user.is_authenticated and user.account is not None
    if member and not user.is_staff and offer.account_id == user.account.pk:
        return user
    return None


def _render(request, offer: Offer, template: str, context: dict, status: int = 200):
    with translation.override(offer.language):
        return render(request, template, {"offer": offer, **context}, status=status)


def _version(request) -> int:
    try:
        return int(request.POST.get("version", ""))
    except ValueError:
        return -1


def offer_page(request, token: str, *, error: str = "", status: int = 200, decline=None):
    offer = _offer(request, token)
    return _render(
        request,
        offer,
        "offers/client/offer.html",
        {
            "totals": services.totals(offer),
            "schedule": services.schedule_amounts(offer),
            "contract": Contract.objects.filter(offer=offer).first(),
            "decline_form": decline or DeclineForm(),
            "error": error,
            "can_decide": offer.status == Offer.Status.SENT and not request.user.is_staff,
        },
        status=status,
    )


@require_POST
def accept(request, token: str):
    offer = _offer(request, token)
    with translation.override(offer.language):
        try:
            services.accept_offer(
                offer,
                version=_version(request),
                actor=_actor(request, offer),
                ip=client_ip(request),
            )
        except services.OfferError as exc:
            return offer_page(request, token, error=str(exc), status=400)
        messages.success(request, _("Thank you: the offer is accepted. Please sign the contract."))
    return redirect("offers:client_contract", token)


@require_POST
def decline(request, token: str):
    offer = _offer(request, token)
    with translation.override(offer.language):
        form = DeclineForm(request.POST)
        if not form.is_valid():
            return offer_page(request, token, status=400, decline=form)
        try:
            services.decline_offer(
                offer,
                version=_version(request),
                reason=form.cleaned_data["reason"],
                actor=_actor(request, offer),
                ip=client_ip(request),
            )
        except services.OfferError as exc:
            return offer_page(request, token, error=str(exc), status=400)
        messages.success(request, _("The offer is declined. Thank you for telling us why."))
    return redirect("offers:client_offer", token)


def _contract(request, token: str) -> tuple[Offer, Contract]:
    offer = _offer(request, token)
    contract = Contract.objects.filter(offer=offer).select_related("account").first()
    if contract is None:
        raise Http404
    return offer, contract


def contract_page(request, token: str):
    offer, contract = _contract(request, token)
    error, status = "", 200
    with translation.override(offer.language):
        form = SignForm(request.POST or None)
        if request.method == "POST":
            if form.is_valid():
                try:
                    contracts.sign_contract(
                        contract,
                        name=form.cleaned_data["name"],
                        consent=form.cleaned_data["consent"],
                        consent_shown=request.POST.get("consent_text", ""),
                        document_sha256=request.POST.get("document_sha256", ""),
                        user=_actor(request, offer),
                        lead=offer.lead,
                        ip=client_ip(request),
                        user_agent=request.headers.get("User-Agent", ""),
                    )
                except services.OfferError as exc:
                    error, status = str(exc), 400
                else:
                    messages.success(request, _("The contract is signed. Thank you!"))
                    return redirect("offers:certificate", token)
            else:
                status = 400
        contract.refresh_from_db()
        return _render(
            request,
            offer,
            "offers/client/contract.html",
            {
                "contract": contract,
                "form": form,
                "error": error,
                "consent_text": contracts.consent_text(contract.language),
                "can_sign": contract.status == Contract.Status.AWAITING_SIGNATURE
                and not request.user.is_staff,
            },
            status=status,
        )


def contract_pdf(request, token: str):
    _offer_row, contract = _contract(request, token)
    return pdf_response(request, contract, signed=request.GET.get("signed") == "1")


def certificate(request, token: str):
    offer, contract = _contract(request, token)
    signature = getattr(contract, "signature", None)
    if signature is None:
        raise Http404
    return _render(
        request,
        offer,
        "offers/client/certificate.html",
        {"contract": contract, "signature": signature, "intact": contracts.verify(contract)},
    )


@login_required
def mine(request):
    account = request.user.account
    if account is None:
        raise Http404
    offers = services.for_account(account).select_related("contract").order_by("-created_at")
    return render(request, "offers/client/mine.html", {"offers": offers})


@login_required
def mine_detail(request, number: str):
    account = request.user.account
    if account is None:
        raise Http404
    offer = get_object_or_404(services.for_account(account), number=number)
    return redirect("offers:client_offer", offer.token)
