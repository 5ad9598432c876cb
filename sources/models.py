"""Sources, their active nodes, Send options and field maps, and their audit."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Provider(models.TextChoices):
    API = "API", "API"
    CONTACTSEND = "CONTACTSEND", "Contactsend"


class Permission(models.TextChoices):
    READ = "R", "Read"
    WRITE = "W", "Write"
    READ_WRITE = "RW", "Read and write"


class Source(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        "hub.Workspace", on_delete=models.CASCADE, related_name="sources"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(provider__in=Provider.values),
                name="sources_source_provider_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_send(self) -> bool:
        return self.provider == Provider.CONTACTSEND


class ActiveNode(models.Model):
    """A node a source may use, with the direction of the data.

    `provider` repeats the source's (which never changes) so that the
    database can hold the Send rules: one Send source per node, one node
    per Send source.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="nodes")
    node = models.ForeignKey(
        "hub.Node", on_delete=models.PROTECT, related_name="source_links"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    permission = models.CharField(max_length=2, choices=Permission.choices)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "node"], name="sources_activenode_unique"
            ),
            models.UniqueConstraint(
                fields=["node"],
                condition=models.Q(provider="CONTACTSEND"),
                name="sources_activenode_one_send_source_per_node",
            ),
            models.UniqueConstraint(
                fields=["source"],
                condition=models.Q(provider="CONTACTSEND"),
                name="sources_activenode_one_node_per_send_source",
            ),
            models.CheckConstraint(
                condition=models.Q(permission__in=Permission.values),
                name="sources_activenode_permission_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node_id} ({self.permission})"

    @property
    def reads(self) -> bool:
        """Whether the source reads the node: Hub changes go out."""
        return "R" in self.permission

    @property
    def writes(self) -> bool:
        """Whether the source writes the node: outside changes come in."""
        return "W" in self.permission


class SendOptions(models.Model):
    """The Send account and userdb of a CONTACTSEND source.

    The keys are stored encrypted; `api_key_hash` (an HMAC of the apiKey)
    identifies the account so the database can hold "one userdb, one node".
    """

    source = models.OneToOneField(
        Source, on_delete=models.CASCADE, primary_key=True, related_name="send"
    )
    api_key_encrypted = models.TextField()
    user_key_encrypted = models.TextField()
    api_key_hash = models.CharField(max_length=64)
    api_key_hint = models.CharField(max_length=4, blank=True, default="")
    user_key_hint = models.CharField(max_length=4, blank=True, default="")
    userdb_id = models.PositiveIntegerField()

    class Meta:
        verbose_name = "Send options"
        verbose_name_plural = "Send options"
        constraints = [
            models.UniqueConstraint(
                fields=["api_key_hash", "userdb_id"],
                name="sources_sendoptions_one_node_per_userdb",
            ),
        ]

    def __str__(self) -> str:
        return f"userdb {self.userdb_id}"


class FieldMapping(models.Model):
    """One row of a Send source's field map."""

    source = models.ForeignKey(
        Source, on_delete=models.CASCADE, related_name="field_map"
    )
    hub_field = models.CharField(max_length=200)
    send_field = models.CharField(max_length=200)
    send_type = models.CharField(max_length=20, blank=True, default="")
    matching = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "hub_field"], name="sources_fieldmapping_hub_unique"
            ),
            models.UniqueConstraint(
                fields=["source", "send_field"], name="sources_fieldmapping_send_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hub_field} → {self.send_field}"


class SourceChange(models.Model):
    """An audit entry: who changed a source's configuration, when, and how.

    `changes` maps a field to `[old, new]`; secrets appear only as
    "changed". The entry keeps the source id as a plain value so that it
    outlives the source.
    """

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        UPDATED = "updated", "Updated"
        DELETED = "deleted", "Deleted"

    source_id = models.UUIDField(db_index=True)
    workspace = models.ForeignKey(
        "hub.Workspace", on_delete=models.CASCADE, related_name="source_changes"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=200, blank=True, default="")
    action = models.CharField(max_length=10, choices=Action.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.source_id} at {self.at:%Y-%m-%d %H:%M}"
