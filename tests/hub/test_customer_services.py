import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from hub.models import Customer
from hub.services import (
    CustomerExists,
    customer_create,
    customer_delete,
    customer_patch,
    customer_replace,
)
from hub.signals import customer_changed
from tests.factories import AggregateNodeFactory, CustomerFactory, NodeFactory

pytestmark = pytest.mark.django_db

ADA = {
    "externalId": "ada-1",
    "base": {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "contacts": {"email": "ada@example.com"},
        "locale": "en_GB",
        "dob": "1815-12-10",
    },
}


@pytest.fixture
def node():
    return NodeFactory()


@pytest.fixture
def signals():
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    customer_changed.connect(receiver)
    yield received
    customer_changed.disconnect(receiver)


def test_it_creates_a_customer_with_its_header(node):
    with time_machine.travel("2026-05-01T10:00:00Z", tick=False):
        customer = customer_create(node=node, data=ADA)

    document = customer.as_document()
    assert document["externalId"] == "ada-1"
    assert document["registeredAt"] == "2026-05-01T10:00:00Z"
    assert document["updatedAt"] == "2026-05-01T10:00:00Z"
    assert document["tags"] == {"auto": [], "manual": []}
    assert document["enabled"] is True


def test_it_records_the_writing_source(node):
    source_id = "5b0c52a3-53b3-4e2c-a6fb-3e8c9f8b2c44"

    customer = customer_create(node=node, data=ADA, source_id=source_id)

    info = customer.as_document()["sourceInfo"]
    assert info == {"registeredBy": source_id, "updatedBy": source_id}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"base": {"contacts": {"email": "not-an-email"}}}, "base.contacts.email"),
        ({"base": {"locale": "english"}}, "base.locale"),
        ({"base": {"dob": "10/12/1815"}}, "base.dob"),
        ({"base": {"timezone": "Mars/Olympus"}}, "base.timezone"),
        ({"base": {"firstName": 7}}, "base.firstName"),
        ({"base": {"nickname": "Ada"}}, "base.nickname"),
        ({"base": {"address": {"geo": {"lat": 123}}}}, "base.address.geo.lat"),
        ({"base": {"subscriptions": [{"name": "no id"}]}}, "base.subscriptions.0.id"),
        ({"base": {"subscriptions": [None]}}, "base.subscriptions.0"),
        (
            {"base": {"subscriptions": [{"id": "news", "preferences": [None]}]}},
            "base.subscriptions.0.preferences.0",
        ),
        ({"tags": {"manual": [1]}}, "tags.manual.0"),
        ({"enabled": "yes"}, "enabled"),
        ({"externalId": ""}, "externalId"),
        ({"extra": {"a": 1}}, "extra"),
        ({"color": "blue"}, "color"),
    ],
)
def test_a_bad_document_names_the_field(node, data, field):
    with pytest.raises(ValidationError) as error:
        customer_create(node=node, data=data)

    assert field in error.value.error_dict
    assert not Customer.objects.exists()


@pytest.mark.parametrize("section", ["base", "extended", "extra"])
def test_each_section_is_limited_to_64_kb(node, section):
    big = "x" * (64 * 1024 + 1)
    value = big if section == "extra" else {"firstName": big}
    if section == "extended":
        value = {"notes": big}

    with pytest.raises(ValidationError) as error:
        customer_create(node=node, data={section: value})

    assert error.value.error_dict[section][0].code == "too_large"


def test_the_external_id_is_unique_in_a_node(node):
    first = customer_create(node=node, data=ADA)

    with pytest.raises(CustomerExists) as error:
        customer_create(node=node, data=ADA)

    assert error.value.customer_id == first.id


def test_the_same_external_id_may_live_in_two_nodes(node):
    customer_create(node=node, data=ADA)
    customer_create(node=NodeFactory(workspace=node.workspace), data=ADA)

    assert Customer.objects.count() == 2


def test_the_database_holds_external_id_uniqueness(node):
    CustomerFactory(node=node, external_id="x")

    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(node=node, external_id="x")


def test_customers_without_external_id_do_not_collide(node):
    Customer.objects.create(node=node)
    Customer.objects.create(node=node)

    assert Customer.objects.count() == 2


def test_an_aggregate_node_takes_no_writes():
    aggregate = AggregateNodeFactory()

    with pytest.raises(ValidationError) as error:
        customer_create(node=aggregate, data=ADA)

    assert error.value.error_dict["nodeId"][0].code == "NODE_READ_ONLY"


def test_patch_merges_at_any_depth_and_replaces_lists(node):
    customer = customer_create(
        node=node, data={**ADA, "tags": {"manual": ["a", "b"], "auto": ["x"]}}
    )

    patched = customer_patch(
        customer=customer,
        patch={
            "base": {"contacts": {"phone": "+39 02 1234"}, "lastName": None},
            "tags": {"manual": ["c"]},
        },
    )

    assert patched.base["contacts"] == {
        "email": "ada@example.com",
        "phone": "+39 02 1234",
    }
    assert "lastName" not in patched.base
    assert patched.base["firstName"] == "Ada"
    assert patched.tags == {"manual": ["c"], "auto": ["x"]}


def test_replace_clears_what_is_absent(node):
    customer = customer_create(node=node, data=ADA)

    replaced = customer_replace(
        customer=customer, data={"base": {"firstName": "Augusta"}}
    )

    assert replaced.base == {"firstName": "Augusta"}
    assert replaced.external_id is None


def test_updated_at_moves_only_when_something_changes(node, signals):
    with time_machine.travel("2026-05-01T10:00:00Z", tick=False):
        customer = customer_create(node=node, data=ADA)
    with time_machine.travel("2026-05-02T10:00:00Z", tick=False):
        same = customer_patch(customer=customer, patch={"base": {"firstName": "Ada"}})
    with time_machine.travel("2026-05-03T10:00:00Z", tick=False):
        changed = customer_patch(customer=customer, patch={"base": {"title": "Dr"}})

    assert same.as_document()["updatedAt"] == "2026-05-01T10:00:00Z"
    assert changed.as_document()["updatedAt"] == "2026-05-03T10:00:00Z"
    assert [signal["action"] for signal in signals] == ["created", "updated"]


def test_the_signal_carries_both_documents(node, signals):
    customer = customer_create(node=node, data=ADA)
    customer_patch(customer=customer, patch={"base": {"firstName": "Augusta"}})
    customer_delete(customer=customer)

    created, updated, deleted = signals
    assert created["before"] is None
    assert updated["before"]["base"]["firstName"] == "Ada"
    assert updated["after"]["base"]["firstName"] == "Augusta"
    assert deleted["after"] is None
    assert not Customer.objects.exists()


def test_a_failed_receiver_rolls_back_the_change(node):
    def broken(**kwargs):
        raise RuntimeError("outbox unavailable")

    customer_changed.connect(broken)
    try:
        with pytest.raises(RuntimeError):
            customer_create(node=node, data=ADA)
    finally:
        customer_changed.disconnect(broken)

    assert not Customer.objects.exists()


class TestSubscriptions:
    def entry(self, subscribed, **extra):
        return {"id": "newsletter", "subscribed": subscribed, **extra}

    def test_subscribing_sets_the_start_date(self, node):
        with time_machine.travel("2026-05-01T10:00:00Z", tick=False):
            customer = customer_create(
                node=node, data={"base": {"subscriptions": [self.entry(True)]}}
            )

        entry = customer.base["subscriptions"][0]
        assert entry["startDate"].startswith("2026-05-01T10:00:00")
        assert entry["endDate"] is None
        assert entry["updatedAt"].startswith("2026-05-01T10:00:00")

    def test_unsubscribing_sets_the_end_date_to_the_moment(self, node, signals):
        with time_machine.travel("2026-05-01T10:00:00Z", tick=False):
            customer = customer_create(
                node=node, data={"base": {"subscriptions": [self.entry(True)]}}
            )
        stored = customer.base["subscriptions"][0]
        with time_machine.travel("2026-05-09T08:30:00Z", tick=False):
            customer = customer_patch(
                customer=customer,
                patch={"base": {"subscriptions": [{**stored, "subscribed": False}]}},
            )

        entry = customer.base["subscriptions"][0]
        assert entry["startDate"] == stored["startDate"]
        assert entry["endDate"].startswith("2026-05-09T08:30:00")
        assert entry["updatedAt"].startswith("2026-05-09T08:30:00")
        change = signals[-1]["subscription_changes"][0]
        assert (change.subscription_id, change.old, change.new) == (
            "newsletter",
            True,
            False,
        )

    def test_a_date_given_with_the_change_wins(self, node):
        customer = customer_create(
            node=node, data={"base": {"subscriptions": [self.entry(True)]}}
        )

        customer = customer_patch(
            customer=customer,
            patch={
                "base": {
                    "subscriptions": [
                        self.entry(
                            False,
                            endDate="2026-04-01T00:00:00Z",
                            updatedAt="2026-04-01T00:00:00Z",
                        )
                    ]
                }
            },
        )

        entry = customer.base["subscriptions"][0]
        assert entry["endDate"] == "2026-04-01T00:00:00Z"
        assert entry["updatedAt"] == "2026-04-01T00:00:00Z"

    def test_a_subscription_listed_twice_is_refused(self, node):
        with pytest.raises(ValidationError) as error:
            customer_create(
                node=node,
                data={"base": {"subscriptions": [self.entry(True), self.entry(False)]}},
            )

        assert error.value.error_dict["base.subscriptions"][0].code == "duplicate"

    def test_an_unchanged_status_is_no_subscription_change(self, node, signals):
        customer = customer_create(
            node=node, data={"base": {"subscriptions": [self.entry(True)]}}
        )
        customer_patch(customer=customer, patch={"base": {"firstName": "Ada"}})

        assert signals[-1]["subscription_changes"] == []


@pytest.mark.parametrize("section", ["base", "extended", "consents", "tags"])
def test_a_section_that_is_not_an_object_is_refused(node, section):
    with pytest.raises(ValidationError) as error:
        customer_create(node=node, data={section: ["not", "an", "object"]})

    assert section in error.value.error_dict
