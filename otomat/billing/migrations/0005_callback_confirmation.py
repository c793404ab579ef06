"""Payment callbacks: a retry time for the backoff, "rejected" also for callbacks the provider
does not confirm, and stored headers that hold no secret: every secret header of rows stored
before (Xendit's x-callback-token above all) is masked."""

from django.db import migrations, models

# The same names as otomat.billing.payments.SECRET_HEADERS (migrations never import app code).
SECRET_HEADERS = (
    "x-callback-token",
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
)
MASKED = "[masked]"


def mask_stored_secrets(apps, schema_editor):
    GatewayCallback = apps.get_model("billing", "GatewayCallback")
    for callback in GatewayCallback.objects.only("id", "headers").iterator(chunk_size=500):
        headers = callback.headers if isinstance(callback.headers, dict) else {}
        masked = {
            key: MASKED if str(key).lower() in SECRET_HEADERS else value
            for key, value in headers.items()
        }
        if masked != headers:
            GatewayCallback.objects.filter(pk=callback.pk).update(headers=masked)


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_invoice_records")]

    operations = [
        migrations.AddField(
            model_name="gatewaycallback",
            name="retry_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="gatewaycallback",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("rejected", "Rejected (not verified or not confirmed)"),
                    ("duplicate", "Duplicate"),
                    ("processed", "Processed"),
                    ("ignored", "Ignored"),
                    ("failed", "Failed, will retry"),
                ],
                default="received",
                max_length=10,
            ),
        ),
        migrations.RunPython(mask_stored_secrets, migrations.RunPython.noop),
    ]
