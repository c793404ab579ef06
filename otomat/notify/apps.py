from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "otomat.notify"
    label = "notify"
