from django.apps import AppConfig


class OffersConfig(AppConfig):
    name = "otomat.projects.offers"
    label = "offers"
    verbose_name = "Projects: offers"
