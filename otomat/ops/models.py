"""Operational state shared by the platform's processes."""

from django.db import models


class Lease(models.Model):
    """A named lease held by one process until ``expires_at`` (e.g. "scheduler"): a second
    scheduler stays idle while the first renews its lease, and takes over when it stops."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128)
    expires_at = models.DateTimeField()
