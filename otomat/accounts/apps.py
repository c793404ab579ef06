from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "otomat.accounts"
    label = "accounts"
