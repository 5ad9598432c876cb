"""Mapped values between a Hub document and a Send record's attributes.

Send carries every value as text; its form depends on the userdb field's
type. Hub values are typed by `hub.fields`. A value that cannot travel
raises `ConversionError`, which the sync records against that one record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from hub import fields
from hub.documents import get_path, set_path

_TEXT_TYPES = {"", "CHAR", "STRING", "TEXT"}
_INTEGER_TYPES = {"INTEGER", "LONG", "POSITIVE_INTEGER"}
_STAMP_TYPES = {"DATETIME", "TIMESTAMP"}
_STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class ConversionError(ValueError):
    """A value that does not fit the other side; the message says which and why."""

    code = "SYNC_CONVERSION_FAILED"


class Mapping(Protocol):
    """What conversion needs of a field map row (`FieldMapping` fits)."""

    hub_field: str
    send_field: str
    send_type: str
    matching: bool


# Hub to Send.


def to_send(value: Any, hub_type: str, send_type: str) -> str | None:
    """Return the Send text of one Hub value, or raise ConversionError."""
    if value is None or value == "" or value == []:
        return None
    if hub_type == fields.TAG_LIST:
        return _tags_to_send(value, send_type)
    if send_type == "FLAG":
        return "true" if _as_bool(value) else "false"
    if send_type in _INTEGER_TYPES:
        return _integer_text(value, send_type)
    if send_type == "DOUBLE":
        return _double_text(value)
    if send_type == "DATE":
        return _as_datetime(value).date().isoformat()
    if send_type in _STAMP_TYPES:
        return _as_datetime(value).astimezone(dt.UTC).strftime(_STAMP_FORMAT)
    if send_type == "TIME":
        return _as_datetime(value).time().strftime("%H:%M:%S")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise ConversionError("an object or list cannot travel as text")
    return str(value).strip() if hub_type == fields.EMAIL else str(value)


def hub_to_send(
    document: dict[str, Any], mappings: Iterable[Mapping]
) -> dict[str, str | None]:
    """Return the Send attributes of the mapped fields of a Hub document.

    Raises ConversionError naming the first field that cannot be converted.
    """
    result: dict[str, str | None] = {}
    for row in mappings:
        hub_type = fields.hub_field_type(row.hub_field) or fields.STRING
        try:
            result[row.send_field] = to_send(
                get_path(document, row.hub_field), hub_type, row.send_type
            )
        except (ConversionError, ValueError, TypeError) as error:
            raise ConversionError(
                f"{row.hub_field} cannot be written to {row.send_field} "
                f"({row.send_type or 'STRING'}): {error}"
            ) from error
    return result


def _tags_to_send(value: Any, send_type: str) -> str:
    if send_type not in _TEXT_TYPES:
        raise ConversionError("a tag list needs a text field")
    if not isinstance(value, list):
        raise ConversionError("a tag list must be a list")
    text = fields.TAG_SEPARATOR.join(str(tag) for tag in value)
    if len(text) > fields.TAG_LIST_MAX_LENGTH:
        raise ConversionError(
            f"the tags make {len(text)} characters, "
            f"more than {fields.TAG_LIST_MAX_LENGTH}"
        )
    return text


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ConversionError(f"{value!r} is not true or false")


def _integer_text(value: Any, send_type: str) -> str:
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    else:
        parsed = float(str(value).strip())
        if not parsed.is_integer():
            raise ConversionError(f"{value!r} is not a whole number")
        number = int(parsed)
    if send_type == "POSITIVE_INTEGER" and number < 0:
        raise ConversionError(f"{value!r} is negative")
    return str(number)


def _double_text(value: Any) -> str:
    if isinstance(value, bool):
        raise ConversionError("true or false is not a number")
    number = float(str(value).strip())
    if not math.isfinite(number):
        raise ConversionError(f"{value!r} is not a finite number")
    return repr(number)


def _as_datetime(value: Any) -> dt.datetime:
    """Read a Hub date or date-time text (or object); naive means UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError as error:
            raise ConversionError(f"{value!r} is not a date") from error
    else:
        raise ConversionError(f"{value!r} is not a date")
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# Send to Hub.


def to_hub(text: str | None, hub_type: str, send_type: str) -> Any:
    """Return the Hub value of one Send text, or raise ConversionError."""
    if text is None or text == "":
        return [] if hub_type == fields.TAG_LIST else None
    if hub_type == fields.TAG_LIST:
        return [tag for tag in text.split(fields.TAG_SEPARATOR) if tag]
    if hub_type == fields.BOOLEAN:
        return _as_bool(text)
    if hub_type == fields.NUMBER:
        return float(text)
    if hub_type == fields.DATE:
        return _as_datetime(text).date().isoformat()
    if hub_type == fields.DATETIME:
        moment = _as_datetime(text).astimezone(dt.UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if send_type == "FLAG":
        return "true" if _as_bool(text) else "false"
    return text


def send_to_hub_patch(
    attributes: dict[str, str | None], mappings: Iterable[Mapping]
) -> dict[str, Any]:
    """Return a merge patch carrying the given Send attributes onto a Hub document.

    Fields the Hub owns (`READ_ONLY_FIELDS`) are left out; an empty value
    removes the Hub property.
    """
    patch: dict[str, Any] = {}
    for row in mappings:
        if row.send_field not in attributes or row.hub_field in fields.READ_ONLY_FIELDS:
            continue
        hub_type = fields.hub_field_type(row.hub_field) or fields.STRING
        try:
            value = to_hub(attributes[row.send_field], hub_type, row.send_type)
        except (ConversionError, ValueError) as error:
            raise ConversionError(
                f"{row.send_field} cannot be read into {row.hub_field}: {error}"
            ) from error
        set_path(patch, row.hub_field, value)
    return patch


# Comparison.


def values_hash(values: dict[str, str | None]) -> str:
    """Return a stable hash of a set of mapped values."""
    text = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()


def match_key(text: str | None, hub_field: str) -> str:
    """Return the form in which two matching values are compared.

    Emails compare trimmed and without regard to case; other values as
    their trimmed text.
    """
    value = (text or "").strip()
    if fields.hub_field_type(hub_field) == fields.EMAIL:
        return value.casefold()
    return value
