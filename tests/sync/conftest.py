"""Fixtures of the sync tests: a Send source on the fake gateway."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sources.models import Provider
from sources.services import (
    FieldRow,
    NodeGrant,
    SendSettings,
    SourceSpec,
    SubscriptionRow,
    source_create,
)
from tests.conftest import TEST_CREDENTIALS
from tests.factories import NodeFactory, SubscriptionSystemFactory, WorkspaceFactory

FIELDS = (
    FieldRow("base.contacts.email", "email", matching=True),
    FieldRow("base.firstName", "firstName"),
    FieldRow("base.lastName", "lastName"),
    FieldRow("base.dob", "birthday"),
)


@pytest.fixture
def lost_adds(monkeypatch):
    """Make adds reach Send and their answers get lost; call it to stop."""
    from sources.send.fake import FakeSendGateway
    from sources.send.gateway import TransientError

    real_add = FakeSendGateway.add_subscribers

    def add_then_lose(self, userdb_id, batch):
        real_add(self, userdb_id, batch)
        raise TransientError("the answer was lost")

    monkeypatch.setattr(FakeSendGateway, "add_subscribers", add_then_lose)
    return lambda: monkeypatch.setattr(FakeSendGateway, "add_subscribers", real_add)


@pytest.fixture
def lookups(monkeypatch):
    """Count the look-ups made in Send."""
    seen: list[object] = []
    from sources.send.fake import FakeSendGateway

    original = FakeSendGateway.find_subscribers_by

    def counted(self, userdb_id, where, **kwargs):
        if where and where[0].mode == "IN":
            seen.append(where)
        return original(self, userdb_id, where, **kwargs)

    monkeypatch.setattr(FakeSendGateway, "find_subscribers_by", counted)
    return seen


@pytest.fixture
def relay_calls(monkeypatch):
    """Record relay nudges instead of sending them to a broker."""
    calls: list[str] = []
    from sync import tasks

    monkeypatch.setattr(tasks.outbox_relay_task, "delay", calls.append)
    monkeypatch.setattr(
        tasks.source_initial_sync_task, "delay", lambda s: calls.append(f"init:{s}")
    )
    return calls


def make_source(node, *, permission="RW", enabled=True, fields=FIELDS, rows=()):
    return source_create(
        workspace=node.workspace,
        provider=Provider.CONTACTSEND,
        spec=SourceSpec(
            name="Send",
            enabled=enabled,
            nodes=(NodeGrant(node, permission),),
            send=SendSettings(
                userdb_id=7,
                api_key=TEST_CREDENTIALS.api_key,
                user_key=TEST_CREDENTIALS.user_key,
                fields=fields,
                subscriptions=rows,
            ),
        ),
    )


@pytest.fixture
def setup(db, fake_send, relay_calls):
    """A workspace, an entry node, a `news` system and an RW Send source."""
    workspace = WorkspaceFactory()
    node = NodeFactory(workspace=workspace)
    system = SubscriptionSystemFactory(workspace=workspace, system_id="news")
    source = make_source(node, rows=(SubscriptionRow("news", 11, "WF-NEWS"),))
    return SimpleNamespace(
        workspace=workspace, node=node, system=system, source=source, calls=relay_calls
    )


def records(fake_send):
    """Return the fake userdb 7's records as plain dicts."""
    gateway = fake_send(TEST_CREDENTIALS)
    return {
        identifier: dict(record.attributes)
        for identifier, record in gateway._records(7).items()
    }


def gateway(fake_send):
    return fake_send(TEST_CREDENTIALS)
