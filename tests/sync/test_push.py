import pytest

from hub import services as hub
from sync import services
from sync.models import Link, OutboxEntry, SyncIssue, SyncRun

from .conftest import gateway, records
from .test_outbox import customer_data

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("query_path")]


def relay(setup):
    while services.outbox_relay(setup.source.id):
        pass


def test_new_customers_are_added_with_their_mapped_fields(setup, fake_send):
    customer = hub.customer_create(
        node=setup.node, data=customer_data(1, dob="1990-05-17")
    )
    relay(setup)
    (record,) = records(fake_send).values()
    assert record["email"] == "ada1@example.com"
    assert record["firstName"] == "Ada1"
    assert record["birthday"] == "1990-05-17"
    link = Link.objects.get()
    assert link.subject_id == customer.id
    assert not OutboxEntry.objects.exists()
    run = SyncRun.objects.get(kind="push")
    assert (run.added, run.failed) == (1, 0)


def test_an_update_sends_only_what_changed_and_a_delete_removes(setup, fake_send):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    hub.customer_patch(customer=customer, patch={"base": {"lastName": "King"}})
    hub.customer_patch(customer=customer, patch={"base": {"firstName": "Augusta"}})
    relay(setup)
    (record,) = records(fake_send).values()
    assert (record["firstName"], record["lastName"]) == ("Augusta", "King")
    hub.customer_delete(customer=customer)
    relay(setup)
    assert records(fake_send) == {}
    assert not Link.objects.exists()


def test_a_disabled_customer_is_removed_from_send(setup, fake_send):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    hub.customer_patch(customer=customer, patch={"enabled": False})
    relay(setup)
    assert records(fake_send) == {}


def test_an_unchanged_customer_writes_nothing(setup, fake_send, monkeypatch):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    before = records(fake_send)
    OutboxEntry.objects.create(
        source=setup.source, subject_id=customer.id, action="changed"
    )
    relay(setup)
    assert records(fake_send) == before
    assert SyncRun.objects.order_by("-id")[0].unchanged == 1


def test_an_existing_send_record_is_matched_by_email_not_duplicated(setup, fake_send):
    gateway(fake_send).add_subscriber(7, {"email": "ada1@example.com"})
    hub.customer_create(
        node=setup.node,
        data={"base": {"firstName": "Ada", "contacts": {"email": "ada1@example.com"}}},
    )
    relay(setup)
    (record,) = records(fake_send).values()
    assert record["firstName"] == "Ada"


def test_several_matches_are_reported_not_written(setup, fake_send):
    for _ in range(2):
        gateway(fake_send).add_subscriber(7, {"email": "ada1@example.com"})
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    assert all(r.get("firstName") is None for r in records(fake_send).values())
    issue = SyncIssue.objects.get()
    assert (issue.kind, issue.code, issue.subject_id) == (
        "attention",
        "SYNC_SEVERAL_MATCHES",
        customer.id,
    )
    assert issue.payload["hub"]["email"] == "ada1@example.com"
    assert len(issue.payload["send"]) == 2


def test_a_value_that_cannot_be_converted_fails_that_record_only(setup, fake_send):
    setup.source.field_map.filter(hub_field="base.lastName").update(
        hub_field="tags.manual"
    )
    bad = customer_data(1)
    bad["tags"] = {"manual": ["x" * 200, "y" * 100]}
    hub.customer_create(node=setup.node, data=bad)
    hub.customer_create(node=setup.node, data=customer_data(2))
    relay(setup)
    assert len(records(fake_send)) == 1
    issue = SyncIssue.objects.get()
    assert issue.kind == "error"
    assert "tags.manual" in issue.reason and "255" in issue.reason
    assert "test-api-key" not in str(issue.payload)


def test_a_lost_add_answer_does_not_duplicate_on_retry(setup, fake_send, lost_adds):
    hub.customer_create(node=setup.node, data=customer_data())
    services.outbox_relay(setup.source.id)
    assert len(records(fake_send)) == 1  # not repeated blindly in the call
    assert Link.objects.get().subscriber_id is None  # so the retry looks up
    row = OutboxEntry.objects.get()
    assert row.attempts == 1 and row.claim is None
    lost_adds()
    OutboxEntry.objects.update(available_at=row.created_at)
    relay(setup)
    assert len(records(fake_send)) == 1
    link = Link.objects.get()
    assert link.subscriber_id is not None and link.pending_add is None


def test_subscription_changes_call_the_webform(setup, fake_send, monkeypatch):
    customer = hub.customer_create(node=setup.node, data=customer_data())
    relay(setup)
    calls = []
    fake = type(gateway(fake_send))
    real = fake.modify_subscription_status

    def spy(self, webform, identifier, subscribed):
        calls.append((webform, subscribed))
        real(self, webform, identifier, subscribed)

    monkeypatch.setattr(fake, "modify_subscription_status", spy)
    hub.customer_patch(
        customer=customer,
        patch={"base": {"subscriptions": [{"id": "news", "subscribed": True}]}},
    )
    relay(setup)
    hub.customer_patch(
        customer=customer,
        patch={"base": {"subscriptions": [{"id": "news", "subscribed": False}]}},
    )
    relay(setup)
    assert calls == [("WF-NEWS", True), ("WF-NEWS", False)]
    (record,) = records(fake_send).values()
    assert record["news_status"] == "-1"


def test_a_new_subscribed_customer_is_added_subscribed(setup, fake_send):
    data = customer_data()
    data["base"]["subscriptions"] = [{"id": "news", "subscribed": True}]
    hub.customer_create(node=setup.node, data=data)
    relay(setup)
    (record,) = records(fake_send).values()
    assert record["news_status"] == "1"


def test_an_email_in_other_case_in_send_is_matched_not_duplicated(setup, fake_send):
    gateway(fake_send).add_subscriber(7, {"email": " Ada.Lovelace@Example.COM"})
    hub.customer_create(
        node=setup.node,
        data={
            "base": {
                "firstName": "Ada",
                "contacts": {"email": "ada.lovelace@example.com"},
            }
        },
    )
    relay(setup)
    (record,) = records(fake_send).values()
    assert record["firstName"] == "Ada"
