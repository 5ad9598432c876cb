"""The one error shape of the API, and the exception handler that makes it.

Every error is `{message, errors: [{field, code, message}], data, logref}`.
Field names are the dotted paths the services use as ValidationError keys
(`properties.fields[0].sendField`); `logref` is the request id, also logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig, ValidationError
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from hub.services import CustomerExists
from sources.rules import RULE_CODES
from sources.selectors import SendUnavailable

logger = logging.getLogger(__name__)

# Codes that report a conflict with the stored state (HTTP 409) rather than
# a malformed request (HTTP 400).
CONFLICT_CODES = frozenset(
    {
        *RULE_CODES,
        "CUSTOMER_ALREADY_EXISTS",
        "SUBSCRIPTION_ALREADY_EXISTS",
        "SUBSCRIPTION_SYSTEM_EXISTS",
        "SUBSCRIPTION_SYSTEM_IN_USE",
        "NODE_NOT_EMPTY",
        "NODE_HAS_SOURCE",
        "NODE_IN_AGGREGATE",
        "NODE_READ_ONLY",
        "unique",
        "unique_together",
    }
)
TOO_LARGE = "too_large"

ErrorItem = dict[str, str | None]


class ApiError(exceptions.APIException):
    """An error with a status, a code and optional field and data."""

    def __init__(
        self,
        status_code: int,
        message: str,
        code: str,
        field: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code)
        self.status_code = status_code
        self.code = code
        self.field = field
        self.data = data


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = TOO_LARGE


def request_id(request: Any) -> str:
    """Return the id of a request, making one on first use."""
    existing = getattr(request, "logref", None)
    if existing:
        return str(existing)
    logref = uuid.uuid4().hex
    target = getattr(request, "_request", request)
    target.logref = logref
    return logref


def error_body(
    message: str,
    errors: list[ErrorItem],
    logref: str,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"message": message, "errors": errors, "data": data, "logref": logref}


def django_error_items(error: ValidationError) -> list[ErrorItem]:
    """Flatten a Django ValidationError into error items, keeping every one."""
    if hasattr(error, "error_dict"):
        items: list[ErrorItem] = []
        for field, errors in error.error_dict.items():
            name = None if field == NON_FIELD_ERRORS else field
            items += [_item(name, each) for each in errors]
        return items
    return [_item(None, each) for each in error.error_list]


def _item(field: str | None, error: ValidationError) -> ErrorItem:
    # Interpolate before converting: a lazy plural message (max_length and
    # friends) picks its form from the params and is empty without them.
    message = error.message % error.params if error.params else error.message
    return {
        "field": field,
        "code": str(error.code or "invalid"),
        "message": str(message),
    }


def drf_error_items(detail: Any, prefix: str = "") -> Iterator[ErrorItem]:
    """Flatten DRF error details into items with dotted, indexed paths."""
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if key in (NON_FIELD_ERRORS, "non_field_errors"):
                yield from drf_error_items(value, prefix)
            elif isinstance(key, int):
                # ListField reports its items' errors by index.
                yield from drf_error_items(value, f"{prefix}[{key}]")
            else:
                yield from drf_error_items(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(detail, list):
        nested = any(isinstance(each, Mapping | list) for each in detail)
        for index, value in enumerate(detail):
            where = f"{prefix}[{index}]" if nested else prefix
            if isinstance(value, Mapping | list):
                yield from drf_error_items(value, where)
            elif value is not None:
                yield from drf_error_items(value, prefix)
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield {"field": prefix or None, "code": str(code), "message": str(detail)}


def validation_status(items: list[ErrorItem]) -> int:
    """Choose the status of a set of validation errors.

    An oversized section is 413; a malformed request is 400, even when it
    also breaks a rule, because the client must fix it first; errors that
    are all conflicts with the stored state are 409.
    """
    codes = {item["code"] for item in items}
    if TOO_LARGE in codes:
        return status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    if codes and codes <= CONFLICT_CODES:
        return status.HTTP_409_CONFLICT
    return status.HTTP_400_BAD_REQUEST


_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.ParseError: "parse_error",
    exceptions.Throttled: "throttled",
}

_MESSAGES = {
    400: "The request is not valid.",
    409: "The request conflicts with the stored state.",
    413: "The request is too large.",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Render any exception raised in an API view as the error shape."""
    request = context.get("request")
    logref = request_id(request)
    status_code, message, items, data, headers = _describe(exc)
    if status_code >= 500:
        logger.error(
            "API request failed. logref=%s path=%s",
            logref,
            getattr(request, "path", "-"),
            exc_info=exc,
        )
    else:
        logger.info(
            "API request refused. logref=%s status=%s codes=%s",
            logref,
            status_code,
            ",".join(str(item["code"]) for item in items) or "-",
        )
    body = error_body(message, items, logref, data)
    return Response(body, status=status_code, headers=headers)


def _describe(
    exc: Exception,
) -> tuple[int, str, list[ErrorItem], dict[str, Any] | None, dict[str, str]]:
    headers: dict[str, str] = {}
    if isinstance(exc, CustomerExists):
        items = django_error_items(exc)
        data = {"customer": {"id": str(exc.customer_id)}}
        return 409, "The customer already exists.", items, data, headers
    if isinstance(exc, ValidationError):
        items = django_error_items(exc)
        status_code = validation_status(items)
        return status_code, _MESSAGES[status_code], items, None, headers
    if isinstance(exc, SendUnavailable):
        item: ErrorItem = {
            "field": None,
            "code": SendUnavailable.code,
            "message": "Send cannot be reached now; try again later.",
        }
        return 503, "Send is unavailable.", [item], None, headers
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, ApiError):
        item = {"field": exc.field, "code": exc.code, "message": str(exc.detail)}
        return exc.status_code, str(exc.detail), [item], exc.data, headers
    if isinstance(exc, exceptions.ValidationError):
        items = list(drf_error_items(exc.detail))
        status_code = validation_status(items)
        return status_code, _MESSAGES[status_code], items, None, headers
    if isinstance(exc, exceptions.APIException):
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = str(auth_header)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait) + 1)
        error_code = _DRF_CODES.get(type(exc)) or str(exc.default_code)
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else ""
        item = {"field": None, "code": error_code, "message": message}
        return exc.status_code, message, [item], None, headers
    item = {"field": None, "code": "server_error", "message": "Internal error."}
    return 500, "Internal error.", [item], None, headers


def json_error(
    request: HttpRequest, status_code: int, code: str, message: str
) -> JsonResponse:
    """Render an error outside DRF views (unknown paths, server errors)."""
    logref = request_id(request)
    item: ErrorItem = {"field": None, "code": code, "message": message}
    return JsonResponse(error_body(message, [item], logref), status=status_code)
