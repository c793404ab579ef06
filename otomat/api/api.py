"""The REST API, /api/v1/, with bearer-token auth and a generated OpenAPI document (/api/v1/docs).

Every endpoint is scoped to the token owner's account (staff see everything); another tenant's
object is a 404, exactly like a missing one."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.security import HttpBearer
from pydantic import Field

from otomat.accounts.models import ApiToken
from otomat.accounts.services import record_audit
from otomat.api.lists import narrowed, ranged
from otomat.api.schemas import Line, answers, line
from otomat.billing.invoicing import BillingError
from otomat.billing.ordering import order_product
from otomat.billing.subscriptions import plans_for
from otomat.catalog.models import Product
from otomat.catalog.schema_form import (
    ConfigError,
    keep_blank_secrets,
    run_live_checks,
    validate_config,
)
from otomat.instances import services
from otomat.instances.models import Instance
from otomat.lib.limits import TOO_LARGE, body_limit, too_large_message
from otomat.runtime.logs import tail


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        row = (
            ApiToken.objects.select_related("user")
            .filter(digest=ApiToken.hash(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if row is None:
            return None
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
        request.user = row.user
        return row.user


api = NinjaAPI(
    title="Otomat API",
    version="1",
    description="Catalog, instances, billing and support. Authenticate with `Authorization: Bearer <token>` "
    "(create a token under Account → API tokens); without a valid token every endpoint answers 401.\n\n"
    "Every error is JSON with a `detail`: a sentence (`Error`); for a refused configuration, the "
    "messages of each setting by its dotted path (`ConfigErrors`); for a parameter or body of the "
    "wrong shape, a 422 with one item per problem (`ValidationErrors`). "
    f"A request body over {body_limit()} is a 413. Text must be UTF-8 without control "
    "characters (a message may hold line breaks and tabs); numbers must be finite.",
    auth=TokenAuth(),
    urls_namespace="api",
)


def _too_large(request, exc):
    """A body over Django's limits is a JSON 413 that says which limit, not a bare 400."""
    return api.create_response(request, {"detail": too_large_message(exc, api=True)}, status=413)


for _exc in TOO_LARGE:
    api.add_exception_handler(_exc, _too_large)


LogLines = ranged(1, 1000, 100, "How many of the last lines")


class VersionOut(Schema):
    version: str
    runtime: str
    config_schema: dict


class ProductOut(Schema):
    slug: str
    name: str
    description: str
    latest_version: VersionOut | None


class InstanceIn(Schema):
    product: Line = line(64, description="The product's slug.")
    name: Line = line(100, default="")
    config: dict[str, Any] = Field(
        description="The settings the product's `config_schema` asks for."
    )
    plan: Line = line(
        20, default="", description="The plan's code, for a product sold by subscription."
    )
    coupon: Line = line(40, default="")


class ConfigIn(Schema):
    config: dict[str, Any] = Field(
        description="The whole configuration; omitted or empty secrets keep their value."
    )


class InstanceOut(Schema):
    id: UUID
    name: str
    product: str
    version: str
    state: str
    desired: str
    config: dict  # public fields only: secrets are never returned
    restarts: int
    updates_handled: int
    created_at: datetime
    state_changed_at: datetime
    # Set on an order of a product sold by subscription: the invoice to pay before it starts.
    invoice_id: int | None = None
    pay_url: str | None = None


class LogsOut(Schema):
    lines: list[str]


def _product_out(product: Product) -> dict:
    version = product.latest_version()
    return {
        "slug": product.slug,
        "name": product.name,
        "description": product.description,
        "latest_version": version,
    }


def _instance_out(instance: Instance) -> dict:
    return {
        "id": instance.id,
        "name": instance.name,
        "product": instance.version.product.slug,
        "version": instance.version.version,
        "state": instance.state,
        "desired": instance.desired,
        "config": instance.config,
        "restarts": instance.restarts,
        "updates_handled": instance.updates_handled,
        "created_at": instance.created_at,
        "state_changed_at": instance.state_changed_at,
    }


def _instances(request: HttpRequest):
    qs = Instance.objects.select_related("version__product", "account")
    if request.user.is_staff:
        return qs
    if request.user.account is None:
        return qs.none()
    return qs.filter(account=request.user.account)


def _get_instance(request: HttpRequest, instance_id: UUID) -> Instance:
    return get_object_or_404(_instances(request), pk=instance_id)


@api.get("/products", response=answers({200: list[ProductOut]}), tags=["catalog"])
def list_products(request):
    return [_product_out(p) for p in Product.objects.filter(is_listed=True)]


@api.get("/products/{slug}", response=answers({200: ProductOut}, 404, 422), tags=["catalog"])
def get_product(request, slug: Line):
    return _product_out(get_object_or_404(Product, slug=slug, is_listed=True))


@api.get(
    "/instances",
    response=answers({200: list[InstanceOut]}, 400, 413),
    tags=["instances"],
    description="The newest 500 at most.",
)
def list_instances(request, state: str | None = None):
    qs = narrowed(_instances(request), "state", state, Instance.State.values)
    return [_instance_out(i) for i in qs[:500]]


@api.post(
    "/instances",
    response=answers({201: InstanceOut}, 400, 404, 413, 422, config=True),
    tags=["instances"],
    summary="Install a product; one sold by subscription needs a plan and returns its invoice",
)
def create_instance(request, body: InstanceIn):
    account = request.user.account
    if account is None:
        raise HttpError(400, "Only customer accounts can install instances.")
    product = get_object_or_404(Product, slug=body.product, is_listed=True)
    version = product.latest_version()
    if version is None:
        raise HttpError(400, "This product has no version to install.")
    plans = plans_for(product, account)
    plan = next((p for p in plans if p.code == body.plan), None)
    if plans and plan is None:
        codes = ", ".join(sorted({p.code for p in plans}))
        return Status(400, {"detail": f"Choose a plan: {codes}."})
    try:
        order = order_product(
            account=account,
            version=version,
            plan=plan,
            name=body.name,
            config=body.config,
            actor=request.user,
            coupon_code=body.coupon,
        )
    except ConfigError as exc:
        return Status(400, {"detail": exc.as_paths()})
    except (services.InstanceError, BillingError) as exc:
        return Status(400, {"detail": str(exc)})
    out = _instance_out(order.instance)
    if order.invoice is not None:  # sold by subscription: the order invoice, paid or to pay
        out["invoice_id"] = order.invoice.id
        out["pay_url"] = order.to_pay.pay_url() if order.to_pay else None
    return Status(201, out)


@api.get(
    "/instances/{instance_id}", response=answers({200: InstanceOut}, 404, 422), tags=["instances"]
)
def get_instance(request, instance_id: UUID):
    return _instance_out(_get_instance(request, instance_id))


@api.post(
    "/instances/{instance_id}/actions/{action}",
    response=answers({200: InstanceOut}, 400, 404, 422),
    tags=["instances"],
    summary="Run an action: start, stop or restart",
)
def instance_action(request, instance_id: UUID, action: str):
    instance = _get_instance(request, instance_id)
    service = {
        "start": services.start_instance,
        "stop": services.stop_instance,
        "restart": services.restart_instance,
    }.get(action)
    if service is None:
        return Status(400, {"detail": f"Unknown action {action!r}; use start, stop or restart."})
    try:
        service(instance, actor=request.user)
    except services.InstanceError as exc:
        return Status(400, {"detail": str(exc)})
    instance.refresh_from_db()
    return _instance_out(instance)


@api.patch(
    "/instances/{instance_id}/config",
    response=answers({200: InstanceOut}, 400, 404, 413, 422, config=True),
    tags=["instances"],
    summary="Replace the configuration; omitted or empty secret fields keep their value",
)
def update_config(request, instance_id: UUID, body: ConfigIn):
    instance = _get_instance(request, instance_id)
    schema = instance.version.config_schema
    current = instance.full_config()
    config = keep_blank_secrets(body.config, current, schema)
    try:
        validate_config(schema, config)
        run_live_checks(schema, config, current=current, source_dir=instance.version.source_path)
        services.update_config(instance, config=config, actor=request.user)
    except ConfigError as exc:
        return Status(400, {"detail": exc.as_paths()})
    except services.InstanceError as exc:
        return Status(400, {"detail": str(exc)})
    instance.refresh_from_db()
    return _instance_out(instance)


@api.delete(
    "/instances/{instance_id}",
    response=answers({200: InstanceOut}, 400, 404, 422),
    tags=["instances"],
)
def remove_instance(request, instance_id: UUID):
    instance = _get_instance(request, instance_id)
    try:
        services.remove_instance(instance, actor=request.user)
    except services.InstanceError as exc:
        return Status(400, {"detail": str(exc)})
    instance.refresh_from_db()
    return _instance_out(instance)


@api.get(
    "/instances/{instance_id}/logs",
    response=answers({200: LogsOut}, 400, 404, 413, 422),
    tags=["instances"],
)
def instance_logs(
    request,
    instance_id: UUID,
    lines: LogLines = 100,
):
    instance = _get_instance(request, instance_id)
    if not 1 <= lines <= 1000:
        raise HttpError(400, "lines must be between 1 and 1000")
    return {"lines": tail(instance.log_path, lines)}


from otomat.billing.api import router as billing_router  # noqa: E402

api.add_router("/billing", billing_router)

from otomat.support.api import router as support_router  # noqa: E402

api.add_router("/support", support_router)

from otomat.projects.api import router as projects_router  # noqa: E402
from otomat.projects.board.api import router as board_router  # noqa: E402
from otomat.projects.booking.api import router as booking_router  # noqa: E402
from otomat.projects.offers.api import router as offers_router  # noqa: E402

api.add_router("/projects", projects_router)
api.add_router("/projects/booking", booking_router)
api.add_router("/projects/offers", offers_router)
api.add_router("/projects/board", board_router)

__all__ = ["api", "record_audit"]
