import pytest

from hub import services as hub
from sources.services import source_set_enabled
from sync import selectors, services, tasks
from sync.models import AccountSlot, Link, OutboxEntry, SyncIssue
from sync.slots import NoSlot, account_slot

from .test_outbox import customer_data
from .test_push import relay

pytestmark = pytest.mark.django_db


def test_sync_state_is_json_ready(setup):
    hub.customer_create(node=setup.node, data=customer_data())
    state = selectors.sync_state(setup.source)
    assert state["state"] == "initial"
    assert state["enabled"] is True
    assert state["pending"] == 1
    assert state["lag"]["oldestPendingSeconds"] >= 0
    assert state["lag"]["sinceLastPollSeconds"] is None
    services.source_initial_sync(setup.source.id)
    relay(setup)
    services.source_poll(setup.source.id)
    state = selectors.sync_state(setup.source)
    assert state["state"] == "idle"
    assert state["lag"]["sinceLastPollSeconds"] is not None
    assert state["lastRuns"][0]["kind"] in {"push", "initial"}


def test_enabling_a_source_queues_the_initial_sync_on_commit(
    setup, django_capture_on_commit_callbacks
):
    source_set_enabled(source=setup.source, enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        source_set_enabled(source=setup.source, enabled=True)
    assert setup.calls == [f"init:{setup.source.id}"]


def test_the_initial_sync_queues_every_customer_once(setup):
    for n in range(3):
        hub.customer_create(node=setup.node, data=customer_data(n))
    OutboxEntry.objects.all().delete()
    assert services.source_initial_sync(setup.source.id) == 3
    assert services.source_initial_sync(setup.source.id) == 0
    relay(setup)
    assert Link.objects.count() == 3


def test_retry_requeues_the_failed_records(setup):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    OutboxEntry.objects.all().delete()
    SyncIssue.objects.create(
        source=setup.source, kind="error", code="X", reason="r", subject_id=customer.id
    )
    assert services.sync_retry(setup.source) == 1
    assert OutboxEntry.objects.get().subject_id == customer.id
    items, total = selectors.sync_errors(setup.source, offset=0, limit=5)
    assert total == 1 and items[0]["resolvedAt"] is not None
    assert services.sync_retry(setup.source) == 0


def test_resync_clears_hashes_and_restarts(setup):
    hub.customer_create(node=setup.node, data=customer_data())
    services.source_initial_sync(setup.source.id)
    relay(setup)
    services.sync_resync(setup.source)
    assert Link.objects.get().hub_hash == ""
    assert services.source_initial_sync(setup.source.id) == 1


def test_tasks_return_quietly_when_the_source_is_gone(db):
    missing = "00000000-0000-0000-0000-000000000000"
    tasks.outbox_relay_task(missing)
    tasks.source_poll_task(missing)
    tasks.source_reconcile_task(missing)


def test_account_slots_hold_the_limit(db, settings):
    settings.SYNC_ACCOUNT_CONCURRENCY = 2
    with (
        account_slot("acct"),
        account_slot("acct"),
        pytest.raises(NoSlot),
        account_slot("acct", wait_seconds=0.1),
    ):
        pass
    with account_slot("acct"):
        assert AccountSlot.objects.filter(account="acct").count() == 2
