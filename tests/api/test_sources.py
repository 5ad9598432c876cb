import pytest

from sources.models import SendOptions, Source
from sources.selectors import source_credentials
from sources.send.gateway import SendField, TransientError
from tests.conftest import TEST_CREDENTIALS
from tests.factories import (
    AggregateNodeFactory,
    CustomerFactory,
    NodeFactory,
    SubscriptionSystemFactory,
)
from tokens.models import AccessToken

from .conftest import assert_error, ws_url

pytestmark = pytest.mark.django_db

SOURCES = "configuration/sources"


def send_body(node, userdb=7, **properties):
    body = {
        "provider": "CONTACTSEND",
        "name": f"Send {userdb}",
        "description": "newsletter",
        "enabled": True,
        "nodes": [{"id": str(node.id), "permission": "RW"}],
        "properties": {
            "apiKey": TEST_CREDENTIALS.api_key,
            "userKey": TEST_CREDENTIALS.user_key,
            "userDbId": userdb,
            "fields": [
                {
                    "hubField": "base.contacts.email",
                    "sendField": "email",
                    "matching": True,
                },
                {"hubField": "base.firstName", "sendField": "firstName"},
            ],
            "subscriptions": [],
        },
    }
    body["properties"].update(properties)
    return body


def seed(fake_send, userdb, subscribers=0):
    fake_send.seed(
        TEST_CREDENTIALS,
        userdb,
        fields=[SendField("email", "STRING"), SendField("firstName", "STRING")],
        subscribers=subscribers,
    )


def create(admin, workspace, body):
    return admin.post(ws_url(workspace, SOURCES), body, format="json")


def codes(response):
    return {item["code"] for item in response.json()["errors"]}


def test_a_send_source_is_created_and_its_keys_never_come_back(
    admin, workspace, node, fake_send
):
    response = create(admin, workspace, send_body(node))
    assert response.status_code == 201, response.content
    body = response.json()
    props = body["properties"]
    assert props["userDbId"] == 7
    assert props["apiKeyHint"] and props["userKeyHint"]
    assert TEST_CREDENTIALS.api_key not in response.content.decode()
    assert TEST_CREDENTIALS.user_key not in response.content.decode()
    assert "token" not in body
    assert body["nodes"] == [{"id": str(node.id), "permission": "RW"}]
    listed = admin.get(ws_url(workspace, SOURCES)).json()
    assert listed["elements"] == [body]
    assert admin.get(ws_url(workspace, f"{SOURCES}/{body['id']}")).json() == body


def test_an_api_source_gets_a_token_once(admin, workspace, node):
    body = {"provider": "API", "name": "Shop", "nodes": [str(node.id)]}
    response = create(admin, workspace, body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["token"].startswith("hs_")
    assert created["nodes"] == [{"id": str(node.id), "permission": "RW"}]
    fetched = admin.get(ws_url(workspace, f"{SOURCES}/{created['id']}")).json()
    assert "token" not in fetched
    assert AccessToken.objects.get(source_id=created["id"]).kind == "source"


def test_an_api_source_takes_no_properties(admin, workspace, node):
    body = {"provider": "API", "name": "Shop", "properties": {"userDbId": 7}}
    assert_error(create(admin, workspace, body), 400, "invalid", "properties")
    assert not Source.objects.exists()


def test_refresh_token_is_refused_for_a_send_source(admin, workspace, node, fake_send):
    source_id = create(admin, workspace, send_body(node)).json()["id"]
    url = ws_url(workspace, f"{SOURCES}/{source_id}/refresh-token")
    assert_error(admin.post(url), 400, "invalid", "provider")


def test_patch_changes_the_userdb_alone_and_keeps_the_keys(
    admin, workspace, node, fake_send
):
    seed(fake_send, 8)
    source_id = create(admin, workspace, send_body(node)).json()["id"]
    url = ws_url(workspace, f"{SOURCES}/{source_id}")
    assert admin.patch(url, {"enabled": False}, format="json").status_code == 200
    response = admin.patch(url, {"properties": {"userDbId": 8}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["properties"]["userDbId"] == 8
    assert response.json()["properties"]["fields"][0]["sendField"] == "email"
    source = Source.objects.get(pk=source_id)
    assert source_credentials(source) == TEST_CREDENTIALS


def test_put_without_keys_keeps_the_stored_ones(admin, workspace, node, fake_send):
    source_id = create(admin, workspace, send_body(node)).json()["id"]
    body = send_body(node)
    del body["properties"]["apiKey"], body["properties"]["userKey"]
    body["name"] = "Renamed"
    response = admin.put(
        ws_url(workspace, f"{SOURCES}/{source_id}"), body, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed"
    assert source_credentials(Source.objects.get(pk=source_id)) == TEST_CREDENTIALS


def test_hints_are_not_writable(admin, workspace, node, fake_send):
    source_id = create(admin, workspace, send_body(node)).json()["id"]
    response = admin.patch(
        ws_url(workspace, f"{SOURCES}/{source_id}"),
        {"properties": {"apiKeyHint": "abcd"}},
        format="json",
    )
    assert_error(response, 400, "unknown", "properties.apiKeyHint")


def test_the_provider_cannot_change(admin, workspace, node, fake_send):
    source_id = create(admin, workspace, send_body(node)).json()["id"]
    response = admin.patch(
        ws_url(workspace, f"{SOURCES}/{source_id}"), {"provider": "API"}, format="json"
    )
    assert_error(response, 400, "invalid", "provider")


def test_a_source_is_deleted(admin, workspace, node, fake_send):
    source_id = create(admin, workspace, send_body(node)).json()["id"]
    url = ws_url(workspace, f"{SOURCES}/{source_id}")
    assert admin.delete(url).status_code == 204
    assert_error(admin.get(url), 404)
    assert not SendOptions.objects.exists()


# The creation rules, each through the API.


def test_a_node_has_at_most_one_send_source(admin, workspace, node, fake_send):
    seed(fake_send, 8)
    assert create(admin, workspace, send_body(node)).status_code == 201
    response = create(admin, workspace, send_body(node, userdb=8))
    assert_error(response, 409, "NODE_HAS_SEND_SOURCE", "nodes")


def test_a_userdb_is_synchronized_with_one_node_only(admin, workspace, node, fake_send):
    assert create(admin, workspace, send_body(node)).status_code == 201
    other = NodeFactory(workspace=workspace)
    response = create(admin, workspace, send_body(other))
    assert_error(response, 409, "USERDB_ALREADY_SYNCED", "properties.userDbId")


def test_a_send_source_needs_an_empty_userdb(admin, workspace, node, fake_send):
    seed(fake_send, 9, subscribers=3)
    response = create(admin, workspace, send_body(node, userdb=9))
    assert_error(response, 409, "USERDB_NOT_EMPTY", "properties.userDbId")


def test_a_send_source_has_exactly_one_node(admin, workspace, node, fake_send):
    body = send_body(node)
    body["nodes"].append(str(NodeFactory(workspace=workspace).id))
    assert_error(create(admin, workspace, body), 409, "SINGLE_NODE_REQUIRED", "nodes")
    body["nodes"] = []
    assert_error(create(admin, workspace, body), 409, "SINGLE_NODE_REQUIRED", "nodes")


def test_an_aggregate_node_can_only_be_read(admin, workspace, fake_send):
    aggregate = AggregateNodeFactory(workspace=workspace)
    response = create(admin, workspace, send_body(aggregate))
    assert_error(response, 409, "AGGREGATE_NODE_READ_ONLY", "nodes")


def test_an_aggregate_node_has_no_subscription_rows(admin, workspace, fake_send):
    SubscriptionSystemFactory(workspace=workspace, system_id="news")
    aggregate = AggregateNodeFactory(workspace=workspace)
    row = {
        "hubSubscriptionId": "news",
        "sendSubscriptionId": 11,
        "webformCode": "WF-NEWS",
    }
    body = send_body(aggregate, subscriptions=[row])
    body["nodes"] = [{"id": str(aggregate.id), "permission": "R"}]
    response = create(admin, workspace, body)
    assert_error(
        response, 409, "AGGREGATE_NODE_NO_SUBSCRIPTIONS", "properties.subscriptions"
    )


def test_a_send_source_needs_a_matching_field(admin, workspace, node, fake_send):
    fields = [{"hubField": "base.contacts.email", "sendField": "email"}]
    response = create(admin, workspace, send_body(node, fields=fields))
    assert_error(response, 409, "MATCHING_FIELD_REQUIRED", "properties.fields")


def test_every_unmet_creation_rule_is_listed_at_once(admin, workspace, fake_send):
    seed(fake_send, 9, subscribers=1)
    aggregate = AggregateNodeFactory(workspace=workspace)
    body = send_body(aggregate, userdb=9, fields=[])
    body["nodes"].append(str(NodeFactory(workspace=workspace).id))
    response = create(admin, workspace, body)
    assert_error(response, 409)
    assert codes(response) >= {
        "SINGLE_NODE_REQUIRED",
        "AGGREGATE_NODE_READ_ONLY",
        "MATCHING_FIELD_REQUIRED",
        "USERDB_NOT_EMPTY",
    }
    assert not Source.objects.exists()


def test_subscription_rows_are_stored(admin, workspace, node, fake_send):
    SubscriptionSystemFactory(workspace=workspace, system_id="news")
    row = {
        "hubSubscriptionId": "news",
        "sendSubscriptionId": 11,
        "webformCode": "WF-NEWS",
    }
    response = create(admin, workspace, send_body(node, subscriptions=[row]))
    assert response.status_code == 201, response.content
    assert response.json()["properties"]["subscriptions"] == [row]


def test_a_bad_field_row_is_400_naming_the_row(admin, workspace, node, fake_send):
    fields = [
        {"hubField": "base.contacts.email", "sendField": "nope", "matching": True}
    ]
    response = create(admin, workspace, send_body(node, fields=fields))
    assert_error(response, 400, "invalid_send_field", "properties.fields[0]")


def test_a_wrong_type_in_a_field_row_names_its_path(admin, workspace, node, fake_send):
    fields = [{"hubField": "base.contacts.email", "sendField": 5, "matching": True}]
    response = create(admin, workspace, send_body(node, fields=fields))
    assert_error(response, 400, "invalid", "properties.fields[0].sendField")
    assert not Source.objects.exists()


def test_refused_send_keys_are_400(admin, workspace, node, fake_send):
    response = create(admin, workspace, send_body(node, apiKey="wrong-fake-key"))
    assert_error(response, 400, "SEND_AUTHENTICATION_FAILED", "properties.apiKey")


def test_send_unavailable_is_503(admin, workspace, node, fake_send, monkeypatch):
    def fail(self, userdb_id):
        raise TransientError("connection reset")

    monkeypatch.setattr(fake_send, "get_userdb", fail)
    response = create(admin, workspace, send_body(node))
    assert_error(response, 503, "SEND_UNAVAILABLE")
    assert not Source.objects.exists()


# The modification table, each requirement through the API.


def send_source(admin, workspace, node):
    response = create(admin, workspace, send_body(node))
    assert response.status_code == 201, response.content
    return ws_url(workspace, f"{SOURCES}/{response.json()['id']}")


def test_changing_the_field_map_needs_a_disabled_source(
    admin, workspace, node, fake_send
):
    url = send_source(admin, workspace, node)
    fields = [
        {"hubField": "base.contacts.email", "sendField": "email", "matching": True}
    ]
    response = admin.patch(url, {"properties": {"fields": fields}}, format="json")
    assert_error(response, 409, "SOURCE_NOT_DISABLED", "enabled")
    assert admin.patch(url, {"enabled": False}, format="json").status_code == 200
    response = admin.patch(url, {"properties": {"fields": fields}}, format="json")
    assert response.status_code == 200, response.content


def test_changing_the_userdb_needs_the_node_empty(admin, workspace, node, fake_send):
    seed(fake_send, 8)
    url = send_source(admin, workspace, node)
    CustomerFactory(node=node)
    admin.patch(url, {"enabled": False}, format="json")
    response = admin.patch(url, {"properties": {"userDbId": 8}}, format="json")
    assert_error(response, 409, "NODE_NOT_EMPTY", "nodes")


def test_changing_the_userdb_needs_the_new_userdb_empty(
    admin, workspace, node, fake_send
):
    seed(fake_send, 8, subscribers=2)
    url = send_source(admin, workspace, node)
    admin.patch(url, {"enabled": False}, format="json")
    response = admin.patch(url, {"properties": {"userDbId": 8}}, format="json")
    assert_error(response, 409, "USERDB_NOT_EMPTY", "properties.userDbId")


def test_changing_the_node_needs_the_new_node_empty(admin, workspace, node, fake_send):
    url = send_source(admin, workspace, node)
    full = NodeFactory(workspace=workspace)
    CustomerFactory(node=full)
    admin.patch(url, {"enabled": False}, format="json")
    response = admin.patch(url, {"nodes": [str(full.id)]}, format="json")
    assert_error(response, 409, "NEW_NODE_NOT_EMPTY", "nodes")


def test_unmet_requirements_are_listed_together(admin, workspace, node, fake_send):
    seed(fake_send, 8, subscribers=1)
    url = send_source(admin, workspace, node)
    CustomerFactory(node=node)
    response = admin.patch(url, {"properties": {"userDbId": 8}}, format="json")
    assert_error(response, 409)
    assert codes(response) == {
        "SOURCE_NOT_DISABLED",
        "NODE_NOT_EMPTY",
        "USERDB_NOT_EMPTY",
    }


def test_the_name_changes_at_any_time(admin, workspace, node, fake_send):
    url = send_source(admin, workspace, node)
    CustomerFactory(node=node)
    response = admin.patch(url, {"name": "Renamed"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"


# Discovery and Hub fields.


def test_discover_describes_a_userdb(admin, workspace, fake_send):
    seed(fake_send, 9, subscribers=4)
    body = {
        "apiKey": TEST_CREDENTIALS.api_key,
        "userKey": TEST_CREDENTIALS.user_key,
        "userDbId": 9,
    }
    response = admin.post(
        ws_url(workspace, "configuration/send/discover"), body, format="json"
    )
    assert response.status_code == 200, response.content
    described = response.json()
    assert described["subscriberCount"] == 4
    assert {"name": "email", "type": "STRING", "emailField": False} in described[
        "fields"
    ]


def test_discover_names_the_refused_field(admin, workspace, fake_send):
    url = ws_url(workspace, "configuration/send/discover")
    body = {"apiKey": "fake-wrong", "userKey": "fake-wrong", "userDbId": 7}
    assert_error(admin.post(url, body, format="json"), 400, None, "apiKey")
    body = {
        **body,
        "apiKey": TEST_CREDENTIALS.api_key,
        "userKey": TEST_CREDENTIALS.user_key,
    }
    body["userDbId"] = 404
    assert_error(admin.post(url, body, format="json"), 400, None, "userDbId")


def test_discover_of_an_unreachable_send_is_503(
    admin, workspace, fake_send, monkeypatch
):
    def fail(self, userdb_id):
        raise TransientError("timeout")

    monkeypatch.setattr(fake_send, "get_userdb", fail)
    body = {
        "apiKey": TEST_CREDENTIALS.api_key,
        "userKey": TEST_CREDENTIALS.user_key,
        "userDbId": 7,
    }
    response = admin.post(
        ws_url(workspace, "configuration/send/discover"), body, format="json"
    )
    assert_error(response, 503, "SEND_UNAVAILABLE")


def test_hub_fields_lists_mappable_paths_with_types(admin, workspace):
    body = admin.get(ws_url(workspace, "configuration/hub-fields")).json()
    fields = {f["path"]: f["type"] for f in body["fields"]}
    assert fields["base.contacts.email"] == "email"
    assert fields["tags.manual"] == "tags"
    assert "base.subscriptions" not in fields
    assert body["extendedPattern"].startswith("^extended")
