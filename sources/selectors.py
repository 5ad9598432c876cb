"""Reads for sources: stored credentials and what Send says of a userdb."""

from __future__ import annotations

import dataclasses

from django.core.exceptions import ValidationError

from .crypto import decrypt
from .models import Source
from .send.gateway import (
    AuthenticationFailed,
    SendCredentials,
    SendError,
    SendField,
    SendSubscription,
    UserDb,
    UserDbNotFound,
    open_gateway,
)


class SendUnavailable(Exception):
    """Send could not be reached or answered with a passing error; retry later."""

    code = "SEND_UNAVAILABLE"


@dataclasses.dataclass(frozen=True)
class UserDbInfo:
    """What "Show additional fields" and the rules need to know of a userdb."""

    userdb: UserDb
    subscriptions: list[SendSubscription]
    subscriber_count: int

    def field(self, name: str) -> SendField | None:
        return next((f for f in self.userdb.fields if f.name == name), None)

    def subscription(self, subscription_id: int) -> SendSubscription | None:
        return next((s for s in self.subscriptions if s.id == subscription_id), None)


def source_credentials(source: Source) -> SendCredentials:
    """Return the decrypted keys of a Send source."""
    options = source.send
    return SendCredentials(
        api_key=decrypt(options.api_key_encrypted),
        user_key=decrypt(options.user_key_encrypted),
    )


def send_userdb_describe(credentials: SendCredentials, userdb_id: int) -> UserDbInfo:
    """Ask Send for a userdb's fields, subscription systems and size.

    Raises ValidationError naming the field for refused keys or an unknown
    userdb, and SendUnavailable when Send fails for a passing reason.
    """
    try:
        gateway = open_gateway(credentials)
        try:
            return UserDbInfo(
                userdb=gateway.get_userdb(userdb_id),
                subscriptions=gateway.find_subscriptions(userdb_id),
                subscriber_count=gateway.count_subscribers(userdb_id),
            )
        finally:
            gateway.close()
    except AuthenticationFailed as error:
        raise ValidationError(
            {
                "properties.apiKey": ValidationError(
                    "Send refused this apiKey and userKey.", code=error.code
                )
            }
        ) from error
    except UserDbNotFound as error:
        raise ValidationError(
            {
                "properties.userDbId": ValidationError(
                    "Send has no userdb %(userdb)s for these keys.",
                    code=error.code,
                    params={"userdb": userdb_id},
                )
            }
        ) from error
    except SendError as error:
        raise SendUnavailable(str(error)) from error
