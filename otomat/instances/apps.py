from django.apps import AppConfig


class InstancesConfig(AppConfig):
    name = "otomat.instances"
    label = "instances"
