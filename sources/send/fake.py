"""An in-memory `SendGateway` for unit tests.

State is kept per apiKey in a module-level registry, so a test can prepare
an account with `FakeSendGateway.seed(...)` and the code under test, which
opens its own gateway through `open_gateway`, sees the same data.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import re
from collections.abc import Iterable, Sequence

from .gateway import (
    IDENTIFIER_FIELD,
    MODIFIED_FIELD,
    AttributeFilter,
    AuthenticationFailed,
    SendCredentials,
    SendField,
    SendSubscription,
    Subscriber,
    SubscriberNotFound,
    UserDb,
    UserDbLocked,
    UserDbNotFound,
)


@dataclasses.dataclass
class _Account:
    user_key: str
    userdbs: dict[int, UserDb] = dataclasses.field(default_factory=dict)
    subscribers: dict[int, dict[int, Subscriber]] = dataclasses.field(
        default_factory=dict
    )
    subscriptions: dict[int, list[SendSubscription]] = dataclasses.field(
        default_factory=dict
    )
    locked: set[int] = dataclasses.field(default_factory=set)


_accounts: dict[str, _Account] = {}
_ids = itertools.count(1)
_last_stamp = [datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)]


def _stamp() -> str:
    # Strictly increasing, in Send's TIMESTAMP text form, like the emulator.
    now = datetime.datetime.now(datetime.UTC)
    _last_stamp[0] = max(now, _last_stamp[0] + datetime.timedelta(microseconds=1))
    return _last_stamp[0].strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _matches(value: str | None, where: AttributeFilter) -> bool:
    if where.mode == "IN":
        return value in where.value.split(",")
    if where.mode == "LIKE":
        # SQL LIKE as the emulator's SQLite runs it: case-blind, % and _.
        pattern = re.escape(where.value).replace("%", ".*").replace("_", ".")
        return re.fullmatch(pattern, value or "", re.IGNORECASE) is not None
    if where.mode == "GREATER_EQUALS":
        return value is not None and value >= where.value
    return value == where.value


def _value(record: Subscriber, name: str) -> str | None:
    if name == IDENTIFIER_FIELD:
        return str(record.identifier)
    return record.attributes.get(name)


class FakeSendGateway:
    def __init__(self, credentials: SendCredentials) -> None:
        account = _accounts.get(credentials.api_key)
        if account is None or account.user_key != credentials.user_key:
            raise AuthenticationFailed("the apiKey and userKey were refused")
        self.account = account

    @staticmethod
    def reset() -> None:
        _accounts.clear()

    @staticmethod
    def seed(
        credentials: SendCredentials,
        userdb_id: int,
        fields: Sequence[SendField] = (),
        subscriptions: Sequence[SendSubscription] = (),
        subscribers: int = 0,
    ) -> None:
        """Create (or replace) one userdb with `subscribers` blank records."""
        account = _accounts.setdefault(
            credentials.api_key, _Account(user_key=credentials.user_key)
        )
        all_fields = (
            SendField("id", "INTEGER"),
            SendField(MODIFIED_FIELD, "TIMESTAMP"),
            *fields,
        )
        account.userdbs[userdb_id] = UserDb(
            userdb_id, f"userdb {userdb_id}", "id", tuple(all_fields)
        )
        account.subscriptions[userdb_id] = list(subscriptions)
        account.subscribers[userdb_id] = {}
        for _ in range(subscribers):
            identifier = next(_ids)
            account.subscribers[userdb_id][identifier] = Subscriber(identifier, {})

    def _records(self, userdb_id: int) -> dict[int, Subscriber]:
        if userdb_id not in self.account.userdbs:
            raise UserDbNotFound(f"userdb {userdb_id} does not exist")
        return self.account.subscribers[userdb_id]

    def get_userdb(self, userdb_id: int) -> UserDb:
        self._records(userdb_id)
        return self.account.userdbs[userdb_id]

    def find_userdbs(self) -> list[UserDb]:
        return list(self.account.userdbs.values())

    def is_locked(self, userdb_id: int) -> bool:
        self._records(userdb_id)
        return userdb_id in self.account.locked

    def count_subscribers(self, userdb_id: int) -> int:
        return len(self._records(userdb_id))

    def find_subscriptions(self, userdb_id: int) -> list[SendSubscription]:
        self._records(userdb_id)
        return list(self.account.subscriptions[userdb_id])

    def get_subscriber(self, userdb_id: int, identifier: int) -> Subscriber | None:
        return self._records(userdb_id).get(identifier)

    def find_subscribers(
        self, userdb_id: int, key: str, value: str
    ) -> list[Subscriber]:
        return self.find_subscribers_by(userdb_id, [AttributeFilter(key, value)])

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
        found = [
            record
            for record in self._records(userdb_id).values()
            if all(_matches(_value(record, f.name), f) for f in where)
        ]
        if sort_field is not None:
            found.sort(
                key=lambda r: (r.attributes.get(sort_field) or "", r.identifier),
                reverse=not ascending,
            )
        start = (page - 1) * page_size
        found = found[start : start + page_size]
        if attributes is None:
            return found
        return [
            Subscriber(
                r.identifier, {name: r.attributes.get(name) for name in attributes}
            )
            for r in found
        ]

    def add_subscriber(
        self, userdb_id: int, attributes: dict[str, str | None]
    ) -> Subscriber:
        self._check_writable(userdb_id)
        record = Subscriber(next(_ids), {**attributes, MODIFIED_FIELD: _stamp()})
        self._records(userdb_id)[record.identifier] = record
        return record

    def add_subscribers(
        self, userdb_id: int, records: Iterable[dict[str, str | None]]
    ) -> list[Subscriber]:
        return [self.add_subscriber(userdb_id, record) for record in records]

    def update_subscriber(
        self, userdb_id: int, identifier: int, attributes: dict[str, str | None]
    ) -> Subscriber:
        self._check_writable(userdb_id)
        record = self._records(userdb_id).get(identifier)
        if record is None:
            raise SubscriberNotFound(
                f"userdb {userdb_id} has no subscriber {identifier}"
            )
        record.attributes.update(attributes)
        record.attributes[MODIFIED_FIELD] = _stamp()
        return record

    def remove_subscriber(self, userdb_id: int, identifier: int) -> None:
        self._check_writable(userdb_id)
        self._records(userdb_id).pop(identifier, None)

    def modify_subscription_status(
        self, webform_code: str, identifier: int, subscribed: bool
    ) -> None:
        for userdb_id, systems in self.account.subscriptions.items():
            for system in systems:
                if system.webform_code == webform_code:
                    record = self._records(userdb_id)[identifier]
                    record.attributes[system.registration_field] = (
                        "1" if subscribed else "-1"
                    )
                    record.attributes[MODIFIED_FIELD] = _stamp()

    def _check_writable(self, userdb_id: int) -> None:
        if userdb_id in self.account.locked:
            raise UserDbLocked(f"userdb {userdb_id} is locked")

    def close(self) -> None:
        pass
