from django.contrib import admin

from otomat.monitoring.models import (
    Alert,
    AlertRule,
    Incident,
    IncidentUpdate,
    Maintenance,
    Silence,
)


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["check_name", "enabled", "severity", "failure_threshold", "recovery_threshold"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["check_name", "subject", "state", "flapping", "suppressed", "fired_at"]
    list_filter = ["state", "check_name", "flapping"]
    search_fields = ["subject", "group"]
    # Written by the engine only (otomat.monitoring.alerts).
    readonly_fields = [f.name for f in Alert._meta.fields]


class UpdateInline(admin.TabularInline):
    model = IncidentUpdate
    extra = 0
    readonly_fields = ["at", "kind", "text", "actor", "actor_label", "public"]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["title", "severity", "status", "source", "opened_at", "resolved_at"]
    list_filter = ["status", "severity", "source"]
    search_fields = ["title"]
    inlines = [UpdateInline]
    # Changed through otomat.monitoring.incidents (timeline and audit), not here.
    readonly_fields = ["status", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by"]


@admin.register(Maintenance)
class MaintenanceAdmin(admin.ModelAdmin):
    list_display = ["title", "scope", "scope_value", "starts_at", "ends_at", "public"]


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ["check_name", "match", "reason", "ends_at", "ended_early_at"]
