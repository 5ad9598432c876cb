"""The write path for Hub subscription systems."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from hub.models import Workspace

from .models import SubscriptionSystem


def subscription_system_create(
    *, workspace: Workspace, system_id: str, name: str, kind: str = "DIGITAL_MESSAGE"
) -> SubscriptionSystem:
    """Create a subscription system with an id chosen by the caller."""
    system = SubscriptionSystem(
        workspace=workspace, system_id=system_id, name=name, kind=kind
    )
    system.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            system.save()
    except IntegrityError as error:
        raise ValidationError(
            {
                "id": ValidationError(
                    "A subscription system with id %(id)s exists.",
                    code="SUBSCRIPTION_SYSTEM_EXISTS",
                    params={"id": system_id},
                )
            }
        ) from error
    return system


def subscription_system_update(
    *, system: SubscriptionSystem, name: str, kind: str
) -> SubscriptionSystem:
    """Change a subscription system's name and kind (its id is fixed)."""
    system.name, system.kind = name, kind
    system.full_clean(validate_unique=False, validate_constraints=False)
    system.save(update_fields=["name", "kind"])
    return system


def subscription_system_delete(*, system: SubscriptionSystem) -> None:
    """Delete a subscription system no source maps."""
    in_use = ValidationError(
        {
            "id": ValidationError(
                "A Send source synchronizes this subscription system.",
                code="SUBSCRIPTION_SYSTEM_IN_USE",
            )
        }
    )
    with transaction.atomic():
        locked = SubscriptionSystem.objects.select_for_update().filter(pk=system.pk)
        if locked.first() is None:
            return
        if system.mappings.exists():
            raise in_use
        try:
            with transaction.atomic():
                system.delete()
        except (IntegrityError, ProtectedError) as error:
            raise in_use from error
