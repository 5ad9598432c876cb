"""The base view of the API, the error responses of the schema, fallbacks."""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import views
from rest_framework.request import Request
from rest_framework.response import Response

from .access import HasToken, IsAdminToken
from .errors import ApiError, json_error, request_id
from .serializers import ErrorSerializer

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

_ERROR_TEXT = {
    400: "Invalid input: malformed JSON, a wrong type, an unknown property.",
    401: "No token, or an invalid one.",
    403: "The token may not do this (workspace, node or kind of token).",
    404: "Not found.",
    409: "Conflict with the stored state: a rule or uniqueness code.",
    413: "The body, or a customer section, is too large.",
    415: "The body is not JSON.",
    429: "Too many requests for this token; see Retry-After.",
    503: "Send is unavailable (SEND_UNAVAILABLE); retry later.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Return the schema entries of the errors an operation can answer."""
    wanted = {401, 403, 404, 429, *codes}
    return {
        code: OpenApiResponse(ErrorSerializer, description=_ERROR_TEXT[code])
        for code in sorted(wanted)
    }


WRITE_ERRORS = (400, 413, 415)


class ApiView(views.APIView):
    """Every API view: token required, request id kept and echoed."""

    permission_classes = [HasToken]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        given = request.headers.get("X-Request-Id", "")
        if _REQUEST_ID.match(given):
            request._request.logref = given  # type: ignore[attr-defined]
        request_id(request)
        super().initial(request, *args, **kwargs)
        _check_parameters(request, kwargs)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Request-Id"] = request_id(request)
        return response


def _check_parameters(request: Request, kwargs: dict[str, Any]) -> None:
    """Refuse NUL characters in the query and path: the database cannot hold them."""
    values = [v for _, given in request.query_params.lists() for v in given]
    values += [str(value) for value in kwargs.values()]
    if any("\x00" in value for value in values):
        raise ApiError(400, "Parameters cannot contain NUL characters.", "invalid")


class ConfigView(ApiView):
    permission_classes = [IsAdminToken]


def created(body: dict[str, Any]) -> Response:
    return Response(body, status=201)


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Answer an unknown API path in the error shape."""
    return json_error(request, 404, "not_found", "There is no such API endpoint.")
