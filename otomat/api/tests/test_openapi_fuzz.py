"""Schemathesis against the API's own OpenAPI document, in-process (the WSGI app, this test's
database), authenticated as alice: for every operation, generated requests — valid ones and
ones the document says are wrong — never get a server error, and every answer has a status
and a body the document describes. Bounded: a few examples per operation, a deadline against a hang."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

schemathesis = pytest.importorskip(
    "schemathesis",
    reason="schemathesis is not installed (pip install -e '.[test]'): the API fuzz test is skipped",
)

from django.core.signals import request_finished, request_started  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance,
    status_code_conformance,
)

from otomat.accounts.models import ApiToken  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture
def known(db, cast, greeter, plan):
    """Alice's own instance (ordered on a plan, so it has an invoice) and ticket: path
    parameters point at them half of the time, so requests reach more than a 404."""
    from otomat.billing.subscriptions import place_order
    from otomat.support import tickets

    instance, invoice = place_order(
        account=cast.alice.account,
        version=greeter,
        plan=plan,
        name="fuzzed",
        config={"bot_token": "123456:" + "F" * 35},
        actor=cast.alice,
    )
    ticket = tickets.open_ticket(
        account=cast.alice.account, requester=cast.alice, subject="Fuzz", body="Fuzz me"
    )
    return {
        "slug": greeter.product.slug,
        "instance_id": str(instance.id),
        "invoice_id": invoice.id,
        "number": ticket.number,
        "action": "stop",
    }


@pytest.fixture
def alice_token(db, cast, greeter, settings):
    # No live check may leave this machine: the Bot API is a closed local port.
    settings.BOT_API_URL = "http://127.0.0.1:9"
    # The WSGI app runs in this thread, on this test's connection and transaction; Django would
    # close that connection at the end of each request (the test client does the same as this).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield ApiToken.issue(cast.alice, "fuzz")[1]
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _schema():
    from otomat.api.api import api

    loaded = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1/"))
    loaded.app = get_wsgi_application()
    return loaded


schema = _schema()


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=timedelta(seconds=10),  # a guard against a hang, not a speed test
    phases=[Phase.explicit, Phase.generate],  # no shrinking or replay database: bounded time
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_document_says(case, alice_token, known):
    coin = random.Random(repr(case.path_parameters) + repr(case.body))
    params = case.path_parameters or {}
    if params and coin.random() < 0.5:
        params.update({name: known[name] for name in params if name in known})
    if isinstance(case.body, dict) and "product" in case.body and coin.random() < 0.5:
        case.body.update(product=known["slug"], plan="basic")
    case.call_and_validate(headers={"Authorization": f"Bearer {alice_token}"}, checks=CHECKS)
