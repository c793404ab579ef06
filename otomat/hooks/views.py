"""Pages of outgoing webhooks: the list, subscribe, the endpoint with its delivery log, and its
actions. Thin: parse, call otomat.hooks.services, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.hooks import services
from otomat.hooks.forms import EndpointForm
from otomat.hooks.models import Delivery, Endpoint

PAGE_SIZE = 25


def _endpoint(request: HttpRequest, pk: int) -> Endpoint:
    endpoint = get_object_or_404(services.endpoints_for(request.user), pk=pk)
    if not services.can_manage(request.user, endpoint):
        raise Http404
    return endpoint


def _form_errors(form: EndpointForm, exc: ValidationError) -> None:
    for message in exc.messages:
        form.add_error("url" if "address" in message or "URL" in message else None, message)


@login_required
def endpoint_list(request: HttpRequest) -> HttpResponse:
    rows = services.endpoints_for(request.user)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "hooks/list.html", {"page": page, "endpoints": page.object_list})


@login_required
def endpoint_new(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff and request.user.account is None:
        raise Http404
    choices = services.events_for(request.user)
    form = EndpointForm(request.POST or None, event_choices=choices)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.create_endpoint(
                user=request.user,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(
                request,
                _("Webhook added. Copy its signing secret below to verify what Otomat sends."),
            )
            return redirect("hooks:detail", pk=endpoint.pk)
    return render(
        request,
        "hooks/form.html",
        {"form": form, "endpoint": None},
        status=400 if form.errors else 200,
    )


@login_required
def endpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    choices = services.events_for(request.user)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
    }
    form = EndpointForm(request.POST or None, initial=initial, event_choices=choices, editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_endpoint(
                endpoint,
                user=request.user,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                is_active=form.cleaned_data["is_active"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Webhook saved."))
            return redirect("hooks:detail", pk=endpoint.pk)
    return render(
        request,
        "hooks/form.html",
        {"form": form, "endpoint": endpoint},
        status=400 if form.errors else 200,
    )


@login_required
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    deliveries = endpoint.deliveries.all()
    status = request.GET.get("status", "")
    if status in Delivery.Status.values:
        deliveries = deliveries.filter(status=status)
    page = Paginator(deliveries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "hooks/detail.html",
        {
            "endpoint": endpoint,
            "page": page,
            "deliveries": page.object_list,
            "status": status,
            "statuses": Delivery.Status.choices,
        },
    )


@login_required
@require_POST
def endpoint_test(request: HttpRequest, pk: int) -> HttpResponse:
    row = services.send_test(_endpoint(request, pk), user=request.user)
    if row.status == Delivery.Status.DELIVERED:
        messages.success(request, _("The test event was delivered."))
    else:
        messages.error(
            request, _("The test event was not delivered: %(error)s") % {"error": row.last_error}
        )
    return redirect("hooks:detail", pk=pk)


@login_required
@require_POST
def endpoint_roll(request: HttpRequest, pk: int) -> HttpResponse:
    services.roll_secret(_endpoint(request, pk), user=request.user)
    messages.success(request, _("A new signing secret is in use; the old one no longer is."))
    return redirect("hooks:detail", pk=pk)


@login_required
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    if request.method == "POST":
        services.delete_endpoint(endpoint, user=request.user)
        messages.success(request, _("Webhook deleted."))
        return redirect("hooks:list")
    return render(request, "hooks/delete.html", {"endpoint": endpoint})


@login_required
@require_POST
def delivery_resend(request: HttpRequest, pk: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    row = get_object_or_404(endpoint.deliveries, pk=delivery_id)
    row = services.redeliver(row, user=request.user)
    if row.status == Delivery.Status.DELIVERED:
        messages.success(request, _("Delivered again."))
    else:
        messages.error(request, _("Not delivered: %(error)s") % {"error": row.last_error})
    return redirect("hooks:detail", pk=pk)


@login_required
def signature_docs(request: HttpRequest) -> HttpResponse:
    return render(request, "hooks/docs.html")
