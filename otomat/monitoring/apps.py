"""Monitoring: instance and platform health, alert rules, incidents, uptime history, status page."""

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "otomat.monitoring"
    label = "monitoring"

    def ready(self) -> None:
        from otomat.monitoring import checks, platform, receivers

        receivers.connect()
        platform.connect()  # host and service checks, and the services watching each other
        checks.connect()  # Telegram's side, stuck provisioning, the uptime history
