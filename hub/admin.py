"""Admin for workspaces, nodes and customers; writes go through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from . import services
from .models import Customer, Node, Workspace


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin[Workspace]):
    list_display = ["name", "id", "created_at"]
    search_fields = ["name", "id"]
    filter_horizontal = ["members"]


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin[Node]):
    list_display = ["name", "kind", "workspace", "id"]
    list_filter = ["kind"]
    search_fields = ["name", "id"]
    filter_horizontal = ["entry_nodes"]
    readonly_fields = ["id", "created_at", "updated_at"]

    def save_model(
        self, request: HttpRequest, obj: Node, form: ModelForm[Node], change: bool
    ) -> None:
        entries = list(form.cleaned_data.get("entry_nodes") or [])
        if change:
            services.node_update(
                node=obj,
                name=obj.name,
                description=obj.description,
                entry_nodes=entries if obj.is_aggregate else None,
            )
        elif obj.is_aggregate:
            created = services.aggregate_node_create(
                workspace=obj.workspace,
                name=obj.name,
                description=obj.description,
                entry_nodes=entries,
                matching_properties=obj.matching_properties,
                case_sensitive=obj.matching_case_sensitive,
            )
            obj.pk = created.pk
        else:
            created = services.entry_node_create(
                workspace=obj.workspace, name=obj.name, description=obj.description
            )
            obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Node) -> None:
        services.node_delete(node=obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin[Customer]):
    """Customers can be read and deleted here; writes belong to the API."""

    list_display = ["id", "external_id", "node", "enabled", "updated_at"]
    list_filter = ["enabled", "node__workspace"]
    search_fields = ["id", "external_id"]
    readonly_fields = [
        field.name for field in Customer._meta.get_fields() if field.concrete
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Customer | None = None
    ) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        services.customer_delete(customer=obj)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> None:
        for customer in queryset:
            services.customer_delete(customer=customer)
