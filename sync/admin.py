from django.contrib import admin

from .models import Link, OutboxEntry, SyncIssue, SyncRun, SyncState


@admin.register(SyncState)
class SyncStateAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["source", "cursor_stamp", "last_poll_ok_at", "last_reconcile_at"]
    readonly_fields = ["source"]


@admin.register(OutboxEntry)
class OutboxEntryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "source", "subject_id", "action", "created_at", "attempts"]
    list_filter = ["action"]


@admin.register(Link)
class LinkAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["source", "subject_id", "subscriber_id", "synced_at"]
    search_fields = ["subject_id", "subscriber_id"]


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "source",
        "kind",
        "started_at",
        "added",
        "updated",
        "removed",
        "unchanged",
        "failed",
        "conflicts",
    ]
    list_filter = ["kind"]


@admin.register(SyncIssue)
class SyncIssueAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["source", "kind", "code", "subject_id", "created_at", "resolved_at"]
    list_filter = ["kind", "code"]
