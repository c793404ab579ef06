from django.contrib import admin

from otomat.ops.models import TaskRecovery


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
