"""Bearer tokens of the REST API: admin tokens for users, source tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AccessToken(models.Model):
    """A bearer token, kept only as a SHA-256 digest of its value.

    An admin token belongs to a user and configures the workspaces the user
    is a member of; a source token belongs to an API source and reads and
    writes customers of that source's nodes.
    """

    class Kind(models.TextChoices):
        ADMIN = "admin", "Admin"
        SOURCE = "source", "Source"

    kind = models.CharField(max_length=6, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_tokens",
    )
    source = models.ForeignKey(
        "sources.Source",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_tokens",
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="admin", user__isnull=False, source__isnull=True)
                    | models.Q(kind="source", source__isnull=False, user__isnull=True)
                ),
                name="tokens_accesstoken_owner_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["source"],
                condition=models.Q(kind="source"),
                name="tokens_accesstoken_one_per_source",
            ),
        ]

    def __str__(self) -> str:
        owner = self.user_id if self.kind == self.Kind.ADMIN else self.source_id
        return f"{self.kind} token {self.pk} of {owner}"

    @property
    def is_admin(self) -> bool:
        return self.kind == self.Kind.ADMIN
