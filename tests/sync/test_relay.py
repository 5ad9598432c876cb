import datetime as dt

import pytest
from django.utils import timezone

from hub import services as hub
from sources.send.fake import FakeSendGateway
from sources.send.gateway import TransientError
from sync import services
from sync.models import AccountSlot, InitialChunk, OutboxEntry, SyncState
from sync.slots import account_slot

from .conftest import gateway, records
from .test_outbox import customer_data
from .test_push import relay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("query_path")]


def initial(setup, count=3):
    customers = [
        hub.customer_create(node=setup.node, data=customer_data(n))
        for n in range(count)
    ]
    OutboxEntry.objects.all().delete()
    services.source_initial_sync(setup.source.id)
    return customers


def due_again():
    OutboxEntry.objects.update(available_at=timezone.now(), claimed_until=None)
    InitialChunk.objects.update(claimed_until=None)


def test_the_sweep_nudges_each_source_once(setup):
    for n in range(3):
        hub.customer_create(node=setup.node, data=customer_data(n))
    assert services.pending_sources() == [setup.source.id]


def test_a_nudge_returns_at_once_while_the_relays_are_busy(setup, settings):
    settings.SYNC_RELAY_PARALLELISM = 1
    hub.customer_create(node=setup.node, data=customer_data())
    with account_slot(f"relay:{setup.source.id}", wait_seconds=0, limit=1):
        assert services.outbox_relay_run(setup.source.id, 5) is False
        assert OutboxEntry.objects.count() == 1
    assert services.outbox_relay_run(setup.source.id, 5) is False
    assert not OutboxEntry.objects.exists()
    assert AccountSlot.objects.filter(account__startswith="relay:").count() == 1


def test_relays_hold_a_call_slot_only_while_a_call_runs(setup, fake_send, monkeypatch):
    initial(setup)
    held = []
    real_add = FakeSendGateway.add_subscribers

    def add(self, userdb_id, batch):
        held.append(AccountSlot.objects.filter(leased_until__gt=timezone.now()).count())
        return real_add(self, userdb_id, batch)

    monkeypatch.setattr(FakeSendGateway, "add_subscribers", add)
    relay(setup)
    assert held == [1]
    assert not AccountSlot.objects.filter(leased_until__gt=timezone.now()).exclude(
        account__startswith="relay:"
    )


def test_an_initial_sync_into_an_empty_userdb_adds_without_look_ups(
    setup, fake_send, lookups
):
    initial(setup)
    assert SyncState.objects.get(source=setup.source).only_ours
    relay(setup)
    assert len(records(fake_send)) == 3
    assert lookups == []


def test_an_initial_sync_into_a_used_userdb_looks_up(setup, fake_send, lookups):
    gateway(fake_send).add_subscriber(7, {"email": "ada1@example.com"})
    initial(setup)
    assert not SyncState.objects.get(source=setup.source).only_ours
    relay(setup)
    assert len(records(fake_send)) == 3
    assert lookups


def test_an_add_that_failed_is_sent_on_the_next_attempt(setup, fake_send, monkeypatch):
    initial(setup)

    def down(self, userdb_id, batch):
        raise TransientError("Send answered with HTTP 503")

    original = FakeSendGateway.add_subscribers
    monkeypatch.setattr(FakeSendGateway, "add_subscribers", down)
    relay(setup)
    monkeypatch.setattr(FakeSendGateway, "add_subscribers", original)
    due_again()
    relay(setup)
    assert len(records(fake_send)) == 3
    assert not OutboxEntry.objects.exists()


def test_a_record_added_in_send_by_someone_else_ends_the_fast_path(
    setup, fake_send, lookups
):
    initial(setup)
    relay(setup)
    gateway(fake_send).add_subscriber(7, {"email": "grace@example.com"})
    services.source_poll(setup.source.id)
    assert not SyncState.objects.get(source=setup.source).only_ours
    hub.customer_create(node=setup.node, data=customer_data(9))
    relay(setup)
    assert lookups


def test_a_poll_keeps_what_others_write_to_the_sync_state_meanwhile(
    setup, fake_send, monkeypatch
):
    initial(setup)
    relay(setup)
    moment = timezone.now() - dt.timedelta(hours=1)

    def others_write(ctx, state, counts):
        SyncState.objects.filter(source=setup.source).update(
            initial_done_at=None, last_sweep_at=moment, only_ours=False
        )
        return 0

    monkeypatch.setattr(services, "_poll_pages", others_write)
    services.source_poll(setup.source.id)
    state = SyncState.objects.get(source=setup.source)
    assert (state.initial_done_at, state.last_sweep_at) == (None, moment)
    assert not state.only_ours
    assert state.last_poll_ok_at is not None
