"""Invoices are records: the seller's snapshot on every invoice and credit note, the stored PDFs.

The data step gives every existing invoice and credit note the seller of today (the best record
there is of the seller they were issued by) and its account's time zone, so that from now on the
seller's changes reach none of them. Their PDFs are rendered from these snapshots on first
download or after the next billing run (``documents.store_missing``), not here: rendering
thousands of PDFs would hold the upgrade for minutes, and the bytes are the same either way.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

BATCH = 500


def _seller(config) -> dict:
    # Same shape as otomat.billing.documents.seller_snapshot (copied: a migration must not
    # depend on code that may change later).
    if config is None:
        return {"name": "Otomat seller", "lines": [], "tax_id": "", "email": "", "bank": ""}
    lines = [line.strip() for line in (config.seller_address or "").splitlines() if line.strip()]
    return {
        "name": config.seller_name,
        "lines": lines,
        "tax_id": config.seller_tax_id or "",
        "email": config.seller_email or "",
        "bank": (config.bank_transfer_instructions or "").strip(),
    }


def snapshot_existing(apps, schema_editor) -> None:
    """Snapshot the seller (and the account's time zone) on issued documents that lack it."""
    BillingSettings = apps.get_model("billing", "BillingSettings")
    Invoice = apps.get_model("billing", "Invoice")
    CreditNote = apps.get_model("billing", "CreditNote")
    Membership = apps.get_model("accounts", "Membership")
    seller = _seller(BillingSettings.objects.filter(pk=1).first())
    zones = dict(
        Membership.objects.filter(role="responsible").values_list("account_id", "user__timezone")
    )
    for model in (Invoice, CreditNote):
        last = 0
        while True:
            rows = list(model.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
            if not rows:
                break
            for row in rows:
                changed = []
                if not row.seller:
                    row.seller, changed = dict(seller), [*changed, "seller"]
                if model is Invoice and "time_zone" not in (row.buyer or {}):
                    row.buyer = {
                        **(row.buyer or {}),
                        "time_zone": zones.get(row.account_id) or "UTC",
                    }
                    changed.append("buyer")
                if changed:
                    row.save(update_fields=changed)
            last = rows[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_invoice_kind_support"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="creditnote",
            name="seller",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="invoice",
            name="seller",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.CreateModel(
            name="IssuedDocument",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("content", models.BinaryField()),
                ("sha256", models.CharField(max_length=64)),
                ("size", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "credit_note",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="document",
                        to="billing.creditnote",
                    ),
                ),
                (
                    "invoice",
                    models.OneToOneField(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="document",
                        to="billing.invoice",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("credit_note__isnull", True), ("invoice__isnull", False)),
                            models.Q(("credit_note__isnull", False), ("invoice__isnull", True)),
                            _connector="OR",
                        ),
                        name="billing_document_one_owner",
                    )
                ],
            },
        ),
        migrations.RunPython(snapshot_existing, migrations.RunPython.noop),
    ]
