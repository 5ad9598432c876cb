import pytest

from hub.models import Customer
from tests.factories import AggregateNodeFactory, CustomerFactory, NodeFactory

from .conftest import api_source, assert_error, ws_url

pytestmark = pytest.mark.django_db

ADA = {
    "externalId": "ada-1",
    "base": {"firstName": "Ada", "contacts": {"email": "ada@example.com"}},
    "extended": {"vip": True},
    "tags": {"manual": ["math"]},
}


def test_post_creates_a_customer_in_the_contacthub_shape(admin, workspace, node):
    response = admin.post(
        ws_url(workspace, "customers"), {**ADA, "nodeId": str(node.id)}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["nodeId"] == str(node.id)
    assert body["externalId"] == "ada-1"
    assert body["tags"] == {"auto": [], "manual": ["math"]}
    assert body["sourceInfo"] == {"registeredBy": None, "updatedBy": None}
    assert Customer.objects.get(pk=body["id"]).base["firstName"] == "Ada"


def test_post_with_a_taken_external_id_is_409_naming_the_holder(admin, workspace, node):
    holder = CustomerFactory(node=node, external_id="ada-1")
    response = admin.post(
        ws_url(workspace, "customers"), {**ADA, "nodeId": str(node.id)}, format="json"
    )
    body = assert_error(response, 409, "CUSTOMER_ALREADY_EXISTS", "externalId")
    assert body["data"] == {"customer": {"id": str(holder.id)}}


def test_post_needs_a_node_of_the_workspace(admin, workspace):
    other = NodeFactory()
    url = ws_url(workspace, "customers")
    assert_error(admin.post(url, ADA, format="json"), 400, "required", "nodeId")
    response = admin.post(url, {**ADA, "nodeId": str(other.id)}, format="json")
    assert_error(response, 400, "not_found", "nodeId")
    response = admin.post(url, {**ADA, "nodeId": 12}, format="json")
    assert_error(response, 400, "invalid", "nodeId")
    assert not Customer.objects.exists()


def test_post_to_an_aggregate_node_is_refused(admin, workspace):
    aggregate = AggregateNodeFactory(workspace=workspace)
    response = admin.post(
        ws_url(workspace, "customers"),
        {**ADA, "nodeId": str(aggregate.id)},
        format="json",
    )
    assert_error(response, 409, "NODE_READ_ONLY", "nodeId")


def test_an_invalid_document_is_400_naming_the_dotted_field(admin, workspace, node):
    data = {"nodeId": str(node.id), "base": {"contacts": {"email": "not-an-email"}}}
    response = admin.post(ws_url(workspace, "customers"), data, format="json")
    assert_error(response, 400, None, "base.contacts.email")
    assert not Customer.objects.exists()


def test_a_section_over_64_kb_is_413_too_large(admin, workspace, node):
    data = {"nodeId": str(node.id), "extended": {"blob": "x" * 70_000}}
    response = admin.post(ws_url(workspace, "customers"), data, format="json")
    assert_error(response, 413, "too_large", "extended")
    assert not Customer.objects.exists()


def test_get_put_patch_and_delete_a_customer(admin, workspace, node):
    customer = CustomerFactory(node=node, external_id="c1", extended={"a": 1, "b": 2})
    url = ws_url(workspace, f"customers/{customer.id}")

    assert admin.get(url).json()["externalId"] == "c1"

    patched = admin.patch(url, {"extended": {"a": None, "c": 3}}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["extended"] == {"b": 2, "c": 3}
    assert patched.json()["base"] == customer.base

    replaced = admin.put(
        url, {"externalId": "c1", "base": {"firstName": "X"}}, format="json"
    )
    assert replaced.status_code == 200
    assert replaced.json()["base"] == {"firstName": "X"}
    assert replaced.json()["extended"] == {}

    assert admin.delete(url).status_code == 204
    assert_error(admin.get(url), 404, "not_found")


def test_patch_accepts_the_merge_patch_media_type(admin, workspace, node):
    customer = CustomerFactory(node=node)
    response = admin.generic(
        "PATCH",
        ws_url(workspace, f"customers/{customer.id}"),
        b'{"externalId": "merged"}',
        content_type="application/merge-patch+json",
    )
    assert response.status_code == 200
    assert response.json()["externalId"] == "merged"


def test_a_customer_cannot_move_to_another_node(admin, workspace, node):
    customer = CustomerFactory(node=node)
    other = NodeFactory(workspace=workspace)
    response = admin.patch(
        ws_url(workspace, f"customers/{customer.id}"),
        {"nodeId": str(other.id)},
        format="json",
    )
    assert_error(response, 400, "invalid", "nodeId")


def test_a_customer_of_another_workspace_is_404(admin, workspace):
    stranger = CustomerFactory()
    assert_error(admin.get(ws_url(workspace, f"customers/{stranger.id}")), 404)


def test_list_pages_from_zero_and_filters(admin, workspace, node):
    for index in range(5):
        CustomerFactory(node=node, external_id=f"e{index}")
    CustomerFactory(node=NodeFactory(workspace=workspace))
    url = ws_url(workspace, "customers")

    body = admin.get(url, {"nodeId": str(node.id), "size": 2, "page": 2}).json()
    assert body["page"] == {"size": 2, "totalElements": 5, "totalPages": 3, "number": 2}
    assert [c["externalId"] for c in body["elements"]] == ["e4"]

    body = admin.get(url, {"externalId": "e3"}).json()
    assert [c["externalId"] for c in body["elements"]] == ["e3"]
    assert admin.get(url).json()["page"]["totalElements"] == 6


def test_list_keeps_only_the_fields_asked_for(admin, workspace, node):
    CustomerFactory(node=node, external_id="e1")
    body = admin.get(
        ws_url(workspace, "customers"), {"fields": "externalId,base.contacts.email"}
    ).json()
    (element,) = body["elements"]
    assert set(element) == {"id", "externalId", "base"}
    assert set(element["base"]) == {"contacts"}


def test_page_size_over_100_is_refused(admin, workspace):
    url = ws_url(workspace, "customers")
    assert_error(admin.get(url, {"size": 101}), 400, "out_of_range", "size")
    assert_error(admin.get(url, {"page": -1}), 400, "out_of_range", "page")
    assert_error(admin.get(url, {"size": "ten"}), 400, "invalid", "size")


def test_a_contacthub_query_filter_is_refused_rather_than_ignored(
    admin, workspace, node
):
    CustomerFactory(node=node)
    query = '{"name": "q", "query": {"type": "simple", "name": "query"}}'

    response = admin.get(
        ws_url(workspace, "customers"), {"nodeId": str(node.id), "query": query}
    )

    assert_error(response, 400, "unsupported", "query")


def test_an_aggregate_node_lists_merged_profiles(admin, workspace):
    one, two = NodeFactory(workspace=workspace), NodeFactory(workspace=workspace)
    aggregate = AggregateNodeFactory(workspace=workspace, entries=[one, two])
    email = {"contacts": {"email": "same@example.com"}}
    CustomerFactory(node=one, base={**email, "firstName": "A"})
    CustomerFactory(node=two, base={**email, "lastName": "B"})
    body = admin.get(
        ws_url(workspace, "customers"), {"nodeId": str(aggregate.id)}
    ).json()
    (profile,) = body["elements"]
    assert profile["base"]["firstName"] == "A"
    assert profile["base"]["lastName"] == "B"
    assert len(profile["memberIds"]) == 2


def test_a_source_token_records_itself_in_source_info(workspace, node):
    source, client = api_source(workspace, [(node, "RW")])
    response = client.post(
        ws_url(workspace, "customers"), {**ADA, "nodeId": str(node.id)}, format="json"
    )
    assert response.status_code == 201
    info = response.json()["sourceInfo"]
    assert info == {"registeredBy": str(source.id), "updatedBy": str(source.id)}


def test_a_source_token_cannot_write_a_node_it_may_only_read(workspace, node):
    _source, client = api_source(workspace, [(node, "R")])
    customer = CustomerFactory(node=node)
    url = ws_url(workspace, "customers")
    assert_error(client.post(url, {**ADA, "nodeId": str(node.id)}, format="json"), 403)
    one = ws_url(workspace, f"customers/{customer.id}")
    assert_error(client.patch(one, {"externalId": "x"}, format="json"), 403)
    assert_error(client.delete(one), 403)
    assert client.get(one).status_code == 200
    customer.refresh_from_db()
    assert customer.external_id is None


def test_a_source_token_reads_only_nodes_it_may_read(workspace, node):
    _source, client = api_source(workspace, [(node, "W")])
    hidden = CustomerFactory(node=node)
    other = NodeFactory(workspace=workspace)
    CustomerFactory(node=other)
    assert_error(client.get(ws_url(workspace, f"customers/{hidden.id}")), 403)
    assert_error(
        client.get(ws_url(workspace, "customers"), {"nodeId": str(other.id)}), 403
    )
    assert client.get(ws_url(workspace, "customers")).json()["elements"] == []
    response = client.post(
        ws_url(workspace, "customers"), {**ADA, "nodeId": str(node.id)}, format="json"
    )
    assert response.status_code == 201


def test_customer_subscriptions_are_listed_added_updated_and_removed(
    admin, workspace, node
):
    customer = CustomerFactory(node=node)
    url = ws_url(workspace, f"customers/{customer.id}/subscriptions")

    added = admin.post(url, {"id": "news", "subscribed": True}, format="json")
    assert added.status_code == 201, added.content
    assert added.json()["startDate"]
    assert_error(admin.post(url, {"id": "news"}, format="json"), 409)

    updated = admin.put(f"{url}/news", {"subscribed": False}, format="json")
    assert updated.status_code == 200
    assert updated.json()["endDate"]
    assert [e["id"] for e in admin.get(url).json()["elements"]] == ["news"]

    assert admin.delete(f"{url}/news").status_code == 204
    assert admin.get(url).json()["elements"] == []
    assert_error(admin.delete(f"{url}/news"), 404)
    assert_error(admin.put(f"{url}/news", {"subscribed": True}, format="json"), 404)


def test_a_bad_subscription_entry_is_400(admin, workspace, node):
    customer = CustomerFactory(node=node)
    url = ws_url(workspace, f"customers/{customer.id}/subscriptions")
    response = admin.post(url, {"id": "news", "kind": "PIGEON"}, format="json")
    assert_error(response, 400)
    assert not Customer.objects.get(pk=customer.pk).base.get("subscriptions")
