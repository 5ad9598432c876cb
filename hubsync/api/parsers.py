"""JSON parsers that refuse bodies over DATA_UPLOAD_MAX_MEMORY_SIZE.

DRF reads the request stream itself, so Django's own body limit never
applies to API requests: the parsers read at most one byte past the limit
and answer 413 instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, parsers

from .errors import RequestTooLarge


def read_limited(stream: IO[bytes]) -> bytes:
    """Read a body, refusing one over the configured limit."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
    body = stream.read(limit + 1) if limit else stream.read()
    if limit and len(body) > limit:
        raise RequestTooLarge(
            f"The request body is larger than the limit of {limit} bytes."
        )
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def check_storable(value: Any) -> None:
    """Refuse strings the database cannot store: NUL and lone surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings cannot contain NUL characters")
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key)
            check_storable(item)
    elif isinstance(value, list):
        for item in value:
            check_storable(item)


class JSONBodyParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body = read_limited(stream)
        try:
            data = json.loads(
                body.decode("utf-8"),
                parse_constant=_reject_constant,
                parse_float=_finite,
            )
            check_storable(data)
        except (UnicodeError, ValueError, RecursionError) as error:
            raise exceptions.ParseError(
                f"The body is not valid JSON: {error}"
            ) from error
        return data


class MergePatchParser(JSONBodyParser):
    """RFC 7396 bodies, accepted wherever plain JSON is."""

    media_type = "application/merge-patch+json"
