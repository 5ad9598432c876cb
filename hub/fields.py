"""The Hub fields a field map can carry to and from Send (DESIGN.md §1)."""

from __future__ import annotations

import re

STRING, EMAIL, DATE, DATETIME, BOOLEAN, NUMBER, TAG_LIST = (
    "string",
    "email",
    "date",
    "datetime",
    "boolean",
    "number",
    "tags",
)

HEADER_FIELDS: dict[str, str] = {
    "id": STRING,
    "externalId": STRING,
    "nodeId": STRING,
    "enabled": BOOLEAN,
    "registeredAt": DATETIME,
    "updatedAt": DATETIME,
    "tags.auto": TAG_LIST,
    "tags.manual": TAG_LIST,
}

# Header fields the Hub owns: a value coming back from Send never changes them.
READ_ONLY_FIELDS = frozenset({"id", "nodeId", "registeredAt", "updatedAt"})

BASE_FIELDS: dict[str, str] = {
    "base.pictureUrl": STRING,
    "base.title": STRING,
    "base.prefix": STRING,
    "base.firstName": STRING,
    "base.lastName": STRING,
    "base.middleName": STRING,
    "base.gender": STRING,
    "base.dob": DATE,
    "base.locale": STRING,
    "base.timezone": STRING,
    "base.contacts.email": EMAIL,
    "base.contacts.fax": STRING,
    "base.contacts.mobilePhone": STRING,
    "base.contacts.phone": STRING,
    "base.address.street": STRING,
    "base.address.city": STRING,
    "base.address.country": STRING,
    "base.address.region": STRING,
    "base.address.province": STRING,
    "base.address.zip": STRING,
    "base.address.geo.lat": NUMBER,
    "base.address.geo.lon": NUMBER,
    "base.credential.username": STRING,
    "base.socialProfile.facebook": STRING,
    "base.socialProfile.google": STRING,
    "base.socialProfile.instagram": STRING,
    "base.socialProfile.linkedin": STRING,
    "base.socialProfile.qzone": STRING,
    "base.socialProfile.twitter": STRING,
}

MAPPABLE_FIELDS: dict[str, str] = {**HEADER_FIELDS, **BASE_FIELDS}

EXTENDED_PATH = re.compile(r"^extended(\.[A-Za-z_][A-Za-z0-9_]*)+$")

TAG_SEPARATOR = "|"
TAG_LIST_MAX_LENGTH = 255


def hub_field_type(path: str) -> str | None:
    """Return the type of a mappable Hub field, or None if it cannot travel."""
    if path in MAPPABLE_FIELDS:
        return MAPPABLE_FIELDS[path]
    if EXTENDED_PATH.match(path):
        return STRING
    return None


def matching_policy_paths() -> list[str]:
    """Return the paths an aggregate node may match profiles on."""
    return [path for path in BASE_FIELDS] + ["externalId"]
