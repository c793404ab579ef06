import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("instances", "0007_instance_list_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="changed_at",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.AddIndex(
            model_name="instance",
            index=models.Index(fields=["changed_at"], name="instances_changed"),
        ),
    ]
