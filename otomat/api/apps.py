from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "otomat.api"
    label = "api"
