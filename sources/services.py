"""The write path for sources: create, modify and delete, under the rules.

A configuration is described by a `SourceSpec` (what the source should be
after the write); the UI, the admin and the API all build one and call
these services. For a Send source the services:

1. check the shape of the configuration and the creation rules;
2. ask Send about the userdb (outside any transaction: it is slow);
3. lock the source, check the modification table against the stored
   state, and write every row in one transaction, with an audit entry;
4. turn a lost race on a database constraint into the rule's own error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from hub.fields import READ_ONLY_FIELDS, hub_field_type
from hub.models import Node, Workspace
from subscriptions.models import SubscriptionMapping, SubscriptionSystem

from . import crypto
from .models import (
    ActiveNode,
    FieldMapping,
    Permission,
    Provider,
    SendOptions,
    Source,
    SourceChange,
)
from .rules import (
    CONSTRAINT_CODES,
    Change,
    Code,
    aggregate_permission_violation,
    creation_violations,
    unmet_requirements,
)
from .selectors import UserDbInfo, send_userdb_describe, source_credentials
from .send.gateway import MODIFIED_FIELD, SendCredentials
from .signals import source_changed

logger = logging.getLogger(__name__)

CHANGED_MARK = "changed"

# The Send field types each kind of Hub value may be written to.
_TEXT = {"CHAR", "STRING", "TEXT"}
COMPATIBLE_SEND_TYPES: dict[str, set[str]] = {
    "string": _TEXT,
    "email": _TEXT,
    "tags": _TEXT,
    "date": _TEXT | {"DATE", "DATETIME", "TIMESTAMP"},
    "datetime": _TEXT | {"DATETIME", "TIMESTAMP", "DATE"},
    "boolean": _TEXT | {"FLAG", "INTEGER"},
    "number": _TEXT | {"DOUBLE"},
}


@dataclasses.dataclass(frozen=True)
class NodeGrant:
    node: Node
    permission: str = Permission.READ_WRITE


@dataclasses.dataclass(frozen=True)
class FieldRow:
    hub_field: str
    send_field: str
    matching: bool = False


@dataclasses.dataclass(frozen=True)
class SubscriptionRow:
    hub_subscription_id: str
    send_subscription_id: int
    webform_code: str


@dataclasses.dataclass(frozen=True)
class SendSettings:
    """A Send source's provider options; a key left None keeps the stored one."""

    userdb_id: int
    api_key: str | None = None
    user_key: str | None = None
    fields: tuple[FieldRow, ...] = ()
    subscriptions: tuple[SubscriptionRow, ...] = ()

    def __repr__(self) -> str:
        return f"SendSettings(userdb_id={self.userdb_id}, fields={self.fields!r})"


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """What a source should be after a write."""

    name: str
    description: str = ""
    enabled: bool = True
    nodes: tuple[NodeGrant, ...] = ()
    send: SendSettings | None = None


class _Errors:
    """Collects errors by field, so that all of them are reported at once."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[ValidationError]] = {}

    def add(self, field: str, error: ValidationError) -> None:
        self.by_field.setdefault(field, []).append(error)

    def extend(self, found: list[tuple[str, ValidationError]]) -> None:
        for field, error in found:
            self.add(field, error)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


# Reads of the current configuration.


def source_spec(source: Source) -> SourceSpec:
    """Return the stored configuration of a source (keys left as None)."""
    send = None
    if source.is_send:
        send = SendSettings(
            userdb_id=source.send.userdb_id,
            fields=tuple(
                FieldRow(row.hub_field, row.send_field, row.matching)
                for row in source.field_map.all()
            ),
            subscriptions=tuple(
                SubscriptionRow(
                    row.hub_system.system_id, row.send_subscription_id, row.webform_code
                )
                for row in source.subscription_rows.select_related("hub_system")
            ),
        )
    return SourceSpec(
        name=source.name,
        description=source.description,
        enabled=source.enabled,
        nodes=tuple(
            NodeGrant(link.node, link.permission)
            for link in source.nodes.select_related("node")
        ),
        send=send,
    )


# Writes.


def source_create(
    *,
    workspace: Workspace,
    provider: str,
    spec: SourceSpec,
    actor: User | None = None,
    actor_label: str = "",
) -> Source:
    """Create a source; a Send source must satisfy every creation rule."""
    errors = _Errors()
    if provider not in Provider.values:
        errors.add("provider", ValidationError("Unknown provider.", code="invalid"))
        errors.raise_if_any()
    _check_common(workspace, provider, spec, errors)

    info = None
    if provider == Provider.CONTACTSEND:
        info = _check_new_send(workspace, spec, errors)
    errors.raise_if_any()

    with _rule_races(), transaction.atomic():
        source = Source.objects.create(
            workspace=workspace,
            provider=provider,
            name=spec.name,
            description=spec.description,
            enabled=spec.enabled,
        )
        _write_rows(source, spec, info, set(Change))
        _audit(source, actor, actor_label, SourceChange.Action.CREATED, {}, spec)
        source_changed.send(
            sender=Source,
            source=source,
            action="created",
            changes=set(Change),
            was_enabled=False,
        )
    logger.info("Source created. source=%s provider=%s", source.id, provider)
    return source


def source_update(
    *,
    source: Source,
    spec: SourceSpec,
    actor: User | None = None,
    actor_label: str = "",
) -> Source:
    """Modify a source; a Send source must meet the modification table."""
    errors = _Errors()
    _check_common(source.workspace, source.provider, spec, errors)
    errors.raise_if_any()

    changes = _changes(source, spec)
    info = None
    if source.is_send and changes & _CHANGES_NEEDING_SEND:
        info = _describe(_credentials(source, spec), _send(spec).userdb_id, errors)
        errors.raise_if_any()

    with _rule_races(), transaction.atomic():
        locked = Source.objects.select_for_update().get(pk=source.pk)
        before = _snapshot(locked)
        changes = _changes(locked, spec)
        if locked.is_send:
            _check_unchanged_meanwhile(changes, info)
            _check_send_update(locked, spec, changes, info, errors)
        errors.raise_if_any()

        was_enabled = locked.enabled
        locked.name, locked.description = spec.name, spec.description
        locked.enabled = spec.enabled
        locked.updated_at = timezone.now()
        locked.save(update_fields=["name", "description", "enabled", "updated_at"])
        _write_rows(locked, spec, info, changes)
        _audit(locked, actor, actor_label, SourceChange.Action.UPDATED, before, spec)
        source_changed.send(
            sender=Source,
            source=locked,
            action="updated",
            changes=changes,
            was_enabled=was_enabled,
        )
    logger.info(
        "Source updated. source=%s changes=%s",
        locked.id,
        ",".join(sorted(changes)) or "-",
    )
    return locked


def source_set_enabled(
    *,
    source: Source,
    enabled: bool,
    actor: User | None = None,
    actor_label: str = "",
) -> Source:
    """Enable or disable a source: allowed at any time."""
    spec = dataclasses.replace(source_spec(source), enabled=enabled)
    return source_update(source=source, spec=spec, actor=actor, actor_label=actor_label)


def source_delete(
    *,
    source: Source,
    actor: User | None = None,
    actor_label: str = "",
) -> None:
    """Delete a source and its configuration, keeping the audit trail."""
    with transaction.atomic():
        locked = Source.objects.select_for_update().get(pk=source.pk)
        SourceChange.objects.create(
            source_id=locked.id,
            workspace_id=locked.workspace_id,
            actor=actor,
            actor_label=actor_label or _label(actor),
            action=SourceChange.Action.DELETED,
            changes=_diff(_snapshot(locked), {}),
        )
        source_changed.send(
            sender=Source,
            source=locked,
            action="deleted",
            changes=set(),
            was_enabled=locked.enabled,
        )
        locked.delete()
    logger.info("Source deleted. source=%s", source.id)


# Checks.

_CHANGES_NEEDING_SEND = {
    Change.API_KEY,
    Change.USERDB,
    Change.FIELD_MAP,
    Change.SUBSCRIPTIONS,
}


def _check_unchanged_meanwhile(changes: set[Change], info: UserDbInfo | None) -> None:
    """Refuse a write whose Send checks were skipped on an outdated view.

    Send is asked before the lock is taken; when another write landed in
    between, the locked source can need checks (the userdb's size, the
    rows) that nobody made, so the client must read the source again.
    """
    if info is None and changes & _CHANGES_NEEDING_SEND:
        raise ValidationError(
            {
                NON_FIELD_ERRORS: ValidationError(
                    "The source changed during this request; read it and retry.",
                    code=Code.SOURCE_CHANGED,
                )
            }
        )


def _check_common(
    workspace: Workspace, provider: str, spec: SourceSpec, errors: _Errors
) -> None:
    """Check what every source needs: a name, its own nodes, valid permissions."""
    if not spec.name.strip():
        errors.add("name", ValidationError("A name is required.", code="required"))
    elif len(spec.name) > 200:
        errors.add(
            "name", ValidationError("At most 200 characters.", code="max_length")
        )
    seen = set()
    for grant in spec.nodes:
        if grant.node.workspace_id != workspace.id:
            errors.add(
                "nodes",
                ValidationError(
                    "Node %(node)s is not in this workspace.",
                    code="invalid",
                    params={"node": grant.node.id},
                ),
            )
        if grant.permission not in Permission.values:
            errors.add(
                "nodes",
                ValidationError(
                    "Permission must be R, W or RW.", code="invalid_permission"
                ),
            )
        if grant.node.id in seen:
            errors.add(
                "nodes", ValidationError("A node is listed twice.", code="duplicate")
            )
        seen.add(grant.node.id)
        if provider == Provider.API:
            violation = aggregate_permission_violation(grant.node, grant.permission)
            if violation is not None:
                errors.add("nodes", violation)
    if provider == Provider.CONTACTSEND and spec.send is None:
        errors.add(
            "properties",
            ValidationError(
                "A Send source needs its provider options.", code="required"
            ),
        )
    if provider == Provider.API and spec.send is not None:
        errors.add(
            "properties",
            ValidationError("An API source has no provider options.", code="invalid"),
        )


def _check_new_send(
    workspace: Workspace, spec: SourceSpec, errors: _Errors
) -> UserDbInfo | None:
    """Check a new Send source, asking Send about the userdb."""
    send = _send(spec)
    for name, key in (("apiKey", send.api_key), ("userKey", send.user_key)):
        if not key:
            errors.add(
                f"properties.{name}",
                ValidationError("This key is required.", code="required"),
            )
    if errors.by_field:
        return None
    assert send.api_key and send.user_key
    _check_rules(workspace, None, spec, crypto.identity_hashes(send.api_key), errors)
    info = _describe(
        SendCredentials(send.api_key, send.user_key), send.userdb_id, errors
    )
    if info is None:
        return None
    if info.subscriber_count:
        errors.add(
            "properties.userDbId",
            ValidationError(
                "A Send source can only be created for an empty userdb; userdb "
                "%(userdb)s holds %(count)s subscribers.",
                code="USERDB_NOT_EMPTY",
                params={"userdb": send.userdb_id, "count": info.subscriber_count},
            ),
        )
    _check_rows(workspace, send, info, errors)
    return info


def _check_send_update(
    source: Source,
    spec: SourceSpec,
    changes: set[Change],
    info: UserDbInfo | None,
    errors: _Errors,
) -> None:
    """Check a Send source's new configuration and the modification table."""
    send = _send(spec)
    hashes = (
        crypto.identity_hashes(send.api_key)
        if send.api_key
        else [source.send.api_key_hash]
    )
    _check_rules(source.workspace, source, spec, hashes, errors)
    if info is not None:
        _check_rows(source.workspace, send, info, errors)

    new_node = spec.nodes[0].node if len(spec.nodes) == 1 else None
    count = info.subscriber_count if info is not None else 0
    errors.extend(unmet_requirements(source, changes, new_node, lambda: count))


def _check_rules(
    workspace: Workspace,
    source: Source | None,
    spec: SourceSpec,
    api_key_hashes: list[str],
    errors: _Errors,
) -> None:
    send = _send(spec)
    errors.extend(
        creation_violations(
            workspace_id=workspace.id,
            source=source,
            grants=[(grant.node, grant.permission) for grant in spec.nodes],
            api_key_hashes=api_key_hashes,
            userdb_id=send.userdb_id,
            has_matching_field=any(row.matching for row in send.fields),
            has_subscription_rows=bool(send.subscriptions),
        )
    )


def _check_rows(
    workspace: Workspace, send: SendSettings, info: UserDbInfo, errors: _Errors
) -> None:
    """Check the field map and subscription rows against the userdb."""
    managed = {info.userdb.subscriber_identifier_field, MODIFIED_FIELD}
    registration = {s.registration_field for s in info.subscriptions}
    hub_seen: set[str] = set()
    send_seen: set[str] = set()
    for index, row in enumerate(send.fields):
        where = f"properties.fields[{index}]"
        for error in _field_row_errors(row, info, managed | registration):
            errors.add(where, error)
        if row.hub_field in hub_seen or row.send_field in send_seen:
            errors.add(
                where, ValidationError("This field is mapped twice.", code="duplicate")
            )
        hub_seen.add(row.hub_field)
        send_seen.add(row.send_field)

    systems = set(
        SubscriptionSystem.objects.filter(workspace=workspace).values_list(
            "system_id", flat=True
        )
    )
    hub_subscriptions: set[str] = set()
    send_subscriptions: set[int] = set()
    for index, sub in enumerate(send.subscriptions):
        where = f"properties.subscriptions[{index}]"
        for error in _subscription_row_errors(sub, info, systems):
            errors.add(where, error)
        if (
            sub.hub_subscription_id in hub_subscriptions
            or sub.send_subscription_id in send_subscriptions
        ):
            errors.add(
                where,
                ValidationError("This subscription is listed twice.", code="duplicate"),
            )
        hub_subscriptions.add(sub.hub_subscription_id)
        send_subscriptions.add(sub.send_subscription_id)


def _field_row_errors(
    row: FieldRow, info: UserDbInfo, reserved: set[str]
) -> Iterator[ValidationError]:
    hub_type = hub_field_type(row.hub_field)
    send_field = info.field(row.send_field)
    if hub_type is None:
        yield ValidationError(
            "%(field)s is not a Hub field that can be synchronized.",
            code="invalid_hub_field",
            params={"field": row.hub_field},
        )
    if send_field is None:
        yield ValidationError(
            "Userdb %(userdb)s has no field %(field)s.",
            code="invalid_send_field",
            params={"userdb": info.userdb.identifier, "field": row.send_field},
        )
    elif row.send_field in reserved:
        yield ValidationError(
            "%(field)s is kept by Send or by a subscription and cannot be mapped.",
            code="reserved_send_field",
            params={"field": row.send_field},
        )
    elif (
        hub_type is not None
        and not row.hub_field.startswith("extended.")
        and send_field.type not in COMPATIBLE_SEND_TYPES[hub_type]
    ):
        yield ValidationError(
            "%(hub)s (%(hub_type)s) cannot be stored in %(send)s (%(send_type)s).",
            code="incompatible_types",
            params={
                "hub": row.hub_field,
                "hub_type": hub_type,
                "send": row.send_field,
                "send_type": send_field.type,
            },
        )
    if row.matching and row.hub_field in READ_ONLY_FIELDS - {"id"}:
        yield ValidationError(
            "%(field)s cannot be a matching field.",
            code="invalid_matching_field",
            params={"field": row.hub_field},
        )


def _subscription_row_errors(
    row: SubscriptionRow, info: UserDbInfo, systems: set[str]
) -> Iterator[ValidationError]:
    if row.hub_subscription_id not in systems:
        yield ValidationError(
            "There is no Hub subscription system %(id)s.",
            code="invalid_hub_subscription",
            params={"id": row.hub_subscription_id},
        )
    remote = info.subscription(row.send_subscription_id)
    if remote is None:
        yield ValidationError(
            "Userdb %(userdb)s has no subscription system %(id)s.",
            code="invalid_send_subscription",
            params={"userdb": info.userdb.identifier, "id": row.send_subscription_id},
        )
    if not row.webform_code.strip():
        yield ValidationError("Enter the Webform Code.", code="required")
    elif (
        remote is not None
        and remote.webform_code
        and (remote.webform_code != row.webform_code)
    ):
        yield ValidationError(
            "The Webform Code of %(name)s in Send is not %(code)s.",
            code="webform_code_mismatch",
            params={"name": remote.name, "code": row.webform_code},
        )


def _describe(
    credentials: SendCredentials, userdb_id: int, errors: _Errors
) -> UserDbInfo | None:
    try:
        return send_userdb_describe(credentials, userdb_id)
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            for message in messages:
                errors.add(field, message)
        return None


# Diffs, rows and audit.


def _changes(source: Source, spec: SourceSpec) -> set[Change]:
    """Return the kinds of change `spec` makes to the stored source."""
    current = source_spec(source)
    changes = set()
    if {g.node.id for g in current.nodes} != {g.node.id for g in spec.nodes}:
        changes.add(Change.NODE)
    elif {(g.node.id, g.permission) for g in current.nodes} != {
        (g.node.id, g.permission) for g in spec.nodes
    }:
        changes.add(Change.PERMISSION)
    if not source.is_send or current.send is None:
        return changes

    new, old = _send(spec), current.send
    if _keys_differ(source, new):
        changes.add(Change.API_KEY)
    if new.userdb_id != old.userdb_id:
        changes.add(Change.USERDB)
    if set(new.fields) != set(old.fields):
        changes.add(Change.FIELD_MAP)
    if set(new.subscriptions) != set(old.subscriptions):
        changes.add(Change.SUBSCRIPTIONS)
    return changes


def _keys_differ(source: Source, send: SendSettings) -> bool:
    stored = source_credentials(source)
    return bool(
        (send.api_key and send.api_key != stored.api_key)
        or (send.user_key and send.user_key != stored.user_key)
    )


def _credentials(source: Source, spec: SourceSpec) -> SendCredentials:
    stored = source_credentials(source)
    send = _send(spec)
    return SendCredentials(
        api_key=send.api_key or stored.api_key,
        user_key=send.user_key or stored.user_key,
    )


def _write_rows(
    source: Source, spec: SourceSpec, info: UserDbInfo | None, changes: set[Change]
) -> None:
    """Write the rows that `changes` touch."""
    if changes & {Change.NODE, Change.PERMISSION}:
        source.nodes.all().delete()
        ActiveNode.objects.bulk_create(
            ActiveNode(
                source=source,
                node=grant.node,
                provider=source.provider,
                permission=grant.permission,
            )
            for grant in spec.nodes
        )
    if not source.is_send:
        return

    send = _send(spec)
    _write_send_options(source, send)
    if info is not None and changes & {Change.FIELD_MAP, Change.USERDB, Change.API_KEY}:
        source.field_map.all().delete()
        FieldMapping.objects.bulk_create(
            FieldMapping(
                source=source,
                hub_field=row.hub_field,
                send_field=row.send_field,
                send_type=_send_type(info, row.send_field),
                matching=row.matching,
            )
            for row in send.fields
        )
    if info is not None and changes & {
        Change.SUBSCRIPTIONS,
        Change.USERDB,
        Change.API_KEY,
    }:
        _write_subscription_rows(source, send, info)


def _write_send_options(source: Source, send: SendSettings) -> None:
    options = SendOptions.objects.filter(source=source).first() or SendOptions(
        source=source
    )
    if send.api_key:
        options.api_key_encrypted = crypto.encrypt(send.api_key)
        options.api_key_hash = crypto.identity_hash(send.api_key)
        options.api_key_hint = crypto.hint(send.api_key)
    if send.user_key:
        options.user_key_encrypted = crypto.encrypt(send.user_key)
        options.user_key_hint = crypto.hint(send.user_key)
    options.userdb_id = send.userdb_id
    options.save()


def _write_subscription_rows(
    source: Source, send: SendSettings, info: UserDbInfo
) -> None:
    systems = {
        system.system_id: system
        for system in SubscriptionSystem.objects.filter(workspace=source.workspace)
    }
    missing = [
        row.hub_subscription_id
        for row in send.subscriptions
        if row.hub_subscription_id not in systems
    ]
    if missing:
        # Deleted between the checks and this write.
        raise ValidationError(
            {
                "properties.subscriptions": ValidationError(
                    "There is no Hub subscription system %(id)s.",
                    code="invalid_hub_subscription",
                    params={"id": missing[0]},
                )
            }
        )
    source.subscription_rows.all().delete()
    SubscriptionMapping.objects.bulk_create(
        SubscriptionMapping(
            source=source,
            hub_system=systems[row.hub_subscription_id],
            send_subscription_id=row.send_subscription_id,
            webform_code=row.webform_code,
            registration_field=_registration_field(info, row.send_subscription_id),
        )
        for row in send.subscriptions
    )


def _send_type(info: UserDbInfo, name: str) -> str:
    field = info.field(name)
    return field.type if field is not None else ""


def _registration_field(info: UserDbInfo, subscription_id: int) -> str:
    remote = info.subscription(subscription_id)
    return remote.registration_field if remote is not None else ""


def _snapshot(source: Source) -> dict[str, Any]:
    """Return the audited view of a stored source; secrets as their hash."""
    spec = source_spec(source)
    snapshot: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "enabled": spec.enabled,
        "nodes": sorted(f"{g.node.id}:{g.permission}" for g in spec.nodes),
    }
    if spec.send is not None:
        options = source.send
        snapshot |= {
            "apiKey": options.api_key_hash,
            "userKey": crypto.identity_hash(source_credentials(source).user_key),
            "userDbId": spec.send.userdb_id,
            "fields": sorted(
                f"{r.hub_field}={r.send_field}{'*' if r.matching else ''}"
                for r in spec.send.fields
            ),
            "subscriptions": sorted(
                f"{r.hub_subscription_id}={r.send_subscription_id}:{r.webform_code}"
                for r in spec.send.subscriptions
            ),
        }
    return snapshot


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old != new:
            if key in {"apiKey", "userKey"}:
                changed[key] = CHANGED_MARK
            else:
                changed[key] = [old, new]
    return changed


def _audit(
    source: Source,
    actor: User | None,
    actor_label: str,
    action: str,
    before: dict[str, Any],
    spec: SourceSpec,
) -> None:
    source.refresh_from_db()
    changes = _diff(before, _snapshot(source))
    if not changes and action == SourceChange.Action.UPDATED:
        return
    SourceChange.objects.create(
        source_id=source.id,
        workspace_id=source.workspace_id,
        actor=actor,
        actor_label=actor_label or _label(actor),
        action=action,
        changes=changes,
    )


def _label(actor: User | None) -> str:
    return actor.get_username() if actor is not None else "system"


def _send(spec: SourceSpec) -> SendSettings:
    assert spec.send is not None
    return spec.send


@contextlib.contextmanager
def _rule_races() -> Iterator[None]:
    """Turn an IntegrityError from a rule's constraint into the rule's error."""
    try:
        yield
    except IntegrityError as error:
        rule = _broken_rule(error)
        if rule is None:
            raise
        field, code, message = rule
        raise ValidationError({field: ValidationError(message, code=code)}) from error


def _broken_rule(error: IntegrityError) -> tuple[str, str, str] | None:
    diag = getattr(error.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None) or str(error)
    for constraint, rule in CONSTRAINT_CODES.items():
        if constraint in name:
            return rule
    # SQLite names the columns, not the constraint.
    text = str(error)
    if "sources_activenode.node_id" in text:
        return CONSTRAINT_CODES["sources_activenode_one_send_source_per_node"]
    if "sources_sendoptions.api_key_hash" in text:
        return CONSTRAINT_CODES["sources_sendoptions_one_node_per_userdb"]
    if "foreign key" in text.lower():
        return (
            "nodes",
            Code.SOURCE_CHANGED,
            "A node was deleted while the source was written; read it and retry.",
        )
    return None
