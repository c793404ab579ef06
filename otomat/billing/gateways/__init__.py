"""Payment gateways behind one interface (``base.Gateway``), one module per provider.

``REGISTRY`` maps a provider code to its adapter class; ``otomat.billing.payments`` is the only
code that calls adapters, and it does so with the credentials the owner stored for that provider.
"""

from __future__ import annotations

from otomat.billing.gateways.base import (
    Checkout,
    CheckoutRequest,
    CredentialField,
    Gateway,
    GatewayError,
    GatewayEvent,
    NotConfirmed,
    Refund,
    SignatureError,
)

__all__ = [
    "REGISTRY",
    "Checkout",
    "CheckoutRequest",
    "CredentialField",
    "Gateway",
    "GatewayError",
    "GatewayEvent",
    "NotConfirmed",
    "Refund",
    "SignatureError",
    "gateway_class",
]


def _registry() -> dict[str, type[Gateway]]:
    found: dict[str, type[Gateway]] = {}
    import importlib

    for module_name in ("midtrans", "xendit", "przelewy24", "stripe_checkout"):
        try:
            module = importlib.import_module(f"otomat.billing.gateways.{module_name}")
        except ModuleNotFoundError as exc:  # an adapter not written yet
            if exc.name != f"otomat.billing.gateways.{module_name}":
                raise
            continue
        found[module.GATEWAY.code] = module.GATEWAY
    return found


REGISTRY: dict[str, type[Gateway]] = _registry()


def gateway_class(code: str) -> type[Gateway]:
    """The adapter class for ``code``; raises KeyError with the known codes."""
    try:
        return REGISTRY[code]
    except KeyError:
        raise KeyError(f"unknown payment gateway {code!r}; known: {', '.join(REGISTRY)}") from None
