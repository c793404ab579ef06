"""One live instance per Telegram bot, held by the database: ``live_bot_id`` is the bot's id
while the instance is live and NULL once it is terminated, under a plain unique constraint.

A partial unique index (``UNIQUE (bot_id) WHERE state <> 'terminated'``) would say the same on
SQLite and PostgreSQL, but MariaDB has no partial indexes (Django skips such a constraint there
without a word); every one of the three databases lets a unique column hold many NULLs, so this
form holds everywhere.

Existing live instances claim their bots here. Should two live instances already share one bot
(possible before the check existed), the oldest keeps the claim and the others hold none: they
keep running as before, and their next settings change must choose another bot.
"""

from django.db import migrations, models


def claim_live_bots(apps, schema_editor):
    Instance = apps.get_model("instances", "Instance")
    live = (
        Instance.objects.exclude(state="terminated")
        .exclude(bot_id="")
        .order_by("created_at", "pk")
        .values_list("pk", "bot_id")
    )
    claimed: set[str] = set()
    for pk, bot_id in live.iterator(chunk_size=1000):
        if bot_id in claimed:
            continue
        claimed.add(bot_id)
        Instance.objects.filter(pk=pk).update(live_bot_id=bot_id)


def release_live_bots(apps, schema_editor):
    apps.get_model("instances", "Instance").objects.update(live_bot_id=None)


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0004_instance_bot_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="live_bot_id",
            field=models.CharField(blank=True, editable=False, max_length=32, null=True),
        ),
        migrations.RunPython(claim_live_bots, release_live_bots),
        migrations.AddConstraint(
            model_name="instance",
            constraint=models.UniqueConstraint(
                fields=("live_bot_id",), name="instances_one_live_instance_per_bot"
            ),
        ),
    ]
