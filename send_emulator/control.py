"""The JSON control API: prepare data, inject faults, read counters.

It acts as the owner of the data would in Send's own interface, so its
edits ignore locks and bump lastModified like any other write. Keys are
accepted here but never returned.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from . import errors, store, values

if TYPE_CHECKING:
    from .server import Emulator

Answer = tuple[int, Any]
_SUBSCRIBER = re.compile(r"/_control/userdbs/(\d+)/subscribers/(\d+)")
_USERDB_PART = re.compile(r"/_control/userdbs/(\d+)/(\w+)")
_NOT_FOUND = {errors.USERDB_NOT_FOUND, errors.SUBSCRIBER_NOT_FOUND}


class BadInput(ValueError):
    """A control request that cannot be carried out; answered with 400."""


def dispatch(emulator: Emulator, method: str, path: str, payload: Any) -> Answer:
    """Carry out one control request and return (HTTP status, JSON answer)."""
    try:
        return _dispatch(emulator, method, path.rstrip("/"), payload)
    except errors.ServiceFault as fault:
        status = 404 if fault.code in _NOT_FOUND else 400
        return status, {"error": fault.message, "code": fault.code}
    except ValueError as error:
        return 400, {"error": str(error)}


def _dispatch(emulator: Emulator, method: str, path: str, payload: Any) -> Answer:
    simple = {
        ("POST", "/_control/accounts"): _create_account,
        ("POST", "/_control/userdbs"): _create_userdb,
        ("GET", "/_control/userdbs"): _list_userdbs,
        ("GET", "/_control/faults"): _get_faults,
        ("PUT", "/_control/faults"): _set_faults,
        ("GET", "/_control/counters"): _counters,
        ("POST", "/_control/reset"): _reset,
        ("POST", "/_control/tokens/expire"): _expire_tokens,
    }
    handler = simple.get((method, path))
    if handler is not None:
        return handler(emulator, payload)
    match = _SUBSCRIBER.fullmatch(path)
    if match:
        info = emulator.store.userdb(int(match[1]))
        return _subscriber(emulator, method, info, int(match[2]), payload)
    match = _USERDB_PART.fullmatch(path)
    if match:
        info = emulator.store.userdb(int(match[1]))
        return _userdb_part(emulator, method, info, match[2], payload)
    return 404, {"error": f"no control endpoint {method} {path}"}


def _create_account(emulator: Emulator, payload: Any) -> Answer:
    api_key = _string(payload, "apiKey")
    emulator.store.create_account(api_key, _string(payload, "userKey"))
    return 201, {}


def _create_userdb(emulator: Emulator, payload: Any) -> Answer:
    fields = [_field(item) for item in _list(payload, "fields")]
    names = [name for name, _, _ in fields]
    clashes = sorted({name for name in names if names.count(name) > 1})
    clashes += [name for name in names if name in store.SYSTEM_FIELDS]
    if clashes:
        raise BadInput(f"field names used twice or reserved: {', '.join(clashes)}")
    try:
        userdb_id = emulator.store.create_userdb(
            _string(payload, "apiKey"),
            _string(payload, "name"),
            fields,
            description=str(payload.get("description") or ""),
        )
    except ValueError as error:
        raise BadInput(str(error)) from error
    systems = [
        _add_subscription(emulator, userdb_id, item)
        for item in _list(payload, "subscriptions")
    ]
    return 201, {"id": userdb_id, "subscriptions": systems}


def _list_userdbs(emulator: Emulator, payload: Any) -> Answer:
    return 200, [_userdb_json(emulator, info) for info in emulator.store.userdbs()]


def _get_faults(emulator: Emulator, payload: Any) -> Answer:
    return 200, emulator.faults.as_json()


def _set_faults(emulator: Emulator, payload: Any) -> Answer:
    if not isinstance(payload, dict):
        raise BadInput("expected a JSON object")
    emulator.faults = emulator.faults.updated(payload)
    if not emulator.faults.timeout_rate:
        emulator.release_hanging()
    return 200, emulator.faults.as_json()


def _counters(emulator: Emulator, payload: Any) -> Answer:
    return 200, emulator.counters.snapshot()


def _reset(emulator: Emulator, payload: Any) -> Answer:
    emulator.reset()
    return 200, {}


def _expire_tokens(emulator: Emulator, payload: Any) -> Answer:
    emulator.tokens.clear()
    return 200, {}


def _userdb_part(
    emulator: Emulator, method: str, info: store.UserDbInfo, part: str, payload: Any
) -> Answer:
    if (method, part) == ("GET", "subscribers"):
        _, records = emulator.store.find(info, [], page_size=10**9)
        return 200, [_record_json(record) for record in records]
    if (method, part) == ("POST", "subscribers"):
        attributes = _attributes(payload)
        (record,) = emulator.store.add(info, [attributes], as_owner=True)
        return 201, _record_json(record)
    if (method, part) == ("POST", "subscriptions"):
        return 201, _add_subscription(emulator, info.id, payload)
    if (method, part) == ("PUT", "flags"):
        emulator.store.set_userdb_flags(
            info.id,
            locked=_optional_flag(payload, "locked"),
            read_only=_optional_flag(payload, "readOnly"),
        )
        return 200, _userdb_json(emulator, emulator.store.userdb(info.id))
    if (method, part) == ("GET", "info"):
        return 200, _userdb_json(emulator, info)
    return 404, {"error": f"no control endpoint {method} {part}"}


def _subscriber(
    emulator: Emulator,
    method: str,
    info: store.UserDbInfo,
    identifier: int,
    payload: Any,
) -> Answer:
    if method == "GET":
        record = emulator.store.get(info, identifier)
        if record is None:
            return 404, {"error": f"subscriber {identifier} does not exist"}
        return 200, _record_json(record)
    if method == "PUT":
        attributes = _attributes(payload)
        record = emulator.store.update(info, identifier, attributes, as_owner=True)
        return 200, _record_json(record)
    if method == "DELETE":
        emulator.store.remove(info, identifier, as_owner=True)
        return 200, {}
    return 405, {"error": f"{method} is not allowed here"}


# Input checks and JSON shapes.


def _add_subscription(emulator: Emulator, userdb_id: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise BadInput("a subscription must be a JSON object")
    system = emulator.store.add_subscription(
        userdb_id,
        _string(item, "name"),
        _string(item, "registrationField"),
        item.get("webformCode") or None,
    )
    return {"id": system.id, "webformCode": system.webform_code}


def _field(item: Any) -> tuple[str, str, bool]:
    if not isinstance(item, dict):
        raise BadInput("a field must be a JSON object")
    field_type = _string(item, "type")
    if field_type not in values.FIELD_TYPES:
        raise BadInput(f"unknown field type {field_type}")
    return _string(item, "name"), field_type, bool(item.get("emailField"))


def _attributes(payload: Any) -> dict[str, str | None]:
    raw = payload.get("attributes") if isinstance(payload, dict) else None
    if not isinstance(raw, dict):
        raise BadInput("expected attributes as a JSON object")
    return {
        str(key): None if value is None else str(value) for key, value in raw.items()
    }


def _string(payload: Any, name: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{name} is required and must be a non-empty string")
    return value


def _list(payload: Any, name: str) -> list[Any]:
    value = payload.get(name, []) if isinstance(payload, dict) else None
    if not isinstance(value, list):
        raise BadInput(f"{name} must be a list")
    return value


def _optional_flag(payload: Any, name: str) -> bool | None:
    value = payload.get(name) if isinstance(payload, dict) else None
    if value is not None and not isinstance(value, bool):
        raise BadInput(f"{name} must be true or false")
    return value


def _record_json(record: store.Record) -> dict[str, Any]:
    return {"identifier": record.identifier, "attributes": record.attributes}


def _userdb_json(emulator: Emulator, info: store.UserDbInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "description": info.description,
        "locked": info.locked,
        "readOnly": info.read_only,
        "fields": [
            {"name": field.name, "type": field.type, "emailField": field.email_field}
            for field in info.fields
        ],
        "subscriptions": [
            {
                "id": system.id,
                "name": system.name,
                "registrationField": system.registration_field,
                "webformCode": system.webform_code,
            }
            for system in emulator.store.subscriptions(None, info.id)
        ],
        "subscriberCount": emulator.store.count(info),
    }
