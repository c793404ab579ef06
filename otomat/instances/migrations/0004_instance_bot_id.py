"""Instances remember their Telegram bot's id, so one bot cannot be given to two live
instances. Existing instances get it from their (decrypted) token field."""

from django.db import migrations, models


def fill_bot_ids(apps, schema_editor):
    from otomat.catalog.schema_form import merge_secrets, telegram_bot_id

    Instance = apps.get_model("instances", "Instance")
    live = Instance.objects.exclude(state="terminated").filter(kind="customer")
    for instance in live.select_related("version").iterator(chunk_size=500):
        config = merge_secrets(instance.config, instance.secrets)
        _, bot_id = telegram_bot_id(instance.version.config_schema, config)
        if bot_id:
            Instance.objects.filter(pk=instance.pk).update(bot_id=bot_id)


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0003_suspension_source"),
    ]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="bot_id",
            field=models.CharField(blank=True, db_index=True, max_length=32),
        ),
        migrations.RunPython(fill_bot_ids, migrations.RunPython.noop),
    ]
