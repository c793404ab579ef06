"""Ordering a product: the one flow behind the order form (``otomat.web.instance_pages``) and
the API's ``POST /instances`` (``otomat.api.api``).

A product sold by subscription (it has active plans) is ordered on one of its plans
(:func:`otomat.billing.subscriptions.place_order`: a trial, or an order invoice to pay before it
starts); a free product is installed and started at once
(:func:`otomat.instances.services.install_instance`). It lives in billing, the highest app the
flow needs to know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otomat.accounts.models import Account, User
from otomat.billing.models import Invoice, Plan
from otomat.billing.subscriptions import place_order
from otomat.catalog.models import ProductVersion
from otomat.catalog.schema_form import run_live_checks, validate_config
from otomat.instances.models import Instance
from otomat.instances.services import install_instance


@dataclass(frozen=True)
class Order:
    instance: Instance
    invoice: Invoice | None  # the order invoice; None for a trial or a free product

    @property
    def to_pay(self) -> Invoice | None:
        """The invoice the customer pays before the bot starts, if any is left open."""
        if self.invoice is not None and self.invoice.status == Invoice.Status.OPEN:
            return self.invoice
        return None


def order_product(
    *,
    account: Account,
    version: ProductVersion,
    plan: Plan | None,
    name: str,
    config: dict[str, Any],
    actor: User,
    coupon_code: str = "",
    checked: bool = False,
) -> Order:
    """Order ``version`` for ``account`` on ``plan``, or install it when the product is free
    (``plan`` None; a product with plans refuses that). ``config`` is validated and its live
    checks run unless the caller did both already (``checked``: the order form's fields run
    them). Raises ConfigError, InstanceError or BillingError, storing nothing."""
    if not checked:
        validate_config(version.config_schema, config)
        run_live_checks(version.config_schema, config, source_dir=version.source_path)
    if plan is None:
        instance = install_instance(
            account=account, version=version, name=name, config=config, actor=actor
        )
        return Order(instance, None)
    instance, invoice = place_order(
        account=account,
        version=version,
        plan=plan,
        name=name,
        config=config,
        actor=actor,
        coupon_code=coupon_code,
    )
    return Order(instance, invoice)
