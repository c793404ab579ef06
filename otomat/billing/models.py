"""Billing data. This first part holds the invoice number series; plans, subscriptions, invoices
and payments follow (issue 4)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class InvoiceSeries(models.Model):
    """A gap-free numbering series, e.g. "INV" → INV/2026/000042.

    ``next_number`` is only ever changed by ``otomat.billing.numbering.take_number`` inside the
    transaction that issues the document: if that transaction rolls back, the number is not
    consumed, so the series never has a gap (Polish and Indonesian invoicing rules expect that).
    """

    code = models.SlugField(_("code"), max_length=20, unique=True)
    # Python format string with {prefix}, {year}, {number} (e.g. "{prefix}/{year}/{number:06d}").
    format = models.CharField(max_length=100, default="{prefix}/{year}/{number:06d}")
    prefix = models.CharField(max_length=20)
    # Numbering restarts at 1 every year when true (the usual rule), else runs on forever.
    yearly = models.BooleanField(default=True)
    year = models.PositiveIntegerField(null=True, blank=True)  # the year next_number belongs to
    next_number = models.PositiveIntegerField(default=1)  # never modify by hand

    class Meta:
        verbose_name_plural = "invoice series"

    def __str__(self) -> str:
        return self.code
