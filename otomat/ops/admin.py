from django.contrib import admin

from otomat.ops.models import ServiceHeartbeat, TaskRecovery


@admin.register(TaskRecovery)
class TaskRecoveryAdmin(admin.ModelAdmin):
    """Read-only: what the stale-task check did, for staff to see."""

    list_display = ("at", "task_path", "action", "attempts", "worker_id", "reason")
    list_filter = ("action",)
    search_fields = ("task_id", "task_path", "worker_id")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    """Read-only: which platform processes beat, where, and when last."""

    list_display = ("service", "host", "pid", "started_at", "seen_at")
    list_filter = ("service", "host")
    readonly_fields = ("service", "host", "pid", "started_at", "seen_at", "info")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
