"""Products the owner sells and their immutable versions."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Product(models.Model):
    slug = models.SlugField(unique=True, max_length=64)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    # Hidden products stay installed for existing customers but leave the catalog.
    is_listed = models.BooleanField(_("listed in the catalog"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def latest_version(self) -> ProductVersion | None:
        """The newest version by import order (versions are immutable; newer = imported later)."""
        return self.versions.order_by("-created_at", "-id").first()


class ProductVersion(models.Model):
    """One imported version of a product. Immutable once stored: a fix ships as a new version."""

    class Runtime(models.TextChoices):
        PROCESS = "process", _("Process")
        SHARED = "shared", _("Shared")

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64)
    runtime = models.CharField(max_length=16, choices=Runtime.choices)
    entry = models.CharField(max_length=200, blank=True)  # "pkg.module:factory" (botkit)
    command = models.JSONField(default=list, blank=True)  # argv for any-language programs
    config_schema = models.JSONField(default=dict)  # JSON Schema of the configuration
    manifest = models.JSONField(default=dict)  # the parsed otomat.toml, for reference
    memory_mb = models.PositiveIntegerField(default=256)
    health_check = models.CharField(max_length=32, default="updates")
    # Relative to settings.PRODUCTS_DIR; the files are read-only once imported.
    source_dir = models.CharField(max_length=300)
    checksum = models.CharField(max_length=64)  # sha256 over the version's files
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["product__name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version"], name="unique_product_version")
        ]

    def __str__(self) -> str:
        return f"{self.product.name} {self.version}"

    @property
    def source_path(self) -> Path:
        return Path(settings.PRODUCTS_DIR) / self.source_dir

    def secret_fields(self) -> list[str]:
        """Dotted paths of configuration fields marked ``x-otomat-secret``."""
        found: list[str] = []

        def walk(schema: dict, prefix: str) -> None:
            for name, prop in (schema.get("properties") or {}).items():
                path = f"{prefix}{name}"
                if prop.get("x-otomat-secret") or prop.get("writeOnly"):
                    found.append(path)
                if prop.get("type") == "object":
                    walk(prop, path + ".")

        walk(self.config_schema, "")
        return found
