import pytest
import time_machine

from hub.selectors import aggregate_profiles, profile_id
from hub.services import customer_create
from tests.factories import AggregateNodeFactory, NodeFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def nodes():
    workspace = WorkspaceFactory()
    shop, app = NodeFactory(workspace=workspace), NodeFactory(workspace=workspace)
    aggregate = AggregateNodeFactory(workspace=workspace, entries=[shop, app])
    return shop, app, aggregate


def person(email, **base):
    return {"base": {"contacts": {"email": email}, **base}}


def at(moment, node, data):
    with time_machine.travel(moment, tick=False):
        return customer_create(node=node, data=data)


def test_customers_sharing_the_key_are_one_profile(nodes):
    shop, app, aggregate = nodes
    older = at("2026-01-01T00:00:00Z", shop, person("ada@example.com", firstName="A"))
    newer = at("2026-02-01T00:00:00Z", app, person("ADA@example.com", lastName="L"))
    at("2026-01-15T00:00:00Z", app, person("bob@example.com"))

    profiles = list(aggregate_profiles(aggregate))

    assert len(profiles) == 2
    ada = next(p for p in profiles if len(p["memberIds"]) == 2)
    assert sorted(ada["memberIds"]) == sorted([str(older.id), str(newer.id)])
    assert ada["base"]["firstName"] == "A"
    assert ada["base"]["lastName"] == "L"
    assert ada["base"]["contacts"]["email"] == "ADA@example.com"
    assert ada["id"] == str(profile_id(aggregate, ("ada@example.com",)))
    assert ada["nodeId"] == str(aggregate.id)


def test_values_come_from_the_most_recently_updated_customer(nodes):
    shop, app, aggregate = nodes
    at("2026-02-01T00:00:00Z", shop, person("ada@example.com", firstName="New"))
    at("2026-01-01T00:00:00Z", app, person("ada@example.com", firstName="Old"))

    (profile,) = aggregate_profiles(aggregate)

    assert profile["base"]["firstName"] == "New"


def test_case_sensitive_policies_keep_cases_apart(nodes):
    shop, app, aggregate = nodes
    aggregate.matching_case_sensitive = True
    aggregate.save()
    at("2026-01-01T00:00:00Z", shop, person("ada@example.com"))
    at("2026-01-02T00:00:00Z", app, person("ADA@example.com"))

    assert len(list(aggregate_profiles(aggregate))) == 2


def test_a_customer_without_the_key_stays_alone(nodes):
    shop, app, aggregate = nodes
    lone = at("2026-01-01T00:00:00Z", shop, {"base": {"firstName": "No email"}})
    at("2026-01-02T00:00:00Z", app, {"base": {"firstName": "Nor here"}})

    profiles = list(aggregate_profiles(aggregate))

    assert len(profiles) == 2
    assert str(lone.id) in {p["id"] for p in profiles}


def test_subscriptions_are_the_latest_snapshot_per_id(nodes):
    shop, app, aggregate = nodes
    at(
        "2026-01-01T00:00:00Z",
        shop,
        person("ada@example.com", subscriptions=[{"id": "news", "subscribed": True}]),
    )
    at(
        "2026-03-01T00:00:00Z",
        app,
        person("ada@example.com", subscriptions=[{"id": "news", "subscribed": False}]),
    )

    (profile,) = aggregate_profiles(aggregate)

    (entry,) = profile["base"]["subscriptions"]
    assert entry["subscribed"] is False
