"""The ClabService operations: parse a request element, act, build the answer.

Requests have already been validated against the WSDL's schema, so the
parsing here can rely on required elements being present and well typed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from lxml import etree  # type: ignore[import-untyped]

from . import errors, store
from .runtime import Counters, Tokens
from .wsdl import NAMESPACE, XSI

ADD_SUBSCRIBERS_LIMIT = 500
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
_SUBSCRIPTION_KEYS = {
    "subscriberSourceIdentifier": "userdb_id",
    "id": "id",
    "name": "name",
    "registrationField": "registration_field",
    "webformCode": "webform_code",
}

# lxml ships no type information.
Element: TypeAlias = Any
Handler = Callable[[Element, str], Element]


@functools.cache
def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


_NIL = f"{{{XSI}}}nil"
_ATTRIBUTES = _q("attributes")
_KEY = _q("key")
_VALUE = _q("value")
_IDENTIFIER = _q("identifier")


def _child(parent: Element, name: str) -> Element | None:
    return parent.find(_q(name))


def _children(parent: Element, name: str) -> list[Element]:
    found: list[Element] = parent.findall(_q(name))
    return found


def _text(parent: Element, name: str, default: str | None = None) -> str | None:
    found = _child(parent, name)
    if found is None or found.get(f"{{{XSI}}}nil") in ("true", "1"):
        return default
    return found.text or ""


def _int(parent: Element, name: str, default: int = 0) -> int:
    text = _text(parent, name)
    return default if text is None else int(text)


def _flag(parent: Element, name: str) -> bool:
    return _text(parent, name) in ("true", "1")


def _node(parent: Element, name: str) -> Element:
    return etree.SubElement(parent, _q(name))


def _add(parent: Element, name: str, value: object) -> Element:
    """Append a child element holding `value`; None becomes xsi:nil."""
    child = etree.SubElement(parent, _q(name))
    if value is None:
        child.set(f"{{{XSI}}}nil", "true")
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    else:
        child.text = str(value)
    return child


class ClabService:
    """One instance serves every request; it holds no per-request state."""

    def __init__(self, data: store.Store, tokens: Tokens, counters: Counters) -> None:
        self.store = data
        self.tokens = tokens
        self.counters = counters
        self._handlers: dict[str, Handler] = {
            "borrowToken": self.borrow_token,
            "keepaliveToken": self.keepalive_token,
            "invalidateToken": self.invalidate_token,
            "getSubscriberSource": self.get_subscriber_source,
            "findSubscriberSources": self.find_subscriber_sources,
            "isSubscriberSourceLocked": self.is_subscriber_source_locked,
            "countSubscribers": self.count_subscribers,
            "getSubscriber": self.get_subscriber,
            "findSubscribers": self.find_subscribers,
            "findSubscribersBy": self.find_subscribers_by,
            "addSubscriber": self.add_subscriber,
            "addSubscribers": self.add_subscribers,
            "updateSubscriber": self.update_subscriber,
            "removeSubscriber": self.remove_subscriber,
            "findSubscriptionsBy": self.find_subscriptions_by,
            "modifySubscriberSubscriptionStatus": self.modify_subscription_status,
        }

    def account_of(self, operation: str, request: Element) -> str:
        """Return the apiKey a request acts for (its token's, once valid)."""
        if operation == "borrowToken":
            return _text(request, "apiKey") or ""
        token = _child(request, "token")
        content = "" if token is None else _text(token, "content") or ""
        return self.tokens.account(content)

    def call(self, operation: str, request: Element, api_key: str) -> Element:
        handler = self._handlers.get(operation)
        if handler is None:
            raise errors.ServiceFault(
                errors.INVALID_REQUEST, f"unknown operation {operation}"
            )
        return handler(request, api_key)

    # Tokens.

    def borrow_token(self, request: Element, api_key: str) -> Element:
        user_key = _text(request, "userKey") or ""
        if not api_key or not self.store.account_matches(api_key, user_key):
            raise errors.ServiceFault(
                errors.AUTHENTICATION_FAILED, "the apiKey and userKey were refused"
            )
        response = _response("borrowToken")
        _add(_node(response, "return"), "content", self.tokens.borrow(api_key))
        return response

    def keepalive_token(self, request: Element, api_key: str) -> Element:
        token = _child(request, "token")
        assert token is not None
        self.tokens.keep_alive(_text(token, "content") or "")
        return _response("keepaliveToken")

    def invalidate_token(self, request: Element, api_key: str) -> Element:
        token = _child(request, "token")
        assert token is not None
        self.tokens.invalidate(_text(token, "content") or "")
        return _response("invalidateToken")

    # Userdbs.

    def get_subscriber_source(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        response = _response("getSubscriberSource")
        _source(_node(response, "return"), info)
        return response

    def find_subscriber_sources(self, request: Element, api_key: str) -> Element:
        page, size, sort_field, descending = _lookup_prefs(request)
        found = self.store.userdbs(api_key)
        if sort_field not in (None, "identifier", "name"):
            raise errors.invalid_data(str(sort_field), "cannot sort on this")
        if sort_field == "name":
            found.sort(key=lambda info: info.name, reverse=descending)
        elif descending:
            found.reverse()
        response = _response("findSubscriberSources")
        result = _page(response, page, size, len(found))
        for info in found[(page - 1) * size : page * size]:
            _source(_node(result, "currentPageItems"), info)
        return response

    def is_subscriber_source_locked(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "subscriberSourceId"), api_key)
        response = _response("isSubscriberSourceLocked")
        _add(response, "return", info.locked)
        return response

    def count_subscribers(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        response = _response("countSubscribers")
        _add(response, "return", self.store.count(info))
        return response

    # Subscribers.

    def get_subscriber(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        identifier = _int(request, "subscriberIdentifier")
        record = self.store.get(info, identifier)
        if record is None:
            raise errors.ServiceFault(
                errors.SUBSCRIBER_NOT_FOUND,
                f"subscriber {identifier} does not exist in userdb {info.id}",
            )
        response = _response("getSubscriber")
        _subscriber(_node(response, "return"), record)
        return response

    def find_subscribers(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        attribute = _child(request, "attribute")
        assert attribute is not None
        wanted = store.Filter(_text(attribute, "key") or "", _text(attribute, "value"))
        page, size, sort_field, descending = _lookup_prefs(request)
        total, records = self.store.find(
            info,
            [wanted],
            sort_field=sort_field,
            descending=descending,
            page=page,
            page_size=size,
        )
        return _subscribers("findSubscribers", page, size, total, records)

    def find_subscribers_by(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        if _text(request, "filterId") is not None:
            raise errors.invalid_data("filterId", "saved filters are not supported")
        where = [
            store.Filter(
                _text(item, "attributeName") or "",
                _text(item, "attributeValue"),
                _text(item, "lookupMatchingMode") or "EQUALS",
            )
            for item in _children(request, "whereAttribute")
        ]
        selected = [item.text or "" for item in _children(request, "selectedAttribute")]
        for name in selected:
            info.field(name)
        page, size, sort_field, descending = _pagination(request)
        total, records = self.store.find(
            info,
            where,
            sort_field=sort_field,
            descending=descending,
            page=page,
            page_size=size,
            only=selected or None,
        )
        if selected:
            records = [_only(record, selected) for record in records]
        return _subscribers("findSubscribersBy", page, size, total, records)

    def add_subscriber(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        subscriber = _child(request, "subscriber")
        assert subscriber is not None
        (record,) = self.store.add(info, [_attributes(subscriber)])
        self.counters.count("writes", "addSubscriber")
        response = _response("addSubscriber")
        _subscriber(_node(response, "return"), record)
        return response

    def add_subscribers(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        items = _children(request, "subscribers")
        if len(items) > ADD_SUBSCRIBERS_LIMIT:
            raise errors.invalid_data(
                "subscribers",
                f"at most {ADD_SUBSCRIBERS_LIMIT} subscribers per call,"
                f" got {len(items)}",
            )
        records = self.store.add(info, [_attributes(item) for item in items])
        self.counters.count("writes", "addSubscribers", len(records))
        response = _response("addSubscribers")
        for record in records:
            _subscriber(_node(response, "return"), record)
        return response

    def update_subscriber(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        subscriber = _child(request, "subscriber")
        assert subscriber is not None
        identifier = _text(subscriber, "identifier")
        if identifier is None:
            raise errors.invalid_data("identifier", "required to update")
        record = self.store.update(info, int(identifier), _attributes(subscriber))
        self.counters.count("writes", "updateSubscriber")
        response = _response("updateSubscriber")
        _subscriber(_node(response, "return"), record)
        return response

    def remove_subscriber(self, request: Element, api_key: str) -> Element:
        info = self.store.userdb(_int(request, "sourceIdentifier"), api_key)
        self.store.remove(info, _int(request, "subscriberIdentifier"))
        self.counters.count("writes", "removeSubscriber")
        return _response("removeSubscriber")

    # Subscription systems.

    def find_subscriptions_by(self, request: Element, api_key: str) -> Element:
        wanted: dict[str, str] = {}
        for item in _children(request, "attributes"):
            key = _text(item, "key") or ""
            if key not in _SUBSCRIPTION_KEYS:
                raise errors.invalid_data(key, "not a subscription attribute")
            wanted[_SUBSCRIPTION_KEYS[key]] = _text(item, "value") or ""
        userdb_id = None
        if "userdb_id" in wanted:
            userdb_id = _whole(wanted["userdb_id"], "subscriberSourceIdentifier")
            self.store.userdb(userdb_id, api_key)
        found = [
            item
            for item in self.store.subscriptions(api_key, userdb_id)
            if all(str(getattr(item, key)) == value for key, value in wanted.items())
        ]
        page, size, sort_field, descending = _pagination(request)
        if sort_field is not None:
            attribute = _SUBSCRIPTION_KEYS.get(sort_field)
            if attribute is None:
                raise errors.invalid_data(sort_field, "cannot sort on this")
            found.sort(key=lambda item: getattr(item, attribute), reverse=descending)
        response = _response("findSubscriptionsBy")
        result = _page(response, page, size, len(found))
        for item in found[(page - 1) * size : page * size]:
            entry = _node(result, "currentPageItems")
            _add(entry, "id", item.id)
            _add(entry, "name", item.name)
            _add(entry, "registrationField", item.registration_field)
            _add(entry, "webformCode", item.webform_code)
        return response

    def modify_subscription_status(self, request: Element, api_key: str) -> Element:
        self.store.set_subscription_status(
            api_key,
            _text(request, "webFormCode") or "",
            _int(request, "subscriberIdentifier"),
            1 if _flag(request, "isSubscribed") else -1,
        )
        self.counters.count("writes", "modifySubscriberSubscriptionStatus")
        return _response("modifySubscriberSubscriptionStatus")


# Building blocks of requests and answers.


def _response(operation: str) -> Element:
    return etree.Element(_q(operation + "Response"), nsmap={"tns": NAMESPACE})


def _whole(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise errors.invalid_data(name, "expected a whole number") from error


def _checked_page(page: int, size: int) -> tuple[int, int]:
    if page < 1:
        raise errors.invalid_data("currentPage", "pages are numbered from 1")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise errors.invalid_data("pageSize", f"expected 1 to {MAX_PAGE_SIZE}")
    return page, size


def _lookup_prefs(request: Element) -> tuple[int, int, str | None, bool]:
    prefs = _child(request, "lookupPrefs")
    if prefs is None:
        return 1, DEFAULT_PAGE_SIZE, None, False
    page, size = _checked_page(
        _int(prefs, "pageNumber", 1), _int(prefs, "pageSize", DEFAULT_PAGE_SIZE)
    )
    descending = _text(prefs, "sortingDirection") == "DESC"
    return page, size, _text(prefs, "sortingField"), descending


def _pagination(request: Element) -> tuple[int, int, str | None, bool]:
    pagination = _child(request, "pagination")
    if pagination is None:
        return 1, DEFAULT_PAGE_SIZE, None, False
    page, size = _checked_page(
        _int(pagination, "currentPage", 1),
        _int(pagination, "pageSize", DEFAULT_PAGE_SIZE),
    )
    sorting = _child(pagination, "sorting")
    if sorting is None:
        return page, size, None, False
    descending = _text(sorting, "direction") == "DESC"
    return page, size, _text(sorting, "attributeName"), descending


def _page(response: Element, page: int, size: int, total: int) -> Element:
    result = _node(response, "return")
    _add(result, "currentPageNumber", page)
    _add(result, "pageSize", size)
    _add(result, "totalElements", total)
    _add(result, "totalPages", math.ceil(total / size))
    return result


def _subscribers(
    operation: str, page: int, size: int, total: int, records: Sequence[store.Record]
) -> Element:
    response = _response(operation)
    result = _page(response, page, size, total)
    for record in records:
        _subscriber(_node(result, "currentPageItems"), record)
    return response


def _attributes(subscriber: Element) -> dict[str, str | None]:
    # Batches carry thousands of these: walk the children once instead of
    # searching for each by name.
    attributes: dict[str, str | None] = {}
    for item in subscriber.iterchildren(_ATTRIBUTES):
        key = ""
        value = None
        for child in item:
            if child.tag == _KEY:
                key = child.text or ""
            elif child.tag == _VALUE and child.get(_NIL) not in ("true", "1"):
                value = child.text or ""
        if key in attributes:
            raise errors.invalid_data(key, "given more than once")
        attributes[key] = value
    return attributes


def _only(record: store.Record, names: Sequence[str]) -> store.Record:
    kept = {name: record.attributes.get(name) for name in names}
    return store.Record(record.identifier, kept)


def _subscriber(parent: Element, record: store.Record) -> None:
    sub_element = etree.SubElement
    sub_element(parent, _IDENTIFIER).text = str(record.identifier)
    for key, value in record.attributes.items():
        attribute = sub_element(parent, _ATTRIBUTES)
        sub_element(attribute, _KEY).text = key
        if value is None:
            sub_element(attribute, _VALUE).set(_NIL, "true")
        else:
            sub_element(attribute, _VALUE).text = value


def _source(parent: Element, info: store.UserDbInfo) -> None:
    _add(parent, "identifier", info.id)
    _add(parent, "name", info.name)
    _add(parent, "description", info.description)
    _add(parent, "subscriberIdentifierFieldName", store.ID_FIELD)
    for field in info.fields:
        entry = _node(parent, "fields")
        _add(entry, "name", field.name)
        _add(entry, "type", field.type)
        _add(entry, "emailField", field.email_field)
    _add(parent, "charset", info.charset)
    _add(parent, "locked", info.locked)
    _add(parent, "readOnly", info.read_only)
    _add(parent, "hasExternalKey", False)
