"""Signals other apps listen to, so that instances never import them (billing listens)."""

from django.dispatch import Signal

# Sent inside the transaction that terminates an instance; kwargs: instance, cause.
instance_terminated = Signal()
