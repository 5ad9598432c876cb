"""Admin for sources.

Sources are created in the operator UI or over the API, where the rules
are checked with Send. Here an admin can rename, describe, enable or
disable a source (allowed at any time), read its configuration and the
audit trail, and delete it. Secrets are never shown: only their hints.
"""

from __future__ import annotations

import dataclasses

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from subscriptions.models import SubscriptionMapping

from . import services
from .models import ActiveNode, FieldMapping, SendOptions, Source, SourceChange


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ActiveNodeInline(ReadOnlyInline):
    model = ActiveNode
    fields = ["node", "permission"]


class SendOptionsInline(ReadOnlyInline):
    model = SendOptions
    fields = ["userdb_id", "api_key_hint", "user_key_hint"]


class FieldMappingInline(ReadOnlyInline):
    model = FieldMapping
    fields = ["hub_field", "send_field", "send_type", "matching"]


class SubscriptionMappingInline(ReadOnlyInline):
    model = SubscriptionMapping
    fields = ["hub_system", "send_subscription_id", "webform_code"]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin[Source]):
    list_display = ["name", "provider", "enabled", "workspace", "updated_at"]
    list_filter = ["provider", "enabled"]
    search_fields = ["name", "id"]
    fields = ["id", "workspace", "provider", "name", "description", "enabled"]
    readonly_fields = ["id", "workspace", "provider"]
    inlines = [
        ActiveNodeInline,
        SendOptionsInline,
        FieldMappingInline,
        SubscriptionMappingInline,
    ]
    actions = ["enable", "disable"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: Source, form: ModelForm[Source], change: bool
    ) -> None:
        stored = Source.objects.get(pk=obj.pk)
        spec = dataclasses.replace(
            services.source_spec(stored),
            name=obj.name,
            description=obj.description,
            enabled=obj.enabled,
        )
        services.source_update(source=stored, spec=spec, actor=_user(request))

    def delete_model(self, request: HttpRequest, obj: Source) -> None:
        services.source_delete(source=obj, actor=_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for source in queryset:
            services.source_delete(source=source, actor=_user(request))

    @admin.action(description="Enable the selected sources")
    def enable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description="Disable the selected sources")
    def disable(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[Source], *, enabled: bool
    ) -> None:
        for source in queryset:
            services.source_set_enabled(
                source=source, enabled=enabled, actor=_user(request)
            )
        self.message_user(
            request, f"{queryset.count()} sources updated.", messages.SUCCESS
        )


@admin.register(SourceChange)
class SourceChangeAdmin(admin.ModelAdmin[SourceChange]):
    list_display = ["at", "action", "source_id", "actor_label"]
    list_filter = ["action"]
    search_fields = ["source_id", "actor_label"]
    readonly_fields = [
        "at",
        "action",
        "source_id",
        "workspace",
        "actor",
        "actor_label",
        "changes",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: SourceChange | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: SourceChange | None = None
    ) -> bool:
        return False


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None
