"""``otomat fakepay``: the fake providers as one local service for the demo, so that paying an
invoice works offline end to end (the hosted pages' Pay button sends a correctly signed
callback to Otomat). Never use it in production: no money moves."""

from __future__ import annotations

import signal
import threading

from otomat.billing.gateways.fakes.midtrans import FakeMidtrans
from otomat.billing.gateways.fakes.przelewy24 import FakePrzelewy24
from otomat.billing.gateways.fakes.stripe import FakeStripe
from otomat.billing.gateways.fakes.xendit import FakeXendit

# code → (fake class, port offset from the base port)
FAKES = {
    "midtrans": (FakeMidtrans, 0),
    "stripe": (FakeStripe, 1),
    "xendit": (FakeXendit, 2),
    "przelewy24": (FakePrzelewy24, 3),
}


def demo_settings(code: str, base_port: int) -> dict:
    """The credentials and API base a ``GatewayConfig`` needs to talk to the demo fake."""
    fake_class, offset = FAKES[code]
    return fake_class().declared_at(f"http://127.0.0.1:{base_port + offset}").gateway_settings()


def serve(*, base_port: int, base_url: str) -> int:
    """Run every fake on 127.0.0.1:base_port+offset, delivering callbacks to Otomat at
    ``base_url``; returns when SIGTERM or SIGINT arrives."""
    running = []
    for code, (fake_class, offset) in FAKES.items():
        fake = fake_class(notify_url=f"{base_url}/billing/callback/{code}/")
        fake.start(port=base_port + offset)
        running.append(fake)
        print(f"[fakepay] {code} at {fake.url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for fake in running:
        fake.close()
    return 0
