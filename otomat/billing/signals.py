"""Signals other apps listen to, so that billing never imports them."""

from django.dispatch import Signal

# Sent inside the transaction in which an invoice becomes paid; kwargs: invoice.
invoice_paid = Signal()
