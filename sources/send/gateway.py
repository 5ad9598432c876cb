"""The narrow interface hubsync needs from Send, and its value types.

Everything outside `sources/send/` talks to Send through `SendGateway`, so
that rules and the sync can be tested against `FakeSendGateway` while the
SOAP client (`sources.send.client`) does the real work in production.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

# The emulator adds these two fields to every userdb; real Send userdbs are
# set up with the same names for hubsync.
IDENTIFIER_FIELD = "id"
MODIFIED_FIELD = "lastModified"


@dataclasses.dataclass(frozen=True)
class SendCredentials:
    """An apiKey and userKey pair; its repr never shows either key."""

    api_key: str
    user_key: str

    def __repr__(self) -> str:
        return "SendCredentials(api_key=***, user_key=***)"


@dataclasses.dataclass(frozen=True)
class SendField:
    name: str
    type: str
    email_field: bool = False


@dataclasses.dataclass(frozen=True)
class UserDb:
    identifier: int
    name: str
    subscriber_identifier_field: str
    fields: tuple[SendField, ...]
    description: str = ""
    charset: str = "UTF-8"
    locked: bool = False
    read_only: bool = False


@dataclasses.dataclass(frozen=True)
class SendSubscription:
    """A subscription system of a userdb (Send's `Subscription`)."""

    id: int
    name: str
    registration_field: str
    webform_code: str


@dataclasses.dataclass
class Subscriber:
    identifier: int
    attributes: dict[str, str | None]


@dataclasses.dataclass(frozen=True)
class AttributeFilter:
    """One `SubscriberAttributeFilter` of `findSubscribersBy`."""

    name: str
    value: str
    mode: str = "EQUALS"


class SendError(Exception):
    """Base of every error a gateway raises; `retryable` says if a retry helps."""

    retryable = False
    code = "SEND_ERROR"


class AuthenticationFailed(SendError):
    code = "SEND_AUTHENTICATION_FAILED"


class UserDbNotFound(SendError):
    code = "SEND_USERDB_NOT_FOUND"


class InvalidData(SendError):
    code = "SEND_INVALID_DATA"


class SubscriberNotFound(InvalidData):
    """The subscriber a write names does not exist in the userdb."""

    code = "SEND_SUBSCRIBER_NOT_FOUND"


class UserDbLocked(SendError):
    retryable = True
    code = "SEND_USERDB_LOCKED"


class RateLimited(SendError):
    retryable = True
    code = "SEND_RATE_LIMITED"


class TransientError(SendError):
    """A 5xx, a timeout, a lost connection: the call may or may not have run."""

    retryable = True
    code = "SEND_TRANSIENT_ERROR"


class SendGateway(Protocol):
    """What hubsync asks of one Send account (the credentials are bound)."""

    def get_userdb(self, userdb_id: int) -> UserDb: ...

    def find_userdbs(self) -> list[UserDb]: ...

    def is_locked(self, userdb_id: int) -> bool: ...

    def count_subscribers(self, userdb_id: int) -> int: ...

    def find_subscriptions(self, userdb_id: int) -> list[SendSubscription]: ...

    def get_subscriber(self, userdb_id: int, identifier: int) -> Subscriber | None: ...

    def find_subscribers(
        self, userdb_id: int, key: str, value: str
    ) -> list[Subscriber]: ...

    def find_subscribers_by(
        self,
        userdb_id: int,
        where: Sequence[AttributeFilter],
        *,
        page: int = 1,
        page_size: int = 500,
        sort_field: str | None = None,
        ascending: bool = True,
        attributes: Sequence[str] | None = None,
    ) -> list[Subscriber]:
        """Return one page of the records that pass every filter, with only
        the named `attributes` when given (the identifier always)."""
        ...

    def add_subscriber(
        self, userdb_id: int, attributes: dict[str, str | None]
    ) -> Subscriber: ...

    def add_subscribers(
        self, userdb_id: int, records: Iterable[dict[str, str | None]]
    ) -> list[Subscriber]: ...

    def update_subscriber(
        self, userdb_id: int, identifier: int, attributes: dict[str, str | None]
    ) -> Subscriber: ...

    def remove_subscriber(self, userdb_id: int, identifier: int) -> None: ...

    def modify_subscription_status(
        self, webform_code: str, identifier: int, subscribed: bool
    ) -> None: ...

    def close(self) -> None: ...


def open_gateway(credentials: SendCredentials) -> SendGateway:
    """Return a gateway for `credentials`, of the class named in settings."""
    factory = import_string(settings.SEND_GATEWAY)
    gateway: SendGateway = factory(credentials)
    return gateway
