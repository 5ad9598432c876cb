"""DRF authentication by `Authorization: Bearer <token>`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import AccessToken
from .services import token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate an admin or a source token; `request.auth` is the token.

    An admin token authenticates its user. A source token has no user, so
    `request.user` stays anonymous and permissions look at `request.auth`.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[object, AccessToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the header as 'Authorization: Bearer <token>'."
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeError as error:
            raise exceptions.AuthenticationFailed("The token is not valid.") from error
        token = token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("The token is not valid.")
        user = token.user if token.is_admin else AnonymousUser()
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="hubsync"'


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Describe the bearer tokens in the OpenAPI schema."""

    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An admin token (configuration) or a source token.",
        }
