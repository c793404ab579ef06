from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("offers", "0001_offers_contracts_signatures"),
    ]

    operations = [
        migrations.AddField(
            model_name="contract",
            name="seller",
            field=models.JSONField(default=dict),
        ),
        migrations.AddField(
            model_name="contract",
            name="client",
            field=models.JSONField(default=dict),
        ),
    ]
