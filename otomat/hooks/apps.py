from django.apps import AppConfig


class HooksConfig(AppConfig):
    name = "otomat.hooks"
    label = "hooks"
    verbose_name = "Outgoing webhooks"

    def ready(self) -> None:
        from otomat.hooks import events

        events.connect()
