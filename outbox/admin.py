"""Back-office view of the outbox: what is pending, what was dead-lettered and why; retry dead letters."""
from django.contrib import admin, messages

from .models import OutboxEvent
from .services import outbox_retry_dead


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "topic", "queue", "partition_key", "aggregate_id", "status", "attempts", "created_at",
                    "processed_at")
    list_filter = ("status", "queue", "topic")
    search_fields = ("aggregate_id", "event_id", "partition_key")
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    actions = ["retry_dead"]
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Retry selected dead-lettered events")
    def retry_dead(self, request, queryset):
        count = outbox_retry_dead(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} event(s) put back in the queue.", messages.SUCCESS)
