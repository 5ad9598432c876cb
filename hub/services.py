"""The write path for workspaces, nodes and customers.

Every write goes through these functions: they validate, keep the header
fields (updatedAt, sourceInfo, subscription dates) current, and send
`customer_changed` inside the transaction so that the sync's outbox row is
written with the change or not at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from .documents import merge_patch
from .fields import matching_policy_paths
from .models import Customer, Node, Workspace
from .signals import customer_changed
from .validators import validate_customer_document

# The parts of a customer document a client may write.
WRITABLE_KEYS = (
    "externalId",
    "enabled",
    "base",
    "extended",
    "extra",
    "consents",
    "tags",
)


class CustomerExists(ValidationError):
    """The externalId is taken in the node; `customer_id` names the holder."""

    def __init__(self, customer_id: uuid.UUID) -> None:
        super().__init__(
            {
                "externalId": ValidationError(
                    "A customer with this externalId already exists in the node.",
                    code="CUSTOMER_ALREADY_EXISTS",
                )
            }
        )
        self.customer_id = customer_id


@dataclasses.dataclass(frozen=True)
class SubscriptionChange:
    """One subscription entry whose status changed, for the sync."""

    subscription_id: str
    old: bool | None
    new: bool | None
    at: datetime.datetime


# Workspaces and nodes.


def workspace_create(*, name: str) -> Workspace:
    """Create a workspace."""
    workspace = Workspace(name=name)
    workspace.full_clean()
    workspace.save()
    return workspace


def entry_node_create(
    *, workspace: Workspace, name: str, description: str = ""
) -> Node:
    """Create an entry node."""
    node = Node(
        workspace=workspace, kind=Node.Kind.ENTRY, name=name, description=description
    )
    return _node_save(node)


def aggregate_node_create(
    *,
    workspace: Workspace,
    name: str,
    entry_nodes: Iterable[Node],
    matching_properties: list[str],
    case_sensitive: bool = False,
    description: str = "",
) -> Node:
    """Create an aggregate node over two or more entry nodes of the workspace."""
    node = Node(
        workspace=workspace,
        kind=Node.Kind.AGGREGATE,
        name=name,
        description=description,
        matching_properties=matching_properties,
        matching_case_sensitive=case_sensitive,
    )
    entries = list(entry_nodes)
    validate_aggregate(node, entries)
    with transaction.atomic():
        _node_save(node)
        node.entry_nodes.set(entries)
    return node


def node_update(
    *,
    node: Node,
    name: str,
    description: str = "",
    entry_nodes: Iterable[Node] | None = None,
    matching_properties: list[str] | None = None,
    case_sensitive: bool | None = None,
) -> Node:
    """Update a node's name, description and, for an aggregate, its policy."""
    node.name, node.description = name, description
    node.updated_at = timezone.now()
    if not node.is_aggregate:
        return _node_save(node)

    entries = (
        list(entry_nodes) if entry_nodes is not None else list(node.entry_nodes.all())
    )
    if matching_properties is not None:
        node.matching_properties = matching_properties
    if case_sensitive is not None:
        node.matching_case_sensitive = case_sensitive
    validate_aggregate(node, entries)
    with transaction.atomic():
        _node_save(node)
        node.entry_nodes.set(entries)
    return node


def node_delete(*, node: Node) -> None:
    """Delete a node that holds no customer, has no source and feeds no aggregate.

    The node row is locked before the checks: a customer or source being
    written to it holds a key lock on it, so the checks see every one that
    commits first, and later ones wait and then find the node gone.
    """
    with transaction.atomic():
        locked = Node.objects.select_for_update().filter(pk=node.pk).first()
        if locked is None:
            return
        errors = _node_uses(locked)
        if errors:
            raise ValidationError({"nodeId": errors})
        try:
            with transaction.atomic():
                locked.delete()
        except (IntegrityError, ProtectedError) as error:
            raise ValidationError(
                {"nodeId": ValidationError("The node is in use.", code="NODE_IN_USE")}
            ) from error


def _node_uses(node: Node) -> list[ValidationError]:
    errors = []
    if node.kind == Node.Kind.ENTRY and not node.is_empty():
        errors.append(
            ValidationError("The node holds customers.", code="NODE_NOT_EMPTY")
        )
    if node.source_links.exists():
        errors.append(
            ValidationError("A source uses the node.", code="NODE_HAS_SOURCE")
        )
    if node.aggregates.exists():
        errors.append(
            ValidationError("An aggregate node merges it.", code="NODE_IN_AGGREGATE")
        )
    return errors


def validate_aggregate(node: Node, entries: list[Node]) -> None:
    """Check an aggregate node's entry nodes and matching policy."""
    errors: dict[str, list[ValidationError]] = {}
    if len({entry.id for entry in entries}) < 2:
        errors.setdefault("entryNodes", []).append(
            ValidationError("Name two or more entry nodes.", code="too_few")
        )
    for entry in entries:
        if entry.workspace_id != node.workspace_id or entry.is_aggregate:
            errors.setdefault("entryNodes", []).append(
                ValidationError(
                    "%(id)s is not an entry node of this workspace.",
                    code="invalid",
                    params={"id": entry.id},
                )
            )
    allowed = set(matching_policy_paths())
    paths = node.matching_properties
    if not isinstance(paths, list) or not paths:
        errors.setdefault("matchingPolicy.properties", []).append(
            ValidationError("Name one or more property paths.", code="required")
        )
    else:
        for path in paths:
            if path not in allowed:
                errors.setdefault("matchingPolicy.properties", []).append(
                    ValidationError(
                        "%(path)s is not a property profiles can match on.",
                        code="invalid",
                        params={"path": path},
                    )
                )
    if errors:
        raise ValidationError(errors)


def _node_save(node: Node) -> Node:
    node.full_clean(exclude=["entry_nodes"], validate_constraints=False)
    try:
        with transaction.atomic():
            node.save()
    except IntegrityError as error:
        raise ValidationError(
            {"name": ValidationError("A node with this name exists.", code="unique")}
        ) from error
    return node


# Customers.


def customer_create(
    *, node: Node, data: dict[str, Any], source_id: uuid.UUID | None = None
) -> Customer:
    """Create a customer in an entry node from a Contacthub document."""
    _check_writable(node)
    document = _normalized(data, before=None)
    now = timezone.now()
    customer = Customer(
        node=node,
        registered_at=now,
        updated_at=now,
        registered_by=source_id,
        updated_by=source_id,
    )
    _apply(customer, document)
    with _node_still_there(node), transaction.atomic():
        _save_unique(customer, force_insert=True)
        changes = subscription_changes(None, customer.base, now)
        customer_changed.send(
            sender=Customer,
            customer=customer,
            action="created",
            before=None,
            after=customer.as_document(),
            subscription_changes=changes,
            source_id=source_id,
        )
    return customer


def customer_replace(
    *, customer: Customer, data: dict[str, Any], source_id: uuid.UUID | None = None
) -> Customer:
    """Replace a customer's writable parts (PUT): what is absent is cleared."""
    return _customer_write(customer, lambda _: data, source_id)


def customer_patch(
    *, customer: Customer, patch: dict[str, Any], source_id: uuid.UUID | None = None
) -> Customer:
    """Apply a JSON merge patch to a customer's writable parts (PATCH)."""
    return _customer_write(
        customer, lambda current: merge_patch(current, patch), source_id
    )


def customer_delete(*, customer: Customer, source_id: uuid.UUID | None = None) -> None:
    """Delete a customer."""
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        before = locked.as_document()
        now = timezone.now()
        changes = subscription_changes(locked.base, None, now)
        customer_changed.send(
            sender=Customer,
            customer=locked,
            action="deleted",
            before=before,
            after=None,
            subscription_changes=changes,
            source_id=source_id,
        )
        locked.delete()


def writable_part(customer: Customer) -> dict[str, Any]:
    """Return the parts of a customer a client can write, as a document."""
    document = customer.as_document()
    return {key: document[key] for key in WRITABLE_KEYS}


def _customer_write(
    customer: Customer,
    build: Any,
    source_id: uuid.UUID | None,
) -> Customer:
    """Lock the customer, build its new document, save it if anything changed."""
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        _check_writable(locked.node)
        current = writable_part(locked)
        document = _normalized(build(current), before=locked.base)
        if _same(current, document):
            return locked

        before = locked.as_document()
        old_base = locked.base
        now = timezone.now()
        _apply(locked, document)
        locked.updated_at = now
        locked.updated_by = source_id
        _save_unique(locked)
        customer_changed.send(
            sender=Customer,
            customer=locked,
            action="updated",
            before=before,
            after=locked.as_document(),
            subscription_changes=subscription_changes(old_base, locked.base, now),
            source_id=source_id,
        )
    return locked


@contextlib.contextmanager
def _node_still_there(node: Node) -> Iterator[None]:
    """Report a node deleted during the write as such, not as a crash.

    The foreign key is checked when the transaction commits, after the
    node's own checks, so a node deleted meanwhile surfaces here.
    """
    try:
        yield
    except IntegrityError as error:
        if Node.objects.filter(pk=node.pk).exists():
            raise
        raise ValidationError(
            {"nodeId": ValidationError("The node was deleted.", code="not_found")}
        ) from error


def _check_writable(node: Node) -> None:
    if node.is_aggregate:
        raise ValidationError(
            {
                "nodeId": ValidationError(
                    "Customers cannot be written to an aggregate node.",
                    code="NODE_READ_ONLY",
                )
            }
        )


def _normalized(data: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a client document and fill in what the Hub maintains."""
    unknown = (
        set(data)
        - set(WRITABLE_KEYS)
        - {"id", "nodeId", "registeredAt", "updatedAt", "sourceInfo"}
    )
    if unknown:
        raise ValidationError(
            {
                key: ValidationError("This property is not writable.", code="unknown")
                for key in sorted(unknown)
            }
        )
    for key in ("base", "extended", "consents", "tags"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ValidationError(
                {
                    key: ValidationError(
                        "%(key)s must be an object.",
                        code="invalid",
                        params={"key": key},
                    )
                }
            )
    document = {
        "externalId": data.get("externalId"),
        "enabled": data.get("enabled", True),
        "base": data.get("base") or {},
        "extended": data.get("extended") or {},
        "extra": data.get("extra"),
        "consents": data.get("consents") or {},
        "tags": {"auto": [], "manual": [], **(data.get("tags") or {})},
    }
    _check_header(document)
    validate_customer_document(document)
    document["base"] = _with_subscription_dates(document["base"], before)
    return document


def _check_header(document: dict[str, Any]) -> None:
    external_id = document["externalId"]
    if external_id is not None and (
        not isinstance(external_id, str) or not 0 < len(external_id) <= 255
    ):
        raise ValidationError(
            {
                "externalId": ValidationError(
                    "externalId must be a string of 1 to 255 characters.",
                    code="invalid",
                )
            }
        )
    if not isinstance(document["enabled"], bool):
        raise ValidationError(
            {
                "enabled": ValidationError(
                    "enabled must be true or false.", code="invalid"
                )
            }
        )
    if document["extra"] is not None and not isinstance(document["extra"], str):
        raise ValidationError(
            {"extra": ValidationError("extra must be a string.", code="invalid")}
        )


def _with_subscription_dates(
    base: dict[str, Any], before: dict[str, Any] | None
) -> dict[str, Any]:
    """Keep each subscription's dates in step with its `subscribed` flag.

    Subscribed means startDate set and endDate null; unsubscribed means
    endDate set to the moment of the change. On a change of status, a date
    the client sends wins when it is new; an unchanged one is stale (a
    read-modify-write of the old entry) and is replaced by now.
    """
    entries = base.get("subscriptions")
    if not entries:
        return base
    previous = {e["id"]: e for e in (before or {}).get("subscriptions") or []}
    now = _iso_now()
    result = []
    for given in entries:
        entry = dict(given)
        old = previous.get(entry["id"], {})
        entry["registeredAt"] = (
            entry.get("registeredAt") or old.get("registeredAt") or now
        )
        if not old or old.get("subscribed") != entry.get("subscribed"):
            entry["updatedAt"] = _fresh(entry, old, "updatedAt", now)
            if entry.get("subscribed") is True:
                entry["startDate"] = _fresh(entry, old, "startDate", now)
                entry["endDate"] = None
            elif entry.get("subscribed") is False:
                entry["endDate"] = _fresh(entry, old, "endDate", now)
        result.append(entry)
    return {**base, "subscriptions": result}


def _fresh(entry: dict[str, Any], old: dict[str, Any], key: str, now: str) -> str:
    value = entry.get(key)
    return value if value and value != old.get(key) else now


def subscription_changes(
    old_base: dict[str, Any] | None,
    new_base: dict[str, Any] | None,
    at: datetime.datetime,
) -> list[SubscriptionChange]:
    """List the subscription entries whose `subscribed` state changed."""
    old = {
        e["id"]: e.get("subscribed")
        for e in (old_base or {}).get("subscriptions") or []
    }
    new = {
        e["id"]: e.get("subscribed")
        for e in (new_base or {}).get("subscriptions") or []
    }
    return [
        SubscriptionChange(key, old.get(key), new.get(key), at)
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def _apply(customer: Customer, document: dict[str, Any]) -> None:
    customer.external_id = document["externalId"]
    customer.enabled = document["enabled"]
    customer.base = document["base"]
    customer.extended = document["extended"]
    customer.extra = document["extra"]
    customer.consents = document["consents"]
    customer.tags = document["tags"]


def _same(current: dict[str, Any], document: dict[str, Any]) -> bool:
    return all(current[key] == document[key] for key in WRITABLE_KEYS)


def _save_unique(customer: Customer, force_insert: bool = False) -> None:
    """Save, turning a race on the externalId into CustomerExists."""
    try:
        with transaction.atomic():
            customer.save(force_insert=force_insert)
    except IntegrityError as error:
        holder = (
            Customer.objects.filter(
                node_id=customer.node_id, external_id=customer.external_id
            )
            .exclude(pk=customer.pk)
            .values_list("pk", flat=True)
            .first()
        )
        if holder is None:
            raise
        raise CustomerExists(holder) from error


def _iso_now() -> str:
    return timezone.now().isoformat().replace("+00:00", "Z")
