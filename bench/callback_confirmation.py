"""Payment callback handling with the provider's confirmation, beside the same without it.

    .venv/bin/python bench/callback_confirmation.py --callbacks 200 [--rounds 2] [--json]

A callback is a hint: before any money moves, billing asks the provider (Midtrans Get Status,
Xendit get invoice) over HTTP and acts on its answer. This measures what that costs. For each
gateway, ``--callbacks`` orders are placed and given a checkout (not timed); then each order's
genuine "paid" callback goes through ``payments.receive_callback`` — store, verify, confirm,
record the payment, settle the invoice — and is timed one by one. The baseline, in the same run and on the same kind of orders, is the same
path with ``confirm`` replaced by "trust the callback" (the code before confirmation). The two
modes alternate in rounds so that drift (a growing database, a warming cache) hits both.

By default the subscription's run after the payment (the bot's activation, which
``provision_latency.py --via-payment`` measures end to end) is left out, so that the figures
are the callback's own; ``--with-activation`` keeps it in.

A throwaway data directory with SQLite; the local fake providers run in this process (threads)
on 127.0.0.1, so a confirmation is one loopback HTTP round trip plus the fake's work: what a
real provider adds on top is its network latency (tens of milliseconds from Indonesia to
Midtrans), which this cannot measure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import percentile

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=200, help="per gateway, mode and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument(
        "--with-activation",
        action="store_true",
        help="also run the subscription (the bot's activation) inside each callback, as in "
        "production; by default that part, measured by provision_latency.py, is left out",
    )
    parser.add_argument("--json", action="store_true", help="also print raw figures as JSON")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="otomat-bench-cb-"))
    os.environ.update(
        OTOMAT_DATA_DIR=str(data),
        OTOMAT_TASK_BACKEND="django_tasks.backends.immediate.ImmediateBackend",
        OTOMAT_LOG_LEVEL="WARNING",
        OTOMAT_EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        DJANGO_SETTINGS_MODULE="otomat.settings",
    )
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    import logging

    from django.core.management import call_command

    logging.disable(logging.WARNING)  # the bench's own output only
    call_command("migrate", verbosity=0)

    from otomat.accounts.services import sign_up
    from otomat.billing import payments
    from otomat.billing.gateways import REGISTRY
    from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
    from otomat.billing.gateways.fakes.xendit import FakeXendit
    from otomat.billing.models import DunningPolicy, GatewayConfig, Invoice, Payment, Plan
    from otomat.billing.subscriptions import place_order
    from otomat.catalog.services import import_product

    version = import_product(REPO / "products" / "greeter", actor=None)
    policy = DunningPolicy.objects.create(name="Bench")
    plan = Plan.objects.create(
        product=version.product,
        code="bench",
        name="Monthly",
        currency="IDR",
        price_minor=150_000,
        dunning_policy=policy,
    )
    customer = sign_up(
        email="bench@example.com",
        password="bench-pass-123456",
        full_name="Bench",
        account_name="Bench",
    )
    fakes = {"midtrans": FakeMidtrans().start(), "xendit": FakeXendit().start()}
    for code, fake in fakes.items():
        settings_ = fake.gateway_settings()
        GatewayConfig.objects.create(
            code=code,
            enabled=True,
            credentials=settings_["credentials"],
            api_base=settings_["api_base"],
        )
    bot_ids = itertools.count(800_001)

    def prepared(code: str, n: int) -> list[tuple[Invoice, dict, bytes]]:
        out = []
        for _ in range(n):
            bot = next(bot_ids)
            _instance, invoice = place_order(
                account=customer.account,
                version=version,
                plan=plan,
                name=f"bench {bot}",
                config={"bot_token": f"{bot}:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi"},
                actor=customer,
            )
            checkout = payments.start_checkout(invoice, code, return_url="http://bench/")
            headers, body = fakes[code].notification(checkout.reference, "paid")
            out.append((invoice, headers, body))
        return out

    if not args.with_activation:
        # The subscription stays due (next_run_at) as after a crash; only its run is left out.
        payments.run_soon = lambda subscription_id: None
    trusting = {code: cls.confirm for code, cls in REGISTRY.items()}

    def set_mode(confirmed: bool) -> None:
        for code, cls in REGISTRY.items():
            # "Without confirmation": the callback's own word, as before confirm() existed.
            cls.confirm = (
                trusting[code] if confirmed else (lambda self, e: replace(e, confirmed=True))
            )

    results: dict[str, dict[str, list[float]]] = {
        code: {"confirmed": [], "unconfirmed": []} for code in fakes
    }
    try:
        for round_ in range(args.rounds):
            modes = (
                ("confirmed", "unconfirmed") if round_ % 2 == 0 else ("unconfirmed", "confirmed")
            )
            for code in fakes:
                for mode in modes:
                    batch = prepared(code, args.callbacks)
                    set_mode(mode == "confirmed")
                    for _invoice, headers, body in batch:
                        started = time.perf_counter()
                        status, _, reply = payments.receive_callback(
                            code, headers=headers, body=body, remote_addr="127.0.0.1"
                        )
                        results[code][mode].append(time.perf_counter() - started)
                        if status != 200:
                            raise SystemExit(f"{code} {mode}: answered {status} {reply}")
                    set_mode(True)
                    paid = Invoice.objects.filter(
                        pk__in=[i.pk for i, _, _ in batch], status=Invoice.Status.PAID
                    ).count()
                    if paid != len(batch):
                        raise SystemExit(f"{code} {mode}: only {paid} of {len(batch)} paid")
        # The confirmation alone: the adapter's round trip to the provider and its parsing.
        alone: dict[str, list[float]] = {}
        for code in fakes:
            adapter = payments.gateway_for(code)
            _invoice, headers, body = prepared(code, 1)[0]
            hint = adapter.parse_callback(
                headers={k.lower(): v for k, v in headers.items()}, body=body
            )
            alone[code] = []
            for _ in range(args.callbacks * 2):
                started = time.perf_counter()
                adapter.confirm(hint)
                alone[code].append(time.perf_counter() - started)
    finally:
        set_mode(True)
        for fake in fakes.values():
            fake.close()
    assert Payment.objects.count() == sum(len(v) for r in results.values() for v in r.values())

    what = "store, verify, confirm, pay" + (", activate" if args.with_activation else "")
    print(
        f"\npayment callback handling (receive_callback: {what}), SQLite, "
        f"{args.rounds} rounds × {args.callbacks} callbacks per gateway and mode"
    )
    print(
        f"{'gateway':9} {'mode':12} {'n':>5} {'callbacks/s':>12} {'median ms':>10} "
        f"{'p95 ms':>8} {'max ms':>8}"
    )
    summary = {}
    for code, modes in results.items():
        for mode in ("unconfirmed", "confirmed"):
            values = modes[mode]
            rate = len(values) / sum(values)
            summary[(code, mode)] = (rate, percentile(values, 0.95))
            print(
                f"{code:9} {mode:12} {len(values):>5} {rate:>12.1f} "
                f"{statistics.median(values) * 1000:>10.2f} {percentile(values, 0.95) * 1000:>8.2f} "
                f"{max(values) * 1000:>8.2f}"
            )
        (base_rate, base_p95), (rate, p95) = (
            summary[(code, "unconfirmed")],
            summary[(code, "confirmed")],
        )
        print(
            f"{code:9} confirmation's cost: throughput × {rate / base_rate:.3f}, "
            f"p95 × {p95 / base_p95:.3f}"
        )
    for code, values in alone.items():
        print(
            f"{code:9} confirm() alone: n {len(values)}, median "
            f"{statistics.median(values) * 1000:.2f} ms, p95 {percentile(values, 0.95) * 1000:.2f} ms"
        )
    if args.json:
        print(json.dumps({"callbacks": results, "confirm_alone": alone}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
