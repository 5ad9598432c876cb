"""Validation of the customer document, called on every write."""

from __future__ import annotations

import datetime
import json
import re
import zoneinfo
from functools import cache
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

SECTION_LIMIT_BYTES = 64 * 1024
LOCALE_PATTERN = r"^[a-z]{2,3}(_[A-Z]{2})?$"

_email = EmailValidator()
_format_checker = jsonschema.FormatChecker(formats=())


@_format_checker.checks("email", raises=ValidationError)
def _is_email(value: object) -> bool:
    if isinstance(value, str):
        _email(value)
    return True


@_format_checker.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if isinstance(value, str):
        datetime.date.fromisoformat(value)
    return True


@_format_checker.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if isinstance(value, str):
        if "T" not in value:
            raise ValueError("a date-time needs a time")
        datetime.datetime.fromisoformat(value)
    return True


@_format_checker.checks("timezone", raises=KeyError)
def _is_timezone(value: object) -> bool:
    if isinstance(value, str) and value not in _timezones():
        raise KeyError(value)
    return True


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _text(fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"], "maxLength": 4096}
    if fmt:
        schema["format"] = fmt
    return schema


def _strict(
    properties: dict[str, Any], nullable: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "type": ["object", "null"] if nullable else "object",
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }


_loose_list = {"type": ["array", "null"], "items": {"type": "object"}}

SUBSCRIPTION_SCHEMA = _strict(
    {
        "id": {"type": "string", "minLength": 1, "maxLength": 255},
        "name": _text(),
        "type": _text(),
        "kind": {"enum": ["DIGITAL_MESSAGE", "SERVICE", "OTHER", None]},
        "subscribed": {"type": ["boolean", "null"]},
        "startDate": _text("date-time"),
        "endDate": _text("date-time"),
        "subscriberId": _text(),
        "registeredAt": _text("date-time"),
        "updatedAt": _text("date-time"),
        "preferences": {
            "type": ["array", "null"],
            "items": _strict({"key": _text(), "value": _text()}, nullable=False),
        },
    },
    nullable=False,
    required=["id"],
)

BASE_SCHEMA = _strict(
    {
        "pictureUrl": _text(),
        "title": _text(),
        "prefix": _text(),
        "firstName": _text(),
        "lastName": _text(),
        "middleName": _text(),
        "gender": _text(),
        "dob": _text("date"),
        "locale": {**_text(), "pattern": LOCALE_PATTERN},
        "timezone": _text("timezone"),
        "contacts": _strict(
            {
                "email": _text("email"),
                "fax": _text(),
                "mobilePhone": _text(),
                "phone": _text(),
                "otherContacts": _loose_list,
                "mobileDevices": _loose_list,
            }
        ),
        "address": _strict(
            {
                "street": _text(),
                "city": _text(),
                "country": _text(),
                "region": _text(),
                "province": _text(),
                "zip": _text(),
                "geo": _strict(
                    {
                        "lat": {"type": "number", "minimum": -90, "maximum": 90},
                        "lon": {"type": "number", "minimum": -180, "maximum": 180},
                    }
                ),
            }
        ),
        "credential": _strict({"username": _text(), "password": _text()}),
        "socialProfile": {
            "type": ["object", "null"],
            "additionalProperties": _text(),
        },
        "educations": _loose_list,
        "likes": _loose_list,
        "jobs": _loose_list,
        "subscriptions": {"type": ["array", "null"], "items": SUBSCRIPTION_SCHEMA},
    }
)

TAGS_SCHEMA = _strict(
    {
        "auto": {"type": "array", "items": {"type": "string", "maxLength": 255}},
        "manual": {"type": "array", "items": {"type": "string", "maxLength": 255}},
    }
)

_OBJECT = {"type": "object"}
_validators = {
    "base": jsonschema.Draft202012Validator(
        BASE_SCHEMA, format_checker=_format_checker
    ),
    "extended": jsonschema.Draft202012Validator(_OBJECT),
    "consents": jsonschema.Draft202012Validator(_OBJECT),
    "tags": jsonschema.Draft202012Validator(TAGS_SCHEMA),
}


def validate_section(name: str, value: Any) -> None:
    """Check one JSON section of a customer; raise ValidationError on the path."""
    validator = _validators[name]
    errors = sorted(validator.iter_errors(value), key=lambda error: list(error.path))
    if errors:
        raise ValidationError(
            {_path(name, errors[0]): _message(errors[0])}, code="invalid"
        )


def validate_size(name: str, value: Any) -> None:
    """Refuse a section over the 64 KB limit."""
    encoded = value if isinstance(value, str) else json.dumps(value)
    size = len(encoded.encode())
    if size > SECTION_LIMIT_BYTES:
        raise ValidationError(
            {
                name: ValidationError(
                    "%(section)s is %(size)s bytes; the limit is %(limit)s.",
                    code="too_large",
                    params={
                        "section": name,
                        "size": size,
                        "limit": SECTION_LIMIT_BYTES,
                    },
                )
            }
        )


def validate_subscription_ids_unique(base: dict[str, Any]) -> None:
    """Refuse two entries for one subscription system."""
    seen: set[str] = set()
    for entry in base.get("subscriptions") or []:
        if entry["id"] in seen:
            raise ValidationError(
                {
                    "base.subscriptions": ValidationError(
                        "Subscription %(id)s is listed twice.",
                        code="duplicate",
                        params={"id": entry["id"]},
                    )
                }
            )
        seen.add(entry["id"])


def validate_customer_document(document: dict[str, Any]) -> None:
    """Validate every section of a customer document; raise the first error."""
    for name in ("base", "extended", "consents", "tags"):
        validate_size(name, document.get(name) or {})
        validate_section(name, document.get(name) or {})
    if document.get("extra") is not None:
        validate_size("extra", document["extra"])
    validate_subscription_ids_unique(document.get("base") or {})


def _path(section: str, error: jsonschema.ValidationError) -> str:
    parts = [section, *(str(part) for part in error.path)]
    if error.validator == "additionalProperties":
        match = re.search(r"'([^']+)' was unexpected", error.message)
        if match:
            parts.append(match.group(1))
    if error.validator == "required":
        match = re.match(r"'([^']+)' is a required property", error.message)
        if match:
            parts.append(match.group(1))
    return ".".join(parts)


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return "This property is not part of the customer schema."
    if error.validator == "required":
        return "This property is required."
    if error.validator == "format":
        return f"{error.instance!r} is not a valid {error.validator_value}."
    if error.validator == "pattern":
        return f"{error.instance!r} does not match the pattern {error.validator_value}."
    return str(error.message)
