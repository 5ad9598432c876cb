import pytest

from hub.models import Node
from tests.factories import ApiSourceFactory, CustomerFactory, NodeFactory

from .conftest import assert_error, ws_url

pytestmark = pytest.mark.django_db

ENTRIES = "configuration/nodes/entries"
AGGREGATES = "configuration/nodes/aggregates"


def test_entry_nodes_are_created_listed_read_updated_and_deleted(admin, workspace):
    created = admin.post(
        ws_url(workspace, ENTRIES),
        {"name": "Shop", "description": "web"},
        format="json",
    )
    assert created.status_code == 201
    node_id = created.json()["id"]
    url = ws_url(workspace, f"{ENTRIES}/{node_id}")

    assert admin.get(ws_url(workspace, ENTRIES)).json()["page"]["totalElements"] == 1
    assert admin.get(url).json() == {
        "id": node_id,
        "name": "Shop",
        "description": "web",
    }
    renamed = admin.put(url, {"name": "Store"}, format="json")
    assert renamed.json()["name"] == "Store"
    assert admin.delete(url).status_code == 204
    assert not Node.objects.exists()


def test_a_taken_node_name_is_a_409(admin, workspace, node):
    response = admin.post(
        ws_url(workspace, ENTRIES), {"name": node.name}, format="json"
    )
    assert_error(response, 409)


def test_a_node_with_customers_or_a_source_is_not_deleted(admin, workspace, node):
    CustomerFactory(node=node)
    ApiSourceFactory(workspace=workspace, node=node)
    body = assert_error(admin.delete(ws_url(workspace, f"{ENTRIES}/{node.id}")), 409)
    assert {e["code"] for e in body["errors"]} == {"NODE_NOT_EMPTY", "NODE_HAS_SOURCE"}
    assert Node.objects.filter(pk=node.pk).exists()


def test_aggregate_nodes_are_created_read_updated_and_deleted(admin, workspace):
    one, two = NodeFactory(workspace=workspace), NodeFactory(workspace=workspace)
    data = {
        "name": "All",
        "entryNodes": [str(one.id), str(two.id)],
        "matchingPolicy": {
            "properties": ["base.contacts.email"],
            "caseSensitive": True,
        },
    }
    created = admin.post(ws_url(workspace, AGGREGATES), data, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert sorted(body["entryNodes"]) == sorted([str(one.id), str(two.id)])
    assert body["matchingPolicy"]["caseSensitive"] is True
    url = ws_url(workspace, f"{AGGREGATES}/{body['id']}")

    data["matchingPolicy"] = {"properties": ["externalId"]}
    updated = admin.put(url, data, format="json")
    assert updated.json()["matchingPolicy"] == {
        "properties": ["externalId"],
        "caseSensitive": False,
    }
    assert admin.get(ws_url(workspace, AGGREGATES)).json()["page"]["totalElements"] == 1
    assert admin.delete(url).status_code == 204


def test_an_aggregate_needs_two_entry_nodes_and_known_properties(
    admin, workspace, node
):
    data = {
        "name": "All",
        "entryNodes": [str(node.id)],
        "matchingPolicy": {"properties": ["base.shoeSize"]},
    }
    body = assert_error(
        admin.post(ws_url(workspace, AGGREGATES), data, format="json"), 400
    )
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"entryNodes", "matchingPolicy.properties"}
    assert not Node.objects.filter(kind="AGGREGATE").exists()


def test_an_aggregate_refuses_nodes_of_another_workspace(admin, workspace, node):
    data = {
        "name": "All",
        "entryNodes": [str(node.id), str(NodeFactory().id)],
        "matchingPolicy": {"properties": ["externalId"]},
    }
    response = admin.post(ws_url(workspace, AGGREGATES), data, format="json")
    assert_error(response, 400, "not_found", "entryNodes[1]")


def test_an_entry_node_is_not_found_as_an_aggregate(admin, workspace, node):
    assert_error(admin.get(ws_url(workspace, f"{AGGREGATES}/{node.id}")), 404)
