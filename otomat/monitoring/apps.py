"""Monitoring: instance and platform health, alert rules, incidents, uptime history, status page."""

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "otomat.monitoring"
    label = "monitoring"

    def ready(self) -> None:
        from otomat.monitoring import receivers

        receivers.connect()
