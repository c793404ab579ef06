from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_invoice_list_indexes"),
    ]

    operations = [
        # Invoices issued before this migration keep layout 1 (their PDF, stored or rendered
        # later, looks as it did at issue); new invoices get layout 2.
        migrations.AddField(
            model_name="invoice",
            name="layout",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AlterField(
            model_name="invoice",
            name="layout",
            field=models.PositiveSmallIntegerField(default=2),
        ),
        migrations.AddField(
            model_name="invoiceline",
            name="discount_label",
            field=models.CharField(blank=True, max_length=200),
        ),
    ]
