from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "otomat.catalog"
    label = "catalog"

    def ready(self) -> None:
        from otomat.catalog.checks import install_log_redaction

        # Bot tokens travel in Bot API URLs, which httpx logs at INFO.
        install_log_redaction()
