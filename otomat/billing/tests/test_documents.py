"""Invoices are records: an issued invoice's PDF is rendered once from the snapshots taken at
issue, stored with its SHA-256 and served byte for byte, whatever the seller changes later."""

from __future__ import annotations

import hashlib
import importlib
import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.apps import apps
from django.test import TestCase
from django.urls import reverse
from pypdf import PdfReader

from otomat.billing import documents
from otomat.billing.invoicing import issue_credit_note
from otomat.billing.models import BillingSettings, CreditNote, Invoice, IssuedDocument
from otomat.billing.money import Money
from otomat.billing.tests.conftest import T0, pay


def text_of(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def set_seller(**fields) -> None:
    config = BillingSettings.get()
    for name, value in fields.items():
        setattr(config, name, value)
    config.save()


@pytest.fixture
def seller(db):
    set_seller(
        seller_name="Otomat Old Name Ltd",
        seller_address="Jalan Lama 1\nJakarta 10110",
        seller_tax_id="01.111.111.1-111.000",
        seller_email="billing@old.example",
        bank_transfer_instructions="BCA 111 222 333 a.n. Otomat Old",
    )


def issue(order, **kw) -> Invoice:
    """Place an order and run what happens after its transaction commits (storing the PDF)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        _instance, invoice = order(**kw)
    return invoice


def download(client, invoice: Invoice, **headers):
    return client.get(reverse("billing:invoice_pdf", args=[invoice.id]), headers=headers)


def test_an_issued_pdf_is_byte_identical_after_the_seller_changes(client, cast, order, seller):
    invoice = issue(order)
    stored = IssuedDocument.objects.get(invoice=invoice)  # stored at issue, before any download
    client.force_login(cast.alice)
    first = download(client, invoice)
    assert first.status_code == 200 and first["Content-Type"] == "application/pdf"
    assert first.content == bytes(stored.content)
    assert hashlib.sha256(first.content).hexdigest() == stored.sha256
    assert first["ETag"] == f'"{stored.sha256}"'
    text = text_of(first.content)
    assert "Otomat Old Name Ltd" in text and "Jalan Lama 1" in text and "BCA 111 222 333" in text

    set_seller(
        seller_name="Otomat New Name Ltd",
        seller_address="Jalan Baru 99\nBandung 40111",
        seller_tax_id="02.222.222.2-222.000",
        bank_transfer_instructions="Mandiri 999 a.n. Otomat New",
    )
    again = download(client, invoice)
    assert again.content == first.content
    assert hashlib.sha256(again.content).hexdigest() == stored.sha256
    assert "Otomat New Name Ltd" not in text_of(again.content)

    # A new invoice shows the new seller.
    newer = issue(order, name="Alice's second greeter")
    new_text = text_of(download(client, newer).content)
    assert "Otomat New Name Ltd" in new_text and "Jalan Baru 99" in new_text
    assert "Mandiri 999" in new_text and "Jalan Lama 1" not in new_text


def test_paying_the_invoice_changes_nothing_in_its_stored_pdf(client, cast, order, seller):
    invoice = issue(order)
    before = bytes(IssuedDocument.objects.get(invoice=invoice).content)
    with time_machine.travel(T0, tick=False):
        pay(invoice)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    client.force_login(cast.alice)
    assert download(client, invoice).content == before
    assert IssuedDocument.objects.filter(invoice=invoice).count() == 1


def test_a_matching_etag_answers_304_without_the_body(client, cast, order, seller):
    invoice = issue(order)
    client.force_login(cast.alice)
    etag = download(client, invoice)["ETag"]
    cached = download(client, invoice, if_none_match=etag)
    assert cached.status_code == 304 and cached.content == b"" and cached["ETag"] == etag
    assert download(client, invoice, if_none_match='"other"').status_code == 200


def test_staff_see_the_stored_hash(client, cast, order, seller):
    invoice = issue(order)
    client.force_login(cast.staff)
    page = client.get(reverse("billing:invoice_manage", args=[invoice.id])).content.decode()
    assert IssuedDocument.objects.get(invoice=invoice).sha256 in page


def test_dates_are_printed_in_the_accounts_time_zone(cast, order, seller):
    alice = cast.alice
    alice.timezone, alice.language = "Asia/Jakarta", "en"
    alice.save(update_fields=["timezone", "language"])
    late_evening_utc = datetime(2026, 1, 10, 20, 30, tzinfo=UTC)  # already Jan 11 in Jakarta
    invoice = issue(order, now=late_evening_utc)
    assert invoice.buyer["time_zone"] == "Asia/Jakarta"
    text = text_of(bytes(invoice.document.content))
    assert "January 11, 2026" in text and "January 10, 2026" not in text


def test_a_credit_note_keeps_the_seller_of_its_issue(client, cast, order, seller):
    invoice = issue(order)
    with time_machine.travel(T0, tick=False):
        pay(invoice)
    invoice.refresh_from_db()
    with TestCase.captureOnCommitCallbacks(execute=True):
        note = issue_credit_note(
            invoice,
            amount=Money(10_000, invoice.currency),
            reason="Outage",
            refund_method=CreditNote.RefundMethod.CREDIT,
            actor=cast.staff,
        )
    stored = IssuedDocument.objects.get(credit_note=note)
    set_seller(seller_name="Otomat New Name Ltd", seller_address="Jalan Baru 99")
    client.force_login(cast.alice)
    response = client.get(reverse("billing:credit_note_pdf", args=[note.id]))
    assert response.content == bytes(stored.content)
    assert response["ETag"] == f'"{stored.sha256}"'
    assert "Otomat Old Name Ltd" in text_of(response.content)


def test_a_document_issued_without_a_snapshot_gets_one_when_stored(cast, order, seller):
    """A document without a seller snapshot (issued before snapshots existed and missed by
    the migration): storing it snapshots the seller, and from then on it is fixed."""
    invoice = issue(order)
    IssuedDocument.objects.filter(invoice=invoice).delete()
    Invoice.objects.filter(pk=invoice.pk).update(seller={})
    assert documents.store_missing() == 1
    assert documents.store_missing() == 0  # idempotent
    stored = IssuedDocument.objects.get(invoice=invoice)
    invoice.refresh_from_db()
    assert invoice.seller["name"] == "Otomat Old Name Ltd"
    set_seller(seller_name="Otomat New Name Ltd")
    invoice.refresh_from_db()
    assert documents.stored_pdf(invoice).sha256 == stored.sha256


def test_rendering_later_from_the_snapshots_gives_the_same_bytes(cast, order, seller):
    """What makes a lost after-commit step harmless: the PDF depends on the snapshots only."""
    invoice = issue(order)
    stored = bytes(IssuedDocument.objects.get(invoice=invoice).content)
    set_seller(seller_name="Otomat New Name Ltd")
    with time_machine.travel(T0, tick=False):
        pay(invoice)
    IssuedDocument.objects.filter(invoice=invoice).delete()
    invoice.refresh_from_db()
    assert bytes(documents.stored_pdf(invoice).content) == stored


def test_the_data_migration_snapshots_existing_documents(cast, order, seller):
    migration = importlib.import_module("otomat.billing.migrations.0004_invoice_records")
    alice = cast.alice
    alice.timezone = "Europe/Warsaw"
    alice.save(update_fields=["timezone"])
    invoice = issue(order)
    # As an invoice from before the migration: no seller, no time zone, no stored PDF.
    IssuedDocument.objects.all().delete()
    buyer = {k: v for k, v in invoice.buyer.items() if k != "time_zone"}
    Invoice.objects.filter(pk=invoice.pk).update(seller={}, buyer=buyer)
    already = issue(order, name="Alice's second greeter")
    kept = dict(already.seller)
    set_seller(seller_name="Seller At Upgrade", seller_address="Upgrade Street 5")

    migration.snapshot_existing(apps, None)
    migration.snapshot_existing(apps, None)  # twice: changes nothing more

    invoice.refresh_from_db()
    already.refresh_from_db()
    assert invoice.seller["name"] == "Seller At Upgrade"
    assert invoice.seller["lines"] == ["Upgrade Street 5"]
    assert invoice.buyer["time_zone"] == "Europe/Warsaw" and invoice.buyer["name"] == buyer["name"]
    assert already.seller == kept  # a snapshot already taken is never replaced
    set_seller(seller_name="Seller After Upgrade")
    text = text_of(bytes(documents.stored_pdf(invoice).content))
    assert "Seller At Upgrade" in text and "Seller After Upgrade" not in text


def test_only_invoices_and_credit_notes_have_stored_pdfs(db):
    with pytest.raises(TypeError):
        documents.stored_pdf(BillingSettings.get())
    assert IssuedDocument.objects.count() == 0


def test_the_api_gives_the_stored_hash(client, cast, order, seller):
    from otomat.accounts.models import ApiToken

    invoice = issue(order)
    token = ApiToken.issue(cast.alice, "tests")[1]
    response = client.get(
        f"/api/v1/billing/invoices/{invoice.id}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200
    assert response.json()["pdf_sha256"] == IssuedDocument.objects.get(invoice=invoice).sha256


def test_with_the_database_queue_a_worker_stores_the_pdf_after_issue(cast, order, seller, settings):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    invoice = issue(order)
    assert not IssuedDocument.objects.filter(invoice=invoice).exists()  # not in the request
    queued = DBTaskResult.objects.get(task_path="otomat.billing.tasks.store_document_task")
    assert queued.args_kwargs["args"] == ["invoice", invoice.pk]
    sha = documents.store_document("invoice", invoice.pk)  # what the worker runs
    assert IssuedDocument.objects.get(invoice=invoice).sha256 == sha


def test_storing_an_unknown_document_is_refused_and_stores_nothing(db):
    with pytest.raises(LookupError, match="unknown document kind"):
        documents.store_document("receipt", 1)
    with pytest.raises(LookupError, match="no invoice 999"):
        documents.store_document("invoice", 999)
    assert IssuedDocument.objects.count() == 0


def test_renewals_issued_in_bulk_have_their_seller_at_issue_and_their_pdf_after_the_run(
    cast, order, seller, monkeypatch
):
    from datetime import timedelta

    from otomat.billing import dunning_bulk
    from otomat.billing.models import Subscription
    from otomat.billing.tasks import run_billing_task

    in_bulk = []
    real = dunning_bulk.issue_renewals_in_bulk

    def spy(*args):
        handled = real(*args)
        in_bulk.extend(handled)
        # Frozen in the issuing insert itself, not later by the follow-up.
        sellers = Invoice.objects.filter(subscription__in=handled, kind=Invoice.Kind.RENEWAL)
        assert all(
            v["name"] == "Otomat Old Name Ltd" for v in sellers.values_list("seller", flat=True)
        )
        return handled

    monkeypatch.setattr(dunning_bulk, "issue_renewals_in_bulk", spy)

    first, second = issue(order), issue(order, name="Alice's second greeter")
    for invoice in (first, second):
        with time_machine.travel(T0, tick=False):
            pay(invoice)
    end = Subscription.objects.order_by("pk").first().current_period_end
    with time_machine.travel(end - timedelta(days=7), tick=False):
        result = run_billing_task.call()  # as the worker runs it
    renewals = Invoice.objects.filter(kind=Invoice.Kind.RENEWAL)
    assert renewals.count() == 2 and len(in_bulk) == 2  # both through the bulk path
    assert result["documents_stored"] == 2
    set_seller(seller_name="Otomat New Name Ltd")
    for renewal in renewals:
        assert renewal.seller["name"] == "Otomat Old Name Ltd"
        assert renewal.buyer["time_zone"] == cast.alice.timezone
        stored = IssuedDocument.objects.get(invoice=renewal)
        assert documents.stored_pdf(renewal).sha256 == stored.sha256
        assert "Otomat Old Name Ltd" in text_of(bytes(stored.content))
