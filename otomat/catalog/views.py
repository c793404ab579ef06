"""Catalog pages: the public product list and the staff pages to upload and review product
versions; what the product page needs from the catalog (:func:`product_context`). The product
page itself, its "Try it" and the live field check also show plans and instances, so they are
composed above both in ``otomat.web.catalog_pages``. Views parse, call a service, render."""

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

from otomat.catalog import i18n, services
from otomat.catalog.errors import CatalogError
from otomat.catalog.forms import ARCHIVE_SUFFIXES, UploadForm
from otomat.catalog.models import Product, ProductVersion
from otomat.catalog.schema_form import field_specs


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


def visible_product(request: HttpRequest, slug: str) -> Product:
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
    # Only what the list shows: the version's number and its manifest's texts (not its settings
    # schema and command, two more JSON documents to decode per product).
    versions = ProductVersion.objects.only("id", "product_id", "version", "manifest").in_bulk(
        [p.latest_id for p in products]
    )
    for product in products:
        version = versions[product.latest_id]
        version.product = product  # a manifest without the text falls back to the product's
        product.latest_version = version.version
        # The manifest's texts in the reader's language, else its default ones.
        product.display_name = i18n.product_text(version, "name")
        product.display_description = i18n.product_text(version, "description")
    products.sort(key=lambda p: p.display_name.casefold())
    return render(request, "catalog/list.html", {"products": products})


def product_context(request: HttpRequest, slug: str) -> dict[str, Any]:
    """What the catalog knows for a product's page (``catalog/detail.html``): the product, its
    versions newest first, the latest one and its settings in the reader's language, whether it
    can be tried. 404 for a product the person may not see or one without a version. The page
    itself, with the plans it is sold on, is composed above (``otomat.web.catalog_pages``)."""
    product = visible_product(request, slug)
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
    return {
        "product": product,
        "latest": latest,
        "versions": versions,
        "settings_fields": settings_fields,
        "can_try": bool(settings.EMULATOR_URL),
    }


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
