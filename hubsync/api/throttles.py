"""Request rates per token (per client address before authentication)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from tokens.models import AccessToken


class TokenRateThrottle(SimpleRateThrottle):
    """Throttle by token under the `token` rate, else by address (`anonymous`).

    Counters live in the default cache: share a cache between web processes
    (Redis) for a limit that holds across them.
    """

    def get_rate(self) -> str | None:
        # Read at each request so that a settings change applies at once.
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope or "")
        return str(rate) if rate else None

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = "token" if isinstance(request.auth, AccessToken) else "anonymous"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, AccessToken):
            return f"throttle:token:{request.auth.pk}"
        return f"throttle:address:{self.get_ident(request)}"
