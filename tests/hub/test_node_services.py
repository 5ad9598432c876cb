import pytest
from django.core.exceptions import ValidationError

from hub.services import (
    aggregate_node_create,
    entry_node_create,
    node_delete,
    node_update,
)
from tests.factories import (
    AggregateNodeFactory,
    ApiSourceFactory,
    CustomerFactory,
    NodeFactory,
    WorkspaceFactory,
)

pytestmark = pytest.mark.django_db


def test_an_aggregate_merges_two_or_more_entry_nodes():
    workspace = WorkspaceFactory()
    entries = [NodeFactory(workspace=workspace) for _ in range(2)]

    aggregate = aggregate_node_create(
        workspace=workspace,
        name="All",
        entry_nodes=entries,
        matching_properties=["base.contacts.email"],
    )

    assert set(aggregate.entry_nodes.all()) == set(entries)
    assert aggregate.is_aggregate


@pytest.mark.parametrize(
    ("count", "paths", "field"),
    [
        (1, ["base.contacts.email"], "entryNodes"),
        (2, [], "matchingPolicy.properties"),
        (2, ["base.subscriptions"], "matchingPolicy.properties"),
    ],
)
def test_a_bad_aggregate_names_the_field(count, paths, field):
    workspace = WorkspaceFactory()
    entries = [NodeFactory(workspace=workspace) for _ in range(count)]

    with pytest.raises(ValidationError) as error:
        aggregate_node_create(
            workspace=workspace,
            name="All",
            entry_nodes=entries,
            matching_properties=paths,
        )

    assert field in error.value.error_dict


def test_an_aggregate_takes_entry_nodes_of_its_workspace_only():
    workspace = WorkspaceFactory()
    entries = [NodeFactory(workspace=workspace), NodeFactory()]

    with pytest.raises(ValidationError) as error:
        aggregate_node_create(
            workspace=workspace,
            name="All",
            entry_nodes=entries,
            matching_properties=["base.contacts.email"],
        )

    assert "entryNodes" in error.value.error_dict


def test_an_aggregate_cannot_merge_an_aggregate():
    aggregate = AggregateNodeFactory()
    entry = NodeFactory(workspace=aggregate.workspace)

    with pytest.raises(ValidationError):
        aggregate_node_create(
            workspace=aggregate.workspace,
            name="Nested",
            entry_nodes=[aggregate, entry],
            matching_properties=["base.contacts.email"],
        )


def test_node_names_are_unique_in_a_workspace():
    node = NodeFactory()

    with pytest.raises(ValidationError) as error:
        entry_node_create(workspace=node.workspace, name=node.name)

    assert error.value.error_dict["name"][0].code == "unique"


def test_an_aggregate_is_empty_when_its_entries_are():
    aggregate = AggregateNodeFactory()
    assert aggregate.is_empty()

    CustomerFactory(node=aggregate.entry_nodes.first())

    assert not aggregate.is_empty()


def test_a_node_is_empty_only_without_any_customer():
    node = NodeFactory()
    CustomerFactory(node=node, enabled=False)

    assert not node.is_empty()


@pytest.mark.parametrize("holds", ["customer", "source", "aggregate"])
def test_a_node_in_use_cannot_be_deleted(holds):
    node = NodeFactory()
    if holds == "customer":
        CustomerFactory(node=node)
    if holds == "source":
        ApiSourceFactory(workspace=node.workspace, node=node)
    if holds == "aggregate":
        AggregateNodeFactory(
            workspace=node.workspace,
            entries=[node, NodeFactory(workspace=node.workspace)],
        )

    with pytest.raises(ValidationError):
        node_delete(node=node)


def test_an_unused_node_is_deleted():
    node = NodeFactory()

    node_delete(node=node)

    assert not type(node).objects.filter(pk=node.pk).exists()


def test_renaming_a_node_keeps_its_kind():
    node = NodeFactory()

    node = node_update(node=node, name="Renamed", description="Shop")

    assert (node.name, node.description, node.kind) == ("Renamed", "Shop", "ENTRY")
