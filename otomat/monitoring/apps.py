from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "otomat.monitoring"
    label = "monitoring"
