"""Hub subscription systems, and the subscription rows of a Send source."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

system_id_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
    "Use letters, digits, '_', '.' or '-' (at most 100).",
    code="invalid",
)


class SubscriptionSystem(models.Model):
    """A named list customers subscribe to; `system_id` is what customers carry."""

    class Kind(models.TextChoices):
        DIGITAL_MESSAGE = "DIGITAL_MESSAGE", "Digital message"
        SERVICE = "SERVICE", "Service"
        OTHER = "OTHER", "Other"

    workspace = models.ForeignKey(
        "hub.Workspace", on_delete=models.CASCADE, related_name="subscription_systems"
    )
    system_id = models.CharField(max_length=100, validators=[system_id_validator])
    name = models.CharField(max_length=200)
    kind = models.CharField(
        max_length=20, choices=Kind.choices, default=Kind.DIGITAL_MESSAGE
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["system_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "system_id"],
                name="subscriptions_subscriptionsystem_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.system_id


class SubscriptionMapping(models.Model):
    """One subscription row of a Send source: a Hub system to a Send one."""

    source = models.ForeignKey(
        "sources.Source", on_delete=models.CASCADE, related_name="subscription_rows"
    )
    hub_system = models.ForeignKey(
        SubscriptionSystem, on_delete=models.PROTECT, related_name="mappings"
    )
    send_subscription_id = models.PositiveIntegerField()
    webform_code = models.CharField(max_length=200)
    # Filled from Send when the row is saved: the userdb field that holds
    # the state (1 subscribed, -1 unsubscribed, 0 pending).
    registration_field = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "hub_system"],
                name="subscriptions_subscriptionmapping_hub_unique",
            ),
            models.UniqueConstraint(
                fields=["source", "send_subscription_id"],
                name="subscriptions_subscriptionmapping_send_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hub_system_id} → {self.send_subscription_id}"
