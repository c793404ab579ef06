from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    name = "otomat.runtime"
    label = "runtime"
