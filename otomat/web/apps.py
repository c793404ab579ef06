from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "otomat.web"
    label = "web"
