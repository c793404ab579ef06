from django.contrib import admin

from otomat.instances.models import Instance, InstanceEvent


class EventInline(admin.TabularInline):
    model = InstanceEvent
    extra = 0
    readonly_fields = ["at", "from_state", "to_state", "cause", "actor", "actor_label"]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "version", "state", "desired", "restarts", "created_at"]
    list_filter = ["state", "desired"]
    # Secrets are never shown, not even to the owner.
    exclude = ["secrets"]
    readonly_fields = ["state", "desired", "generation", "pid"]
    inlines = [EventInline]
