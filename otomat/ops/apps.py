from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "otomat.ops"
    label = "ops"

    def ready(self) -> None:
        from otomat.ops import stale

        stale.connect()  # running tasks' heartbeats, in whatever process runs tasks
