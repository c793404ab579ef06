from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "otomat.billing"
    label = "billing"
