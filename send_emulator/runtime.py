"""The emulator's in-memory state: tokens, limits, injected faults, counters.

None of it survives a restart, as with the real service, where a restart
ends every session.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import secrets
import threading
import time
from collections.abc import Iterator, Mapping

from . import errors

# The control API's JSON names of the fault settings.
FAULT_NAMES = {
    "latencyMs": "latency_ms",
    "errorRate": "error_rate",
    "timeoutRate": "timeout_rate",
    "lostAnswerRate": "lost_answer_rate",
    "requestsPerSecond": "requests_per_second",
    "maxConcurrency": "max_concurrency",
}


@dataclasses.dataclass
class Faults:
    """What the service does wrong on purpose; zero (or None) turns it off."""

    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    lost_answer_rate: float = 0.0
    requests_per_second: float = 10.0
    max_concurrency: int = 10

    def updated(self, changes: Mapping[str, object]) -> Faults:
        """Return a copy with `changes` (JSON names) applied, or raise
        ValueError naming the first bad setting."""
        unknown = sorted(set(changes) - set(FAULT_NAMES))
        if unknown:
            raise ValueError(f"unknown setting: {', '.join(unknown)}")
        result = dataclasses.replace(self)
        for name, raw in changes.items():
            setattr(result, FAULT_NAMES[name], _checked(name, raw))
        return result

    def as_json(self) -> dict[str, float | int]:
        return {name: getattr(self, attr) for name, attr in FAULT_NAMES.items()}


def _checked(name: str, raw: object) -> float | int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{name} must be a number")
    if not math.isfinite(raw) or raw < 0:
        raise ValueError(f"{name} must be a finite number, 0 or more")
    if name.endswith("Rate"):
        if raw > 1:
            raise ValueError(f"{name} must be between 0 and 1")
        return float(raw)
    if name == "requestsPerSecond":
        return float(raw)
    if raw != int(raw):
        raise ValueError(f"{name} must be a whole number")
    return int(raw)


class Tokens:
    """The sessions opened by borrowToken, each bound to one account."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def borrow(self, api_key: str) -> str:
        content = secrets.token_urlsafe(24)
        with self._lock:
            self._drop_expired()
            self._tokens[content] = (api_key, time.monotonic() + self.ttl_seconds)
        return content

    def account(self, content: str) -> str:
        """Return the apiKey a live token belongs to, or fault."""
        with self._lock:
            found = self._tokens.get(content)
        if found is None or found[1] <= time.monotonic():
            raise errors.ServiceFault(
                errors.INVALID_TOKEN, "the token is expired or unknown"
            )
        return found[0]

    def keep_alive(self, content: str) -> None:
        api_key = self.account(content)
        with self._lock:
            self._tokens[content] = (api_key, time.monotonic() + self.ttl_seconds)

    def invalidate(self, content: str) -> None:
        with self._lock:
            self._tokens.pop(content, None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for content in [key for key, (_, end) in self._tokens.items() if end <= now]:
            del self._tokens[content]


class Limiter:
    """Per-account concurrency cap and token bucket (requests per second)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._buckets: dict[str, tuple[float, float]] = {}

    @contextlib.contextmanager
    def admit(self, account: str, faults: Faults) -> Iterator[None]:
        """Hold one request slot of `account`, or raise a rate-limit fault."""
        with self._lock:
            if faults.max_concurrency and (
                self._in_flight[account] >= faults.max_concurrency
            ):
                raise RateLimitFault("too many concurrent requests", "concurrency")
            if faults.requests_per_second and not self._take(
                account, faults.requests_per_second
            ):
                raise RateLimitFault("too many requests per second", "rps")
            self._in_flight[account] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[account] -= 1

    def _take(self, account: str, rate: float) -> bool:
        # The bucket holds one second's worth of requests (at least one), so
        # a burst up to the rate passes and a steady stream above it does not.
        capacity = max(1.0, rate)
        now = time.monotonic()
        level, since = self._buckets.get(account, (capacity, now))
        level = min(capacity, level + (now - since) * rate)
        if level < 1:
            self._buckets[account] = (level, now)
            return False
        self._buckets[account] = (level - 1, now)
        return True

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


class RateLimitFault(errors.ServiceFault):
    """Over a limit: HTTP 429 with a RATE_LIMITED fault; `kind` says which."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(errors.RATE_LIMITED, message, http_status=429)
        self.kind = kind


class Counters:
    """Calls per operation, faults per kind, writes per operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.writes: collections.Counter[str] = collections.Counter()
        self.soap_faults: collections.Counter[str] = collections.Counter()

    def count(self, kind: str, key: str, amount: int = 1) -> None:
        with self._lock:
            getattr(self, kind)[key] += amount

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "faultsInjected": dict(self.faults),
                "writes": dict(self.writes),
                "soapFaults": dict(self.soap_faults),
            }
