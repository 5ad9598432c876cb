from typing import cast

import pytest
from django.db import transaction

from hub import services as hub
from hub.models import Node
from sync import services
from sync.models import OutboxEntry
from tests.factories import AggregateNodeFactory, NodeFactory

from .conftest import make_source

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("query_path")]


def customer_data(n=1, **base):
    return {
        "base": {"firstName": f"Ada{n}", "contacts": {"email": f"ada{n}@example.com"}}
        | base
    }


def test_a_customer_write_adds_an_outbox_row_and_a_nudge_on_commit(
    setup, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        customer = hub.customer_create(node=setup.node, data=customer_data())
    row = OutboxEntry.objects.get()
    assert (row.source_id, row.subject_id, row.action) == (
        setup.source.id,
        customer.id,
        "changed",
    )
    assert len(callbacks) == 1
    assert setup.calls == [str(setup.source.id)]


def test_the_outbox_row_rolls_back_with_the_change(setup):
    with pytest.raises(RuntimeError), transaction.atomic():
        hub.customer_create(node=setup.node, data=customer_data())
        raise RuntimeError
    assert not OutboxEntry.objects.exists()


def test_updates_deletes_and_subscriptions_are_recorded(setup):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    hub.customer_patch(customer=customer, patch={"base": {"lastName": "King"}})
    hub.customer_patch(
        customer=customer,
        patch={"base": {"subscriptions": [{"id": "news", "subscribed": True}]}},
    )
    hub.customer_delete(customer=customer)
    actions = list(OutboxEntry.objects.values_list("action", flat=True))
    assert actions == ["changed", "changed", "changed", "deleted"]


def test_a_write_by_the_source_itself_makes_no_row_for_it(setup):
    hub.customer_create(
        node=setup.node, data=customer_data(), source_id=setup.source.id
    )
    assert not OutboxEntry.objects.exists()


def test_rows_accumulate_while_the_source_is_disabled(db, fake_send, relay_calls):
    node = cast(Node, NodeFactory())
    make_source(node, enabled=False)
    hub.customer_create(node=node, data=customer_data())
    assert OutboxEntry.objects.count() == 1
    assert services.outbox_relay(OutboxEntry.objects.get().source_id) == 0
    assert OutboxEntry.objects.count() == 1


def test_an_entry_node_change_reaches_the_aggregate_source(db, fake_send, relay_calls):
    aggregate = cast(Node, AggregateNodeFactory())
    entry = aggregate.entry_nodes.all()[0]
    source = make_source(aggregate, permission="R")
    customer = hub.customer_create(node=entry, data=customer_data())
    (row,) = OutboxEntry.objects.all()
    assert row.source_id == source.id
    assert row.subject_id != customer.id  # the profile's id


def test_the_sweep_queues_customers_written_past_the_services(setup):
    services.source_initial_sync(setup.source.id)
    services.outbox_relay(setup.source.id)
    from tests.factories import CustomerFactory

    CustomerFactory(node=setup.node)  # a bulk path: no signal
    assert not OutboxEntry.objects.exists()
    services.outbox_sweep()
    assert OutboxEntry.objects.count() == 1
    services.outbox_sweep()
    assert OutboxEntry.objects.count() == 1
