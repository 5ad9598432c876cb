import datetime as dt

import pytest

from hub import services as hub
from hub.models import Customer
from sync import selectors, services
from sync.models import Link, OutboxEntry, SyncIssue, SyncState

from .conftest import gateway, make_source, records
from .test_outbox import customer_data
from .test_push import relay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("query_path")]


def poll(setup):
    return services.source_poll(setup.source.id)


def entry(customer, system="news"):
    customer.refresh_from_db()
    return next(e for e in customer.base["subscriptions"] if e["id"] == system)


def test_a_send_record_with_no_hub_customer_creates_one(setup, fake_send):
    gateway(fake_send).add_subscriber(
        7, {"email": "grace@example.com", "firstName": "Grace", "news_status": "1"}
    )
    assert poll(setup) == 1
    customer = Customer.objects.get()
    assert customer.base["contacts"]["email"] == "grace@example.com"
    assert customer.updated_by == setup.source.id
    assert entry(customer)["subscribed"] is True
    assert not OutboxEntry.objects.exists()  # no echo
    assert Link.objects.get().subject_id == customer.id


def test_an_edit_in_send_reaches_the_hub_once(setup, fake_send):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    poll(setup)
    (identifier,) = records(fake_send)
    gateway(fake_send).update_subscriber(7, identifier, {"lastName": "Hopper"})
    poll(setup)
    customer.refresh_from_db()
    assert customer.base["lastName"] == "Hopper"
    updated_at = customer.updated_at
    assert poll(setup) == 0
    customer.refresh_from_db()
    assert customer.updated_at == updated_at
    assert not OutboxEntry.objects.exists()


def test_records_sharing_a_timestamp_are_not_skipped(setup, fake_send):
    fake = gateway(fake_send)
    first = fake.add_subscriber(7, {"email": "a@example.com"})
    poll(setup)
    second = fake.add_subscriber(7, {"email": "b@example.com"})
    second.attributes["lastModified"] = first.attributes["lastModified"]
    poll(setup)
    assert Customer.objects.count() == 2
    state = SyncState.objects.get()
    assert state.cursor_ids == sorted([first.identifier, second.identifier])


def test_without_write_permission_send_records_create_nothing(
    db, fake_send, relay_calls
):
    from tests.factories import NodeFactory

    node = NodeFactory()
    source = make_source(node, permission="R")
    gateway(fake_send).add_subscriber(7, {"email": "a@example.com"})
    services.source_poll(source.id)
    assert not Customer.objects.exists()


def test_a_disabled_source_pulls_nothing_and_catches_up_later(setup, fake_send):
    from sources.services import source_set_enabled

    source_set_enabled(source=setup.source, enabled=False)
    gateway(fake_send).add_subscriber(7, {"email": "a@example.com"})
    assert poll(setup) == 0
    source_set_enabled(source=setup.source, enabled=True)
    assert poll(setup) == 1


def test_the_later_change_wins_a_conflict_and_is_recorded(setup, fake_send):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    (identifier,) = records(fake_send)
    gateway(fake_send).update_subscriber(7, identifier, {"firstName": "FromSend"})
    hub.customer_patch(customer=customer, patch={"base": {"firstName": "FromHub"}})
    poll(setup)
    customer.refresh_from_db()
    assert customer.base["firstName"] == "FromHub"
    issue = SyncIssue.objects.get(kind="conflict")
    assert issue.payload["winner"] == "hub"
    relay(setup)
    assert records(fake_send)[identifier]["firstName"] == "FromHub"


def test_an_unsubscribe_in_send_updates_the_hub_entry(setup, fake_send):
    data = customer_data()
    data["base"]["subscriptions"] = [{"id": "news", "subscribed": True}]
    customer = hub.customer_create(node=setup.node, data=data)
    relay(setup)
    (identifier,) = records(fake_send)
    gateway(fake_send).modify_subscription_status("WF-NEWS", identifier, False)
    poll(setup)
    news = entry(customer)
    assert news["subscribed"] is False
    assert news["endDate"] == records(fake_send)[identifier]["lastModified"]


def test_an_older_subscribe_never_undoes_a_newer_unsubscribe(setup, fake_send):
    data = customer_data()
    data["base"]["subscriptions"] = [{"id": "news", "subscribed": False}]
    customer = hub.customer_create(node=setup.node, data=data)
    relay(setup)
    (identifier,) = records(fake_send)
    # Send subscribes first, the Hub unsubscribes again later: the poll
    # then sees Send's older subscribe.
    gateway(fake_send).modify_subscription_status("WF-NEWS", identifier, True)
    hub.customer_patch(
        customer=customer,
        patch={
            "base": {
                "subscriptions": [{"id": "news", "subscribed": True}],
            }
        },
    )
    hub.customer_patch(
        customer=customer,
        patch={"base": {"subscriptions": [{"id": "news", "subscribed": False}]}},
    )
    record = records(fake_send)[identifier]
    assert record["news_status"] == "1"
    poll(setup)
    assert entry(customer)["subscribed"] is False
    relay(setup)
    assert records(fake_send)[identifier]["news_status"] == "-1"


def test_a_hub_subscribe_older_than_an_unsubscribe_in_send_is_not_pushed(
    setup, fake_send
):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    (identifier,) = records(fake_send)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    hub.customer_patch(
        customer=customer,
        patch={
            "base": {
                "subscriptions": [{"id": "news", "subscribed": True, "updatedAt": past}]
            }
        },
    )
    gateway(fake_send).modify_subscription_status("WF-NEWS", identifier, True)
    gateway(fake_send).modify_subscription_status("WF-NEWS", identifier, False)
    relay(setup)
    assert records(fake_send)[identifier]["news_status"] == "-1"
    poll(setup)
    assert entry(customer)["subscribed"] is False
    assert SyncIssue.objects.get(kind="conflict").payload["winner"] == "send"


def test_pending_in_send_shows_as_pending(setup, fake_send):
    gateway(fake_send).add_subscriber(7, {"email": "a@example.com", "news_status": "0"})
    poll(setup)
    news = entry(Customer.objects.get())
    assert news["subscribed"] is None
    assert news["startDate"] is None


def test_a_record_deleted_in_send_is_unlinked_and_shown(setup, fake_send):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    (identifier,) = records(fake_send)
    gateway(fake_send).remove_subscriber(7, identifier)
    assert services.source_reconcile(setup.source.id) == 1
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert not Link.objects.exists()
    items, total = selectors.sync_errors(setup.source, offset=0, limit=10)
    assert total == 1 and items[0]["kind"] == "deleted"
    assert items[0]["customerId"] == str(customer.id)


def test_several_hub_matches_are_reported(setup, fake_send):
    for _ in range(2):
        hub.customer_create(
            node=setup.node, data=customer_data(1), source_id=setup.source.id
        )
    gateway(fake_send).add_subscriber(7, {"email": "ADA1@example.com"})
    poll(setup)
    issue = SyncIssue.objects.get()
    assert issue.code == "SYNC_SEVERAL_MATCHES"
    assert len(issue.payload["hub"]) == 2


def test_a_poll_reading_our_add_before_its_link_touches_no_customer(
    setup, fake_send, monkeypatch
):
    from sync import engine

    customer = hub.customer_create(node=setup.node, data=customer_data())
    real_add = type(gateway(fake_send)).add_subscribers

    def add_then_poll(self, userdb_id, batch):
        added = real_add(self, userdb_id, batch)
        monkeypatch.setattr(engine, "hub_matches", None)  # must not be needed
        poll(setup)
        return added

    monkeypatch.setattr(type(gateway(fake_send)), "add_subscribers", add_then_poll)
    relay(setup)
    customer.refresh_from_db()
    assert customer.updated_by is None
    link = Link.objects.get()
    assert link.subscriber_id is not None and link.pending_add is None
