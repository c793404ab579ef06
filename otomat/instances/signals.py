"""Signals other apps listen to, so that instances never import them (billing and the runtime
listen)."""

from django.dispatch import Signal

# Sent inside the transaction that terminates an instance; kwargs: instance, cause.
instance_terminated = Signal()

# Sent after a commit that changed what should run (a desired state, a configuration); no
# kwargs. The runtime wakes its runner (otomat.runtime.apps).
runner_needed = Signal()

# Sent when a terminated instance's grace period has ended and its data is deleted; kwargs:
# instance_id (str). A runtime keeping data elsewhere (a Kubernetes volume) deletes it too.
instance_data_purged = Signal()
