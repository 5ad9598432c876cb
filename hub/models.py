"""Workspaces, nodes and customers: the Hub side of hubsync."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="workspaces"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Node(models.Model):
    class Kind(models.TextChoices):
        ENTRY = "ENTRY", "Entry"
        AGGREGATE = "AGGREGATE", "Aggregate"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="nodes"
    )
    kind = models.CharField(max_length=9, choices=Kind.choices, default=Kind.ENTRY)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # Aggregate nodes only: the entry nodes merged, and how profiles match.
    entry_nodes = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="aggregates"
    )
    matching_properties = models.JSONField(default=list, blank=True)
    matching_case_sensitive = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="hub_node_name_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["ENTRY", "AGGREGATE"]),
                name="hub_node_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_aggregate(self) -> bool:
        return self.kind == self.Kind.AGGREGATE

    def storage_node_ids(self) -> list[uuid.UUID]:
        """Return the ids of the nodes whose customers this node shows."""
        if self.is_aggregate:
            return list(self.entry_nodes.values_list("id", flat=True))
        return [self.id]

    def is_empty(self) -> bool:
        """Tell whether the node holds no customer at all, enabled or not."""
        return not Customer.objects.filter(node_id__in=self.storage_node_ids()).exists()


class Customer(models.Model):
    """A Contacthub customer document, its header fields kept as columns."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="customers")
    # Null, not "", for "no externalId": the unique constraint skips nulls.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    enabled = models.BooleanField(default=True)
    registered_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    # sourceInfo: the sources that registered and last updated the customer.
    registered_by = models.UUIDField(null=True, blank=True)
    updated_by = models.UUIDField(null=True, blank=True)
    base = models.JSONField(default=dict, blank=True)
    extended = models.JSONField(default=dict, blank=True)
    # Contacthub tells an absent `extra` (null) from an empty one.
    extra = models.TextField(null=True, blank=True)  # noqa: DJ001
    consents = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["registered_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="hub_customer_external_id_unique",
            ),
        ]
        indexes = [models.Index(fields=["node", "updated_at"])]

    def __str__(self) -> str:
        return str(self.id)

    def as_document(self) -> dict[str, Any]:
        """Return the customer in the Contacthub shape."""
        return customer_document(
            self.id,
            self.node_id,
            self.external_id,
            self.enabled,
            self.registered_at,
            self.updated_at,
            self.registered_by,
            self.updated_by,
            self.base,
            self.extended,
            self.extra,
            self.consents,
            self.tags,
        )


def customer_document(
    customer_id: Any,
    node_id: Any,
    external_id: str | None,
    enabled: bool,
    registered_at: Any,
    updated_at: Any,
    registered_by: Any,
    updated_by: Any,
    base: dict[str, Any],
    extended: dict[str, Any],
    extra: str | None,
    consents: dict[str, Any],
    tags: dict[str, Any],
) -> dict[str, Any]:
    """Return a customer's stored columns in the Contacthub shape."""
    return {
        "id": str(customer_id),
        "nodeId": str(node_id),
        "externalId": external_id,
        "enabled": enabled,
        "registeredAt": _iso(registered_at),
        "updatedAt": _iso(updated_at),
        "sourceInfo": {
            "registeredBy": _str_or_none(registered_by),
            "updatedBy": _str_or_none(updated_by),
        },
        "base": base,
        "extended": extended,
        "extra": extra,
        "consents": consents,
        "tags": {
            "auto": list(tags.get("auto", [])),
            "manual": list(tags.get("manual", [])),
        },
    }


def _iso(moment: Any) -> str | None:
    if moment is None:
        return None
    return str(moment.isoformat().replace("+00:00", "Z"))


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
