from django.apps import AppConfig


class BotdataConfig(AppConfig):
    name = "otomat.botdata"
    label = "botdata"
    default_auto_field = "django.db.models.BigAutoField"
