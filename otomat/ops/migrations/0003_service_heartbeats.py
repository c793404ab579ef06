from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ops", "0002_task_heartbeats_and_recoveries")]

    operations = [
        migrations.CreateModel(
            name="ServiceHeartbeat",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "service",
                    models.CharField(
                        choices=[
                            ("web", "Web server"),
                            ("worker", "Task worker"),
                            ("scheduler", "Scheduler"),
                            ("runner", "Runner"),
                        ],
                        max_length=16,
                    ),
                ),
                ("host", models.CharField(max_length=255)),
                ("pid", models.PositiveIntegerField()),
                ("started_at", models.DateTimeField()),
                ("seen_at", models.DateTimeField()),
                ("info", models.JSONField(blank=True, default=dict)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("service", "host", "pid"), name="ops_heartbeat_process"
                    )
                ],
            },
        ),
    ]
