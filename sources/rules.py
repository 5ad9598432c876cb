"""The rules of a Send source: one source, one node, one userdb.

Creation rules and the modification table of DESIGN.md §2 live here and
nowhere else; the services call them on every write path. Each unmet rule
is a `ValidationError` with a stable code, keyed by the field it concerns,
and all of them are reported at once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

from django.core.exceptions import ValidationError

from hub.models import Node

from .models import ActiveNode, Permission, Provider, SendOptions, Source


class Code(enum.StrEnum):
    """Stable codes of the source rules (HTTP 409 in the API)."""

    NODE_HAS_SEND_SOURCE = "NODE_HAS_SEND_SOURCE"
    USERDB_ALREADY_SYNCED = "USERDB_ALREADY_SYNCED"
    USERDB_NOT_EMPTY = "USERDB_NOT_EMPTY"
    SINGLE_NODE_REQUIRED = "SINGLE_NODE_REQUIRED"
    AGGREGATE_NODE_READ_ONLY = "AGGREGATE_NODE_READ_ONLY"
    AGGREGATE_NODE_NO_SUBSCRIPTIONS = "AGGREGATE_NODE_NO_SUBSCRIPTIONS"
    MATCHING_FIELD_REQUIRED = "MATCHING_FIELD_REQUIRED"
    SOURCE_NOT_DISABLED = "SOURCE_NOT_DISABLED"
    NODE_NOT_EMPTY = "NODE_NOT_EMPTY"
    NEW_NODE_NOT_EMPTY = "NEW_NODE_NOT_EMPTY"
    SOURCE_CHANGED = "SOURCE_CHANGED"


RULE_CODES = frozenset(Code)


class Change(enum.StrEnum):
    """The kinds of modification the table knows."""

    NODE = "node"
    API_KEY = "apiKey"
    USERDB = "userdbID"
    SUBSCRIPTIONS = "subscription rows"
    FIELD_MAP = "field map"
    PERMISSION = "permission"


class Requirement(enum.StrEnum):
    """What must hold before a change; the value is the code when it does not."""

    DISABLED = Code.SOURCE_NOT_DISABLED
    EXISTING_NODE_EMPTY = Code.NODE_NOT_EMPTY
    NEW_NODE_EMPTY = Code.NEW_NODE_NOT_EMPTY
    USERDB_EMPTY = Code.USERDB_NOT_EMPTY


_D, _E, _N, _U = (
    Requirement.DISABLED,
    Requirement.EXISTING_NODE_EMPTY,
    Requirement.NEW_NODE_EMPTY,
    Requirement.USERDB_EMPTY,
)

# The modification table of DESIGN.md §2, one row a line. The apiKey row
# also covers the userKey. The permission row is our reading: the
# published table is silent on it.
MODIFICATION_TABLE: dict[frozenset[Change], frozenset[Requirement]] = {
    frozenset({Change.NODE}): frozenset({_D, _N}),
    frozenset({Change.API_KEY}): frozenset({_D, _E}),
    frozenset({Change.NODE, Change.API_KEY}): frozenset({_D, _N}),
    frozenset({Change.USERDB}): frozenset({_D, _E, _U}),
    frozenset({Change.NODE, Change.USERDB}): frozenset({_D, _N, _U}),
    frozenset({Change.SUBSCRIPTIONS}): frozenset({_D}),
    frozenset({Change.FIELD_MAP}): frozenset({_D}),
    frozenset({Change.PERMISSION}): frozenset({_D}),
}

_MESSAGES = {
    Requirement.DISABLED: "Disable the source before changing %(changes)s.",
    Requirement.EXISTING_NODE_EMPTY: (
        "Changing %(changes)s needs the source's node to be empty."
    ),
    Requirement.NEW_NODE_EMPTY: "Changing %(changes)s needs the new node to be empty.",
    Requirement.USERDB_EMPTY: "Changing %(changes)s needs the new userdb to be empty.",
}

_FIELDS = {
    Requirement.DISABLED: "enabled",
    Requirement.EXISTING_NODE_EMPTY: "nodes",
    Requirement.NEW_NODE_EMPTY: "nodes",
    Requirement.USERDB_EMPTY: "properties.userDbId",
}


def requirements_for(changes: Iterable[Change]) -> frozenset[Requirement]:
    """Return what a set of changes needs, by the modification table.

    A combination the table lists has its own row. Otherwise the rows of
    every listed part are joined, and when the node changes "new node
    empty" takes the place of "existing node empty".
    """
    wanted = frozenset(changes)
    if wanted in MODIFICATION_TABLE:
        return MODIFICATION_TABLE[wanted]
    needed: set[Requirement] = set()
    for row, requirements in MODIFICATION_TABLE.items():
        if row <= wanted:
            needed |= requirements
    if Change.NODE in wanted:
        needed.discard(Requirement.EXISTING_NODE_EMPTY)
    return frozenset(needed)


def unmet_requirements(
    source: Source,
    changes: Iterable[Change],
    new_node: Node | None,
    userdb_count: Callable[[], int],
) -> list[tuple[str, ValidationError]]:
    """Return every requirement a proposed modification of `source` misses.

    `new_node` is the node the source would use after the change, and
    `userdb_count` counts the subscribers of the userdb it would use; it
    is called only when the table asks for an empty userdb.
    """
    changes = frozenset(changes)
    label = ", ".join(sorted(changes))
    checks: dict[Requirement, Callable[[], bool]] = {
        Requirement.DISABLED: lambda: not source.enabled,
        Requirement.EXISTING_NODE_EMPTY: lambda: _current_node(source).is_empty(),
        Requirement.NEW_NODE_EMPTY: lambda: new_node is None or new_node.is_empty(),
        Requirement.USERDB_EMPTY: lambda: userdb_count() == 0,
    }
    unmet = []
    for requirement in sorted(requirements_for(changes)):
        if not checks[requirement]():
            error = ValidationError(
                _MESSAGES[requirement],
                code=requirement.value,
                params={"changes": label},
            )
            unmet.append((_FIELDS[requirement], error))
    return unmet


def creation_violations(
    *,
    workspace_id: object,
    source: Source | None,
    grants: list[tuple[Node, str]],
    api_key_hashes: list[str],
    userdb_id: int,
    has_matching_field: bool,
    has_subscription_rows: bool,
) -> list[tuple[str, ValidationError]]:
    """Return the creation rules a Send source configuration breaks.

    They hold for every Send source, so updates check them too, with
    `source` the source being changed (it does not conflict with itself).
    """
    found: list[tuple[str, ValidationError]] = []
    if len(grants) != 1:
        found.append(
            (
                "nodes",
                ValidationError(
                    "A Send source has exactly one active node; %(count)s given.",
                    code=Code.SINGLE_NODE_REQUIRED,
                    params={"count": len(grants)},
                ),
            )
        )
    for node, permission in grants:
        found += _node_violations(source, node, permission, has_subscription_rows)

    others = SendOptions.objects.filter(
        api_key_hash__in=api_key_hashes, userdb_id=userdb_id
    )
    if source is not None:
        others = others.exclude(source=source)
    if others.exists():
        found.append(
            (
                "properties.userDbId",
                ValidationError(
                    "Userdb %(userdb)s of this Send account is already synchronized "
                    "with another node.",
                    code=Code.USERDB_ALREADY_SYNCED,
                    params={"userdb": userdb_id},
                ),
            )
        )
    if not has_matching_field:
        found.append(
            (
                "properties.fields",
                ValidationError(
                    "Choose one or more matching fields.",
                    code=Code.MATCHING_FIELD_REQUIRED,
                ),
            )
        )
    return found


def _node_violations(
    source: Source | None, node: Node, permission: str, has_subscription_rows: bool
) -> list[tuple[str, ValidationError]]:
    found = []
    taken = ActiveNode.objects.filter(node=node, provider=Provider.CONTACTSEND)
    if source is not None:
        taken = taken.exclude(source=source)
    if taken.exists():
        found.append(
            (
                "nodes",
                ValidationError(
                    "Node %(node)s already has a Send source.",
                    code=Code.NODE_HAS_SEND_SOURCE,
                    params={"node": node.id},
                ),
            )
        )
    read_only = aggregate_permission_violation(node, permission)
    if read_only is not None:
        found.append(("nodes", read_only))
    if node.is_aggregate and has_subscription_rows:
        found.append(
            (
                "properties.subscriptions",
                ValidationError(
                    "Subscriptions cannot be synchronized on an aggregate node.",
                    code=Code.AGGREGATE_NODE_NO_SUBSCRIPTIONS,
                ),
            )
        )
    return found


def aggregate_permission_violation(
    node: Node, permission: str
) -> ValidationError | None:
    """Refuse write permission on an aggregate node, for any provider."""
    if node.is_aggregate and permission != Permission.READ:
        return ValidationError(
            "An aggregate node can only be read (permission R).",
            code=Code.AGGREGATE_NODE_READ_ONLY,
        )
    return None


def _current_node(source: Source) -> Node:
    return source.nodes.select_related("node").get().node


# Maps each database constraint behind a rule to the rule's error, so that a
# lost race reads like the check that would have caught it.
CONSTRAINT_CODES: dict[str, tuple[str, Code, str]] = {
    "sources_activenode_one_send_source_per_node": (
        "nodes",
        Code.NODE_HAS_SEND_SOURCE,
        "The node already has a Send source.",
    ),
    "sources_sendoptions_one_node_per_userdb": (
        "properties.userDbId",
        Code.USERDB_ALREADY_SYNCED,
        "This userdb is already synchronized with another node.",
    ),
    "sources_activenode_one_node_per_send_source": (
        "nodes",
        Code.SINGLE_NODE_REQUIRED,
        "A Send source has exactly one active node.",
    ),
}
