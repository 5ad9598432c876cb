"""Reads of the Hub: customers of a node, and the merged view of an aggregate."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Collection, Iterator
from typing import Any

import orjson
from django.db import connection
from django.db.models import QuerySet

from hubsync.db import array_literal, fast_path

from .documents import get_path
from .models import Customer, Node

PROFILE_NAMESPACE = uuid.UUID("6f1c1f7e-8a53-4f0e-9a43-2b1f2a5b7c11")


def node_customers(node: Node) -> QuerySet[Customer]:
    """Return the customers stored in a node (an aggregate's entry nodes)."""
    return Customer.objects.filter(node_id__in=node.storage_node_ids())


def customer_documents(
    node_id: uuid.UUID,
    ids: Collection[uuid.UUID],
    sections: Collection[str] | None = None,
) -> dict[uuid.UUID, dict[str, Any]]:
    """Return the documents of the given customers of one node, by id.

    Ids that are not customers of the node are absent from the answer.
    With `sections` (top-level keys of the document), the documents may
    hold only those: a reader that needs a few fields reads no more.
    """
    if not ids:
        return {}
    if not fast_path(connection):
        customers = Customer.objects.filter(node_id=node_id, id__in=ids)
        return {customer.id: customer.as_document() for customer in customers}
    where = "id = ANY(%s::uuid[])"
    return _documents(where, [array_literal(ids)], node_id, sections)


def customer_documents_after(
    node_id: uuid.UUID,
    after: uuid.UUID | None,
    upto: uuid.UUID | None,
    limit: int,
    sections: Collection[str] | None = None,
) -> dict[uuid.UUID, dict[str, Any]]:
    """Return the first `limit` documents of a node's customers by id, of the
    ids above `after` up to `upto` (None: no bound), in id order; `sections`
    as for `customer_documents`."""
    if not fast_path(connection):
        customers = Customer.objects.filter(node_id=node_id).order_by("id")
        if after is not None:
            customers = customers.filter(id__gt=after)
        if upto is not None:
            customers = customers.filter(id__lte=upto)
        return {c.id: c.as_document() for c in customers[:limit]}
    where = f"id > %s AND id <= %s ORDER BY id LIMIT {int(limit)}"
    low, high = after or uuid.UUID(int=0), upto or uuid.UUID(int=2**128 - 1)
    return _documents(where, [low, high], node_id, sections)


# Each section of a customer's document as PostgreSQL reads it: the shape
# of `customer_document`, timestamps written as `isoformat` writes them.
# The JSON sections travel as text, the others as their values.
_STAMP = (
    "to_char({0} AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', {0}) = {0}"
    """ THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)"""
)
_SECTIONS = {
    "id": "id::text",
    "nodeId": "node_id::text",
    "externalId": "external_id",
    "enabled": "enabled",
    "registeredAt": _STAMP.format("registered_at"),
    "updatedAt": _STAMP.format("updated_at"),
    "extra": "extra",
}
_JSON_SECTIONS = {
    "sourceInfo": "jsonb_build_object('registeredBy', registered_by,"
    " 'updatedBy', updated_by)::text",
    "base": "base::text",
    "extended": "extended::text",
    "consents": "consents::text",
    "tags": "jsonb_build_object('auto', coalesce(tags->'auto', '[]'::jsonb),"
    " 'manual', coalesce(tags->'manual', '[]'::jsonb))::text",
}


def _documents(
    where: str,
    params: list[Any],
    node_id: uuid.UUID,
    sections: Collection[str] | None,
) -> dict[uuid.UUID, dict[str, Any]]:
    """Read customer documents on PostgreSQL, a column per section.

    Building them in Python (model objects, four JSON columns apiece, the
    timestamps) took most of the time of a sync batch's read; building
    each as one JSON object there cost PostgreSQL twice what sending the
    sections apart does.
    """
    plain = [key for key in _SECTIONS if sections is None or key in sections]
    parsed = [key for key in _JSON_SECTIONS if sections is None or key in sections]
    columns = [_SECTIONS[key] for key in plain] + [_JSON_SECTIONS[k] for k in parsed]
    # Named apart, so that `id` in the condition is the column.
    selected = ", ".join(f"{column} AS s{n}" for n, column in enumerate(columns))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {selected}"  # noqa: S608 - fixed text
            f" FROM {Customer._meta.db_table} WHERE node_id = %s AND {where}",
            [node_id, *params],
        )
        rows = cursor.fetchall()
    loads = orjson.loads
    split = len(plain) + 1
    keys = plain + parsed
    return {
        row[0]: dict(zip(keys, (*row[1:split], *map(loads, row[split:])), strict=True))
        for row in rows
    }


def profile_key(node: Node, document: dict[str, Any]) -> tuple[str, ...] | None:
    """Return the matching-policy key of a document, or None if a value is absent."""
    values = []
    for path in node.matching_properties:
        value = get_path(document, path)
        if value is None or value == "":
            return None
        text = str(value).strip()
        values.append(text if node.matching_case_sensitive else text.casefold())
    return tuple(values)


def profile_id(node: Node, key: tuple[str, ...]) -> uuid.UUID:
    """Return the stable id of the profile with `key` in an aggregate node."""
    return uuid.uuid5(PROFILE_NAMESPACE, f"{node.id}\x1f" + "\x1f".join(key))


def aggregate_profiles(node: Node) -> Iterator[dict[str, Any]]:
    """Yield one merged profile per matching-policy key of an aggregate node.

    1. Customers of the entry nodes are read oldest update first.
    2. Customers that share a key merge: each newer customer's values
       overwrite older ones, so every value comes from the most recently
       updated customer that has it.
    3. Subscriptions are a snapshot per subscription id: the entry with the
       latest updatedAt wins.
    A customer with no value for a policy property stays a profile of its
    own. `memberIds` lists the customers merged into each profile.
    """
    profiles: dict[Any, dict[str, Any]] = {}
    customers = node_customers(node).order_by("updated_at", "id")
    for customer in customers.iterator(chunk_size=2000):
        document = customer.as_document()
        key = profile_key(node, document)
        slot: Any = key if key is not None else ("customer", customer.id)
        merged = profiles.get(slot)
        if merged is None:
            profiles[slot] = _new_profile(node, key, customer, document)
        else:
            _merge_into(merged, document, customer)
    yield from profiles.values()


def _new_profile(
    node: Node,
    key: tuple[str, ...] | None,
    customer: Customer,
    document: dict[str, Any],
) -> dict[str, Any]:
    profile = copy.deepcopy(document)
    profile["id"] = str(profile_id(node, key)) if key else str(customer.id)
    profile["nodeId"] = str(node.id)
    profile["memberIds"] = [str(customer.id)]
    return profile


def _merge_into(
    profile: dict[str, Any], document: dict[str, Any], customer: Customer
) -> None:
    old_subscriptions = profile["base"].get("subscriptions") or []
    for section in ("base", "extended", "consents"):
        profile[section] = _overlay(profile[section], document[section])
    for header in ("externalId", "updatedAt", "enabled", "extra"):
        if document[header] is not None:
            profile[header] = document[header]
    profile["registeredAt"] = min(profile["registeredAt"], document["registeredAt"])
    profile["tags"] = {
        kind: sorted(set(profile["tags"][kind]) | set(document["tags"][kind]))
        for kind in ("auto", "manual")
    }
    profile["base"]["subscriptions"] = _latest_subscriptions(
        old_subscriptions, document["base"].get("subscriptions") or []
    )
    profile["memberIds"].append(str(customer.id))


def _overlay(older: Any, newer: Any) -> Any:
    if isinstance(older, dict) and isinstance(newer, dict):
        result = dict(older)
        for key, value in newer.items():
            if value is not None:
                result[key] = _overlay(older.get(key), value)
        return result
    return copy.deepcopy(newer)


def _latest_subscriptions(
    older: list[dict[str, Any]], newer: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for entry in [*older, *newer]:
        held = by_id.get(entry["id"])
        if held is None or (entry.get("updatedAt") or "") >= (
            held.get("updatedAt") or ""
        ):
            by_id[entry["id"]] = entry
    return list(by_id.values())
