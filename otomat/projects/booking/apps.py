from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "otomat.projects.booking"
    label = "booking"
    verbose_name = "Projects: booking"
