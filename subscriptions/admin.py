"""Admin for Hub subscription systems."""

from __future__ import annotations

from django.contrib import admin

from .models import SubscriptionSystem


@admin.register(SubscriptionSystem)
class SubscriptionSystemAdmin(admin.ModelAdmin[SubscriptionSystem]):
    list_display = ["system_id", "name", "kind", "workspace"]
    list_filter = ["kind"]
    search_fields = ["system_id", "name"]

    def get_readonly_fields(
        self, request: object, obj: SubscriptionSystem | None = None
    ) -> list[str]:
        # The id is what customers carry: it never changes once created.
        return ["system_id", "workspace"] if obj is not None else []
