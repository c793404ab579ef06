from django.contrib import admin

from otomat.catalog.models import Product, ProductVersion


class ProductVersionInline(admin.TabularInline):
    model = ProductVersion
    fields = ["version", "runtime", "memory_mb", "health_check", "checksum", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False  # versions come from import_product only (files + checksum + audit)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_listed", "created_at"]
    list_editable = ["is_listed"]
    search_fields = ["name", "slug"]
    readonly_fields = ["slug", "created_at"]
    inlines = [ProductVersionInline]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # products are created by importing a version


@admin.register(ProductVersion)
class ProductVersionAdmin(admin.ModelAdmin):
    """Read-only: a version is immutable once imported; a fix ships as a new version."""

    list_display = ["product", "version", "runtime", "checksum", "created_at", "created_by"]
    list_filter = ["runtime", "product"]
    search_fields = ["product__name", "product__slug", "version"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
