"""Catalog pages: the public product list and detail, the live field check (HTMX), and the
staff pages to upload and review product versions. Views parse, call a service, render."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.catalog import i18n, services
from otomat.catalog.errors import CatalogError, CheckError
from otomat.catalog.forms import ARCHIVE_SUFFIXES, UploadForm
from otomat.catalog.models import Product, ProductVersion
from otomat.catalog.schema_form import bot_id_of, check_value, field_specs
from otomat.catalog.values import is_multiline, text_problem


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to the login page; logged-in non-staff get a 404, so the staff
    pages do not even admit they exist."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _visible_product(request: HttpRequest, slug: str) -> Product:
    """A listed product, or any product for staff; 404 otherwise."""
    product = get_object_or_404(Product, slug=slug)
    if not product.is_listed and not request.user.is_staff:
        raise Http404
    return product


def product_list(request: HttpRequest) -> HttpResponse:
    latest = ProductVersion.objects.filter(product=OuterRef("pk")).order_by("-created_at", "-id")
    products = list(
        Product.objects.filter(is_listed=True, versions__isnull=False)
        .distinct()
        .annotate(latest_id=Subquery(latest.values("pk")[:1]))
        .order_by("name")
    )
    versions = ProductVersion.objects.in_bulk([p.latest_id for p in products])
    for product in products:
        version = versions[product.latest_id]
        product.latest_version = version.version
        # The manifest's texts in the reader's language, else its default ones.
        product.display_name = i18n.product_text(version, "name")
        product.display_description = i18n.product_text(version, "description")
    products.sort(key=lambda p: p.display_name.casefold())
    return render(request, "catalog/list.html", {"products": products})


def detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = _visible_product(request, slug)
    versions = list(product.versions.order_by("-created_at", "-id"))
    if not versions:
        raise Http404
    latest = versions[0]
    settings_fields = [
        {
            "label": i18n.schema_text(spec.schema, "title") or spec.dotted,
            "description": i18n.schema_text(spec.schema, "description") or "",
            "required": spec.required,
            "secret": spec.secret,
        }
        for spec in field_specs(latest.config_schema)
    ]
    from otomat.billing.subscriptions import plans_for

    account = request.user.account if request.user.is_authenticated else None
    return render(
        request,
        "catalog/detail.html",
        {
            "product": product,
            "latest": latest,
            "plans": plans_for(product, account),
            "versions": versions,
            "settings_fields": settings_fields,
            "can_try": bool(settings.EMULATOR_URL),
        },
    )


@require_POST
def try_it(request: HttpRequest, slug: str) -> HttpResponse:
    """Anyone: start (or reuse, one per browser session) a short trial on the emulator and open
    its web chat."""
    from otomat.instances.models import Instance
    from otomat.instances.sandboxes import start_trial
    from otomat.instances.services import InstanceError
    from otomat.lib.emulator import chat_url

    product = _visible_product(request, slug)
    version = product.latest_version()
    if version is None:
        raise Http404
    trials = request.session.get("trials", {})
    existing = (
        Instance.objects.filter(pk=trials.get(str(version.pk)), kind=Instance.Kind.TRIAL)
        .exclude(state=Instance.State.TERMINATED)
        .first()
        if trials.get(str(version.pk))
        else None
    )
    if existing is None:
        try:
            existing = start_trial(
                version, actor=request.user if request.user.is_authenticated else None
            )
        except InstanceError as exc:
            messages.error(request, str(exc))
            return redirect("catalog:detail", slug=slug)
        trials[str(version.pk)] = str(existing.pk)
        request.session["trials"] = trials
    return redirect(trial_chat_url(chat_url(existing.emulator_bot), version, slug))


def trial_chat_url(chat: str, version: ProductVersion, slug: str) -> str:
    """The emulator's chat with a trial's bot, told (in the visitor's language) what to say
    first and the way back to the product page. The chat page follows ``back`` only to a
    relative path or this installation's address (``otomat/tgemu/static/chat.js``)."""
    from urllib.parse import urlencode

    from django.urls import reverse
    from django.utils.translation import get_language

    name = i18n.product_text(version, "name")
    query = {
        "hint": _("Say /start to try %(product)s.") % {"product": name},
        "back": settings.BASE_URL.rstrip("/") + reverse("catalog:detail", args=[slug]),
        "back_label": _("Back to %(product)s") % {"product": name},
        "lang": get_language() or settings.LANGUAGE_CODE,
    }
    return f"{chat}?{urlencode(query)}"


@require_POST
def check_field(request: HttpRequest, slug: str, field: str) -> HttpResponse:
    """HTMX: run the live check of one field of the product's latest version.

    Answers 200 with a small fragment (the confirmation or the error) so htmx swaps it in; the
    submitted value is never echoed. Logged-in people only: the check calls a remote service.
    """
    if not request.user.is_authenticated:
        return HttpResponse(_("Log in to check this value."), status=403)
    product = _visible_product(request, slug)
    version = product.latest_version()
    spec = {s.name: s for s in field_specs(version.config_schema)}.get(field) if version else None
    if spec is None or not spec.check:
        raise Http404
    raw = _posted_value(request, field).strip()
    # A list field (one item per line) is checked item by item.
    value: str | list[str] = (
        [line.strip() for line in raw.splitlines() if line.strip()][:20]
        if spec.kind == "lines"
        else raw
    )
    context: dict[str, Any] = {"ok": None, "message": ""}
    problem = next(
        filter(
            None,
            (
                text_problem(item, multiline=is_multiline(spec.schema))
                for item in ([value] if isinstance(value, str) else value)
            ),
        ),
        None,
    )
    if problem:
        # What the form refuses on submit is refused while typing, before any remote call.
        context = {"ok": False, "message": problem}
    elif value:
        try:
            message = check_value(spec.check, value, source_dir=version.source_path)
            context = {"ok": True, "message": message}
        except CheckError as exc:
            context = {"ok": False, "message": str(exc)}
    if context["ok"] and spec.check == "telegram_token" and isinstance(value, str):
        context = _bot_taken(request, value) or context
    return render(request, "catalog/_check_result.html", context)


def _bot_taken(request: HttpRequest, token: str) -> dict[str, Any] | None:
    """A real bot may still be taken: another live instance already uses it (the same refusal
    the form gives on submit). The edit form names its own instance in ``_instance``."""
    import uuid

    from otomat.instances.models import Instance
    from otomat.instances.services import bot_in_use

    account = request.user.account
    bot_id = bot_id_of(token)
    if account is None or not bot_id:
        return None
    try:
        own = uuid.UUID(request.POST.get("_instance", ""))
    except ValueError:
        own = None
    if own is not None:  # only one of the person's own instances can be left out
        own = Instance.objects.filter(pk=own, account=account).values_list("pk", flat=True).first()
    refusal = bot_in_use(bot_id, account=account, instance_id=own)
    return {"ok": False, "message": refusal} if refusal else None


def _posted_value(request: HttpRequest, field: str) -> str:
    # hx-post sends the enclosing form, where the field may carry a form prefix ("cfg-field").
    if field in request.POST:
        return request.POST[field]
    for key in request.POST:
        if key.endswith(f"-{field}"):
            return request.POST[key]
    return ""


@staff_required
def manage(request: HttpRequest) -> HttpResponse:
    versions = ProductVersion.objects.select_related("created_by").order_by("-created_at", "-id")
    products = Product.objects.prefetch_related(Prefetch("versions", queryset=versions)).order_by(
        "name"
    )
    return render(request, "catalog/manage.html", {"products": products})


@staff_required
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            version = _import_upload(form.cleaned_data["archive"], actor=request.user)
        except CatalogError as exc:
            form.add_error("archive", str(exc))
        else:
            messages.success(
                request,
                _("%(product)s %(version)s was imported.")
                % {"product": version.product.name, "version": version.version},
            )
            return redirect("catalog:detail", slug=version.product.slug)
    return render(
        request, "catalog/upload.html", {"form": form}, status=400 if form.errors else 200
    )


def _import_upload(upload: UploadedFile, *, actor: Any) -> ProductVersion:
    """Write the upload to a private temporary file and import it; the file is always removed."""
    name = (upload.name or "").lower()
    suffix = next((s for s in ARCHIVE_SUFFIXES if name.endswith(s)), "")
    with tempfile.NamedTemporaryFile(prefix="otomat-upload-", suffix=suffix, delete=False) as fh:
        path = Path(fh.name)
        for chunk in upload.chunks():
            fh.write(chunk)
    try:
        return services.import_product(path, actor=actor, source_name=upload.name or "")
    finally:
        path.unlink(missing_ok=True)
