"""Field types of a userdb and the text form their values take on the wire.

Every attribute value travels as a string (or is absent / nil for null).
The store keeps values in a form SQLite compares correctly: flags as 0/1,
numbers as numbers, DATETIME and TIMESTAMP as microseconds since the Unix
epoch (UTC), DATE and TIME as fixed-width text, which sorts as it should.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from decimal import Decimal

FIELD_TYPES = (
    "FLAG",
    "DATE",
    "DATETIME",
    "DOUBLE",
    "INTEGER",
    "POSITIVE_INTEGER",
    "LONG",
    "CHAR",
    "STRING",
    "TEXT",
    "TIME",
    "TIMESTAMP",
)

# The SQLite column type of each field type; TEXT columns get no index.
COLUMN_TYPES = {
    "FLAG": "INTEGER",
    "DATE": "TEXT",
    "DATETIME": "INTEGER",
    "DOUBLE": "REAL",
    "INTEGER": "INTEGER",
    "POSITIVE_INTEGER": "INTEGER",
    "LONG": "INTEGER",
    "CHAR": "TEXT",
    "STRING": "TEXT",
    "TEXT": "TEXT",
    "TIME": "TEXT",
    "TIMESTAMP": "INTEGER",
}

MAX_LENGTHS = {"CHAR": 255, "STRING": 255, "TEXT": 65535}

_INT_RANGES = {
    "INTEGER": (-(2**31), 2**31 - 1),
    "POSITIVE_INTEGER": (1, 2**31 - 1),
    "LONG": (-(2**63), 2**63 - 1),
}
_INT_TEXT = re.compile(r"[+-]?\d+")
_DOUBLE_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_TEXT = re.compile(r"\d{2}:\d{2}:\d{2}")
_STAMP_TEXT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
    r"(Z|[+-]\d{2}:\d{2})"
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Stored = int | float | str | None


class BadValue(ValueError):
    """A value that does not fit its field type; the message says why."""


def parse(field_type: str, text: str | None) -> Stored:
    """Turn the wire text of a value into its stored form, or raise BadValue."""
    if text is None:
        return None
    parser = _PARSERS[field_type]
    return parser(field_type, text)


def render(field_type: str, stored: Stored) -> str | None:
    """Turn a stored value back into its wire text."""
    if stored is None:
        return None
    if field_type == "FLAG":
        return "true" if stored else "false"
    if field_type in ("DATETIME", "TIMESTAMP"):
        return format_stamp(int(stored))
    if field_type == "DOUBLE":
        return _render_double(float(stored))
    return str(stored)


def format_stamp(micros: int) -> str:
    """Format microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""
    moment = _EPOCH + dt.timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stamp_now() -> int:
    """Return the current time in microseconds since the epoch."""
    delta = dt.datetime.now(dt.UTC) - _EPOCH
    return delta // dt.timedelta(microseconds=1)


def _render_double(number: float) -> str:
    # Plain decimal text: repr() would switch to exponent form for large or
    # tiny numbers, which not every client parses.
    text = format(Decimal(repr(number)), "f")
    return text if "." in text else text + ".0"


def _parse_flag(field_type: str, text: str) -> int:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise BadValue("expected true or false")
    return 1 if lowered == "true" else 0


def _parse_int(field_type: str, text: str) -> int:
    if not _INT_TEXT.fullmatch(text.strip()):
        raise BadValue("expected a whole number")
    number = int(text)
    low, high = _INT_RANGES[field_type]
    if not low <= number <= high:
        raise BadValue(f"expected a number from {low} to {high}")
    return number


def _parse_double(field_type: str, text: str) -> float:
    if not _DOUBLE_TEXT.fullmatch(text.strip()):
        raise BadValue("expected a decimal number")
    number = float(text)
    if not math.isfinite(number):
        raise BadValue("expected a finite number")
    return number


def _parse_text(field_type: str, text: str) -> str:
    limit = MAX_LENGTHS[field_type]
    if len(text) > limit:
        raise BadValue(f"longer than {limit} characters")
    return text


def _parse_date(field_type: str, text: str) -> str:
    if not _DATE_TEXT.fullmatch(text):
        raise BadValue("expected a date as YYYY-MM-DD")
    try:
        dt.date.fromisoformat(text)
    except ValueError as error:
        raise BadValue("not a calendar date") from error
    return text


def _parse_time(field_type: str, text: str) -> str:
    if not _TIME_TEXT.fullmatch(text):
        raise BadValue("expected a time as HH:MM:SS")
    try:
        dt.time.fromisoformat(text)
    except ValueError as error:
        raise BadValue("not a time of day") from error
    return text


def _parse_stamp(field_type: str, text: str) -> int:
    match = _STAMP_TEXT.fullmatch(text)
    if match is None:
        raise BadValue("expected a UTC time as YYYY-MM-DDTHH:MM:SS[.ffffff]Z")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=_zone(zone),
        )
    except ValueError as error:
        raise BadValue("not a calendar time") from error
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _zone(text: str) -> dt.tzinfo:
    if text == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    offset = dt.timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))
    return dt.timezone(sign * offset)


_PARSERS: dict[str, Callable[[str, str], Stored]] = {
    "FLAG": _parse_flag,
    "DATE": _parse_date,
    "DATETIME": _parse_stamp,
    "DOUBLE": _parse_double,
    "INTEGER": _parse_int,
    "POSITIVE_INTEGER": _parse_int,
    "LONG": _parse_int,
    "CHAR": _parse_text,
    "STRING": _parse_text,
    "TEXT": _parse_text,
    "TIME": _parse_time,
    "TIMESTAMP": _parse_stamp,
}
