from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("instances", "0005_live_bot_id")]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="last_update_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
