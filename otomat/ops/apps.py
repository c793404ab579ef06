from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "otomat.ops"
    label = "ops"
