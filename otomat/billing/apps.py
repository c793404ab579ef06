from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "otomat.billing"
    label = "billing"

    def ready(self) -> None:
        from otomat.instances.signals import instance_terminated

        instance_terminated.connect(_instance_terminated, dispatch_uid="billing-terminated")
        from otomat.billing.notices import load_context
        from otomat.notify.services import register_context_loader

        register_context_loader("billing", load_context)

        from django.db.models.signals import post_delete, post_save

        from otomat.billing.models import BillingAction, Invoice, Payment, Subscription
        from otomat.billing.reports import forget_dashboard

        for model in (Subscription, Invoice, Payment, BillingAction):
            for signal in (post_save, post_delete):
                signal.connect(forget_dashboard, sender=model, dispatch_uid=f"dashboard-{model}")


def _instance_terminated(sender, instance, cause, **kwargs) -> None:
    """An instance was removed (by its customer, staff, or billing): its subscription has
    nothing more to bill; the dunning engine ends it on its next look, which is now."""
    from django.utils import timezone

    from otomat.billing.models import Subscription

    Subscription.objects.filter(
        instance_id=instance.pk,
        status__in=[
            Subscription.Status.PENDING,
            Subscription.Status.TRIALING,
            Subscription.Status.ACTIVE,
            Subscription.Status.PAST_DUE,
            Subscription.Status.SUSPENDED,
        ],
    ).update(next_run_at=timezone.now())
