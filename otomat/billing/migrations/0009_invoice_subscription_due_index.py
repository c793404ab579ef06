from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_subscription_failures_index"),
    ]

    # The new index first: on MariaDB the old one may be what serves the subscription foreign
    # key, and it can be dropped only once another index leads with that column.
    operations = [
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(
                fields=["subscription", "status", "due_at"], name="billing_inv_sub_due"
            ),
        ),
        migrations.RemoveIndex(
            model_name="invoice",
            name="billing_inv_sub",
        ),
    ]
