import pytest
from django.utils import timezone

from hub import services as hub
from hub.models import Customer
from sources.send.fake import FakeSendGateway
from sources.send.gateway import IDENTIFIER_FIELD
from sync import batches, engine, selectors, services
from sync.models import InitialChunk, Link, OutboxEntry, SyncRun, SyncState

from .conftest import gateway, records
from .test_outbox import customer_data
from .test_push import relay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("query_path")]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(engine, "CHUNK_SIZE", 2)


def initial(setup, count=3):
    customers = [
        hub.customer_create(node=setup.node, data=customer_data(n))
        for n in range(count)
    ]
    OutboxEntry.objects.all().delete()
    assert services.source_initial_sync(setup.source.id) == count
    return customers


def emails(fake_send):
    return sorted(record["email"] for record in records(fake_send).values())


def test_the_initial_sync_splits_the_node_into_chunks(setup, fake_send, small_chunks):
    initial(setup)
    assert not OutboxEntry.objects.exists()
    chunks = list(InitialChunk.objects.order_by("id"))
    assert [chunk.size for chunk in chunks] == [2, 1]
    assert chunks[0].after_id is None and chunks[-1].upto_id is None
    assert chunks[0].upto_id == chunks[1].after_id
    relay(setup)
    assert emails(fake_send) == [f"ada{n}@example.com" for n in range(3)]
    assert not InitialChunk.objects.exists()
    assert Link.objects.filter(subscriber_id__isnull=False).count() == 3


def test_sync_state_counts_what_the_chunks_owe(setup):
    initial(setup)
    state = selectors.sync_state(setup.source)
    assert state["pending"] == 3
    assert state["lag"]["oldestPendingSeconds"] >= 0


def test_an_outbox_row_waits_for_the_chunk_that_owes_its_customer(setup, fake_send):
    customers = initial(setup)
    hub.customer_patch(customer=customers[0], patch={"base": {"firstName": "Eve"}})
    hub.customer_create(node=setup.node, data=customer_data(3))
    # The rows come first and wait: pushed now, both would be added twice.
    services.outbox_relay(setup.source.id)
    assert records(fake_send) == {}
    assert OutboxEntry.objects.filter(available_at__gt=timezone.now()).count() == 2
    relay(setup)
    assert emails(fake_send) == [f"ada{n}@example.com" for n in range(4)]
    names = {r["email"]: r["firstName"] for r in records(fake_send).values()}
    assert names["ada0@example.com"] == "Eve"
    assert not OutboxEntry.objects.exists()


def test_a_customer_deleted_before_its_chunk_ran_is_not_added(setup, fake_send):
    customers = initial(setup)
    hub.customer_delete(customer=customers[1])
    relay(setup)
    assert emails(fake_send) == ["ada0@example.com", "ada2@example.com"]
    assert not OutboxEntry.objects.exists()


def test_a_chunk_whose_add_answer_was_lost_looks_up_on_retry(
    setup, fake_send, lost_adds
):
    initial(setup)
    services.outbox_relay(setup.source.id)
    assert len(records(fake_send)) == 3
    chunk = InitialChunk.objects.get()
    assert chunk.attempts == 1 and chunk.keys == []
    lost_adds()
    InitialChunk.objects.update(claimed_until=None)
    relay(setup)
    assert len(records(fake_send)) == 3
    assert Link.objects.filter(subscriber_id__isnull=False).count() == 3


def test_a_chunk_that_grew_is_read_in_parts(setup, fake_send, monkeypatch):
    monkeypatch.setattr(engine, "CHUNK_LIMIT", 2)
    initial(setup, count=5)
    assert InitialChunk.objects.count() == 1
    relay(setup)
    assert emails(fake_send) == [f"ada{n}@example.com" for n in range(5)]
    assert not InitialChunk.objects.exists()


def test_the_sweep_waits_for_the_initial_chunks(setup, fake_send, small_chunks):
    customers = initial(setup)
    first = min(customers, key=lambda customer: customer.id)
    services.outbox_relay(setup.source.id)
    assert Link.objects.filter(subject_id=first.id).exists()
    # A bulk write, past the services, to a customer already pushed.
    Customer.objects.filter(pk=first.pk).update(
        base={**first.base, "firstName": "Bulk"}, updated_at=timezone.now()
    )
    services.outbox_sweep()
    assert not OutboxEntry.objects.exists()
    relay(setup)
    services.outbox_sweep()
    relay(setup)
    names = {r["email"]: r["firstName"] for r in records(fake_send).values()}
    assert names[first.base["contacts"]["email"]] == "Bulk"


def test_a_poll_reads_whole_only_the_records_that_moved(setup, fake_send, monkeypatch):
    customers = initial(setup)
    relay(setup)
    reads: list[str] = []
    listed = FakeSendGateway.find_subscribers_by

    def counted(self, userdb_id, where, **kwargs):
        if where and where[0].name == IDENTIFIER_FIELD:
            reads.append(where[0].value)
        return listed(self, userdb_id, where, **kwargs)

    monkeypatch.setattr(FakeSendGateway, "find_subscribers_by", counted)
    services.source_poll(setup.source.id)
    assert reads == []
    identifier = Link.objects.get(subject_id=customers[2].id).subscriber_id
    gateway(fake_send).update_subscriber(7, identifier, {"firstName": "Send"})
    services.source_poll(setup.source.id)
    assert reads == [str(identifier)]
    customers[2].refresh_from_db()
    assert customers[2].base["firstName"] == "Send"


def test_a_poll_reading_a_chunk_add_before_its_link_touches_no_customer(
    setup, fake_send, monkeypatch
):
    customers = initial(setup)
    real_add = FakeSendGateway.add_subscribers

    def add_then_poll(self, userdb_id, batch):
        added = real_add(self, userdb_id, batch)
        monkeypatch.setattr(engine, "hub_matches", None)  # must not be needed
        services.source_poll(setup.source.id)
        return added

    monkeypatch.setattr(FakeSendGateway, "add_subscribers", add_then_poll)
    relay(setup)
    for customer in customers:
        customer.refresh_from_db()
        assert customer.updated_by is None
    assert Link.objects.filter(subscriber_id__isnull=False).count() == 3
    # The held poll counted the adds whose links were not written yet.
    assert SyncState.objects.get(source=setup.source).only_ours


def test_the_poll_holds_its_cursor_while_chunks_remain(
    setup, fake_send, small_chunks, monkeypatch
):
    customers = initial(setup)
    services.outbox_relay(setup.source.id)  # the first chunk only
    customers_ids = [customer.id for customer in customers]
    # The chunks go by id: take a customer the first one added.
    link = Link.objects.get(subscriber_id__isnull=False, subject_id=min(customers_ids))
    gateway(fake_send).update_subscriber(7, link.subscriber_id, {"firstName": "Send"})
    pages = []
    listed = FakeSendGateway.find_subscribers_by

    def counted(self, *args, **kwargs):
        pages.append(args)
        return listed(self, *args, **kwargs)

    monkeypatch.setattr(FakeSendGateway, "find_subscribers_by", counted)
    services.source_poll(setup.source.id)
    assert pages == []
    edited = Customer.objects.get(pk=link.subject_id)
    assert edited.base["firstName"] != "Send"
    state = SyncState.objects.get(source=setup.source)
    assert state.only_ours and state.last_poll_ok_at is None
    relay(setup)
    services.source_poll(setup.source.id)
    edited.refresh_from_db()
    assert edited.base["firstName"] == "Send"


def test_a_held_poll_notices_a_record_someone_else_added(setup, fake_send, lookups):
    initial(setup)
    gateway(fake_send).add_subscriber(7, {"email": "grace@example.com"})
    services.source_poll(setup.source.id)
    assert InitialChunk.objects.exists()
    assert not SyncState.objects.get(source=setup.source).only_ours
    relay(setup)
    assert lookups
    services.source_poll(setup.source.id)
    assert Customer.objects.filter(base__contacts__email="grace@example.com").exists()


def test_a_held_poll_counts_the_adds_whose_answers_were_lost(
    setup, fake_send, lost_adds
):
    initial(setup)
    services.outbox_relay(setup.source.id)
    assert InitialChunk.objects.get().sending == 3
    services.source_poll(setup.source.id)
    assert SyncState.objects.get(source=setup.source).only_ours
    lost_adds()
    InitialChunk.objects.update(claimed_until=None)
    relay(setup)
    assert len(records(fake_send)) == 3
    assert batches.records_added(setup.source.id) == 3


def test_what_the_sync_may_have_added_is_counted_once(setup, fake_send, monkeypatch):
    initial(setup)
    counted = []
    real_add = FakeSendGateway.add_subscribers

    def add_and_count(self, userdb_id, batch):
        added = real_add(self, userdb_id, batch)
        counted.append(batches.records_added(setup.source.id))
        return added

    monkeypatch.setattr(FakeSendGateway, "add_subscribers", add_and_count)
    relay(setup)
    assert counted == [3]
    assert batches.records_added(setup.source.id) == 3


def test_no_reconciliation_runs_while_chunks_remain(setup, fake_send):
    initial(setup)
    assert services.source_reconcile(setup.source.id) == 0
    assert not SyncRun.objects.filter(kind=SyncRun.Kind.RECONCILE).exists()
    relay(setup)
    services.source_reconcile(setup.source.id)
    assert SyncRun.objects.filter(kind=SyncRun.Kind.RECONCILE).exists()


def test_a_chunk_whose_customer_already_has_a_link_row_still_links_it(setup, fake_send):
    customers = initial(setup)
    # Left by a poll that matched a Send record to it, say.
    Link.objects.create(source=setup.source, subject_id=customers[1].id)
    relay(setup)
    assert len(records(fake_send)) == 3
    assert Link.objects.filter(subscriber_id__isnull=False).count() == 3


def test_a_retried_chunk_read_in_parts_looks_up_its_rest_too(
    setup, fake_send, monkeypatch, lost_adds
):
    monkeypatch.setattr(engine, "CHUNK_LIMIT", 2)
    initial(setup, count=4)
    services.outbox_relay(setup.source.id)
    lost_adds()
    InitialChunk.objects.update(claimed_until=None)
    services.outbox_relay(setup.source.id)
    assert InitialChunk.objects.get().attempts == 2
    relay(setup)
    assert emails(fake_send) == [f"ada{n}@example.com" for n in range(4)]


def test_links_written_in_one_copy_keep_every_character(setup):
    customer = hub.customer_create(node=setup.node, data=customer_data(1))
    values = {"email": "a\\b@example.com", "notes": 'tab\there\nline "q" \\n é'}
    added = batches.Added(
        subject_id=customer.id,
        subscriber_id=41,
        hub_hash="h",
        send_hash="s",
        send_stamp="2026-12-04 01:02:03\\x",
        values=values,
        subscriptions={"news": "1"},
    )
    batches.save_adds(setup.source.id, [added], timezone.now(), new=True)
    link = Link.objects.get(subject_id=customer.id)
    assert (link.subscriber_id, link.values, link.send_stamp) == (
        41,
        values,
        "2026-12-04 01:02:03\\x",
    )
    assert link.subscriptions == {"news": "1"} and link.pending_add is None
