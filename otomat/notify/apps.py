from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "otomat.notify"
    label = "notify"

    def ready(self) -> None:
        from otomat.notify import events

        events.connect()
