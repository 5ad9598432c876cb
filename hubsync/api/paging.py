"""Contacthub paging: `page` from 0, `size` up to MAX_PAGE_SIZE."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from .errors import ApiError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

PAGE_PARAMETERS = [
    OpenApiParameter(
        "page",
        OpenApiTypes.INT,
        description="Page number, from 0.",
        default=0,
    ),
    OpenApiParameter(
        "size",
        OpenApiTypes.INT,
        description=f"Page size, 1 to {MAX_PAGE_SIZE}; a larger size is refused.",
        default=DEFAULT_PAGE_SIZE,
    ),
]


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise ApiError(400, f"{name} must be an integer.", "invalid", name) from error
    if not low <= value <= high:
        raise ApiError(
            400, f"{name} must be between {low} and {high}.", "out_of_range", name
        )
    return value


def page_params(request: Request) -> tuple[int, int]:
    """Return (page, size) from the query string, refusing bad values."""
    page = _int_param(request, "page", 0, 0, 10_000_000)
    size = _int_param(request, "size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return page, size


def paged(
    request: Request,
    items: QuerySet[Any] | Sequence[Any],
    render: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """Return one page of `items` in the Contacthub list shape."""
    page, size = page_params(request)
    total = items.count() if isinstance(items, QuerySet) else len(items)
    chunk = items[page * size : (page + 1) * size]
    return page_body([render(item) for item in chunk], total, page, size)


def page_body(elements: list[Any], total: int, page: int, size: int) -> dict[str, Any]:
    """Return the Contacthub list shape around one page of elements."""
    return {
        "elements": elements,
        "page": {
            "size": size,
            "totalElements": total,
            "totalPages": math.ceil(total / size),
            "number": page,
        },
    }
