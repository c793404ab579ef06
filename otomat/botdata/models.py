"""Rows behind ``DatabaseStore``: one key–value table and one job table, both keyed by instance.

``instance_id`` is a plain string, not a foreign key: the shared host reads and writes these rows
for instances it runs without loading ``Instance`` objects, and a store must keep working in a
host even while the instance row is being deleted. ``otomat.botdata.store.purge`` removes an
instance's rows when it is deleted for good.
"""

from __future__ import annotations

from django.db import models


class KeyValue(models.Model):
    """One ``ctx.store`` entry of one instance: a JSON-encoded value under a key."""

    instance_id = models.CharField(max_length=64)
    key = models.CharField(max_length=512)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance_id", "key"], name="botdata_kv_instance_key"),
        ]

    def __str__(self) -> str:
        return f"{self.instance_id}:{self.key}"


class Job(models.Model):
    """One persisted scheduler job of one instance (see ``otomat.botkit.scheduler``)."""

    instance_id = models.CharField(max_length=64)
    key = models.CharField(max_length=300)
    kind = models.CharField(max_length=100)
    payload = models.TextField()  # JSON object
    due_at = models.DateTimeField()
    every = models.FloatField(null=True, blank=True)  # seconds; None for a one-off job
    attempts = models.PositiveIntegerField(default=0)
    rev = models.CharField(max_length=32)  # identifies the occurrence; see JobRow.rev

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance_id", "key"], name="botdata_job_instance_key"),
        ]
        indexes = [models.Index(fields=["instance_id", "due_at"], name="botdata_job_due")]

    def __str__(self) -> str:
        return f"{self.instance_id}:{self.key}"
