import json

import pytest
from rest_framework.settings import api_settings

from hub.models import Customer, Node
from sources.models import Source
from tests.factories import CustomerFactory

from .conftest import assert_error, ws_url

pytestmark = pytest.mark.django_db


def post_raw(client, url, body: bytes, content_type="application/json"):
    return client.generic("POST", url, body, content_type=content_type)


def test_malformed_json_is_400_and_writes_nothing(admin, workspace, node):
    url = ws_url(workspace, "customers")
    body = assert_error(post_raw(admin, url, b'{"nodeId": '), 400, "parse_error")
    assert "JSON" in body["message"]
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'"text"',
        b"null",
        b'{"base": NaN}',
        b'{"base": {"firstName": "a\\u0000b"}}',
        b'{"externalId": "\\ud800"}',
        b'{"extended": {"big": 1e999}}',
        b"\xff\xfe",
        b"[" * 100_000,
    ],
)
def test_bodies_the_database_cannot_take_are_400(admin, workspace, node, body):
    response = post_raw(admin, ws_url(workspace, "customers"), body)
    assert_error(response, 400)
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"externalId": 12}, "externalId"),
        ({"enabled": "yes"}, "enabled"),
        ({"base": {"firstName": 5}}, "base.firstName"),
        ({"base": {"shoeSize": 44}}, "base.shoeSize"),
        ({"tags": ["a"]}, "tags"),
        ({"tags": {"manual": "a"}}, "tags.manual"),
        ({"surprise": 1}, "surprise"),
        ({"extra": {"a": 1}}, "extra"),
        ({"base": "text"}, "base"),
    ],
)
def test_wrong_types_and_unknown_fields_are_400_naming_the_field(
    admin, workspace, node, document, field
):
    response = admin.post(
        ws_url(workspace, "customers"),
        {**document, "nodeId": str(node.id)},
        format="json",
    )
    assert_error(response, 400, None, field)
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("tail", "body", "field"),
    [
        ("configuration/nodes/entries", {"name": 5}, "name"),
        ("configuration/nodes/entries", {"name": "a", "colour": "red"}, "colour"),
        (
            "configuration/nodes/entries",
            {"name": "a", "description": None},
            "description",
        ),
        ("configuration/subscription-systems", {"id": 1, "name": "n"}, "id"),
        ("configuration/sources", {"provider": "FAX", "name": "n"}, "provider"),
        (
            "configuration/sources",
            {"provider": "API", "name": "n", "enabled": 1},
            "enabled",
        ),
        (
            "configuration/sources",
            {"provider": "API", "name": "n", "nodes": [7]},
            "nodes[0].id",
        ),
        (
            "configuration/sources",
            {"provider": "API", "name": "n", "nodes": "x"},
            "nodes",
        ),
        (
            "configuration/send/discover",
            {"apiKey": "k", "userKey": "u", "userDbId": "7"},
            "userDbId",
        ),
    ],
)
def test_configuration_refuses_wrong_types_and_unknown_fields(
    admin, workspace, tail, body, field
):
    response = admin.post(ws_url(workspace, tail), body, format="json")
    assert_error(response, 400, None, field)
    assert not Node.objects.exists()
    assert not Source.objects.exists()


def test_a_send_source_needs_its_properties(admin, workspace, node):
    body = {"provider": "CONTACTSEND", "name": "n", "nodes": [str(node.id)]}
    response = admin.post(
        ws_url(workspace, "configuration/sources"), body, format="json"
    )
    assert_error(response, 400, "required", "properties.userDbId")


def test_a_body_over_the_limit_is_413(admin, workspace, node, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    document = {"nodeId": str(node.id), "extra": "x" * 2000}
    response = post_raw(
        admin, ws_url(workspace, "customers"), json.dumps(document).encode()
    )
    assert_error(response, 413, "too_large")
    assert not Customer.objects.exists()


def test_a_body_that_is_not_json_is_415(admin, workspace):
    response = post_raw(
        admin,
        ws_url(workspace, "customers"),
        b"nodeId=1",
        "application/x-www-form-urlencoded",
    )
    assert_error(response, 415, "unsupported_media_type")


def test_an_unsupported_method_is_405(admin, workspace):
    response = admin.delete(ws_url(workspace, "customers"))
    assert_error(response, 405, "method_not_allowed")


def test_an_unknown_api_path_is_a_json_404(admin, workspace):
    assert_error(admin.get(ws_url(workspace, "nothing-here")), 404, "not_found")
    assert_error(admin.get("/hub/v1/workspaces/not-a-uuid/customers"), 404)
    client = type(admin)(enforce_csrf_checks=True)
    assert_error(client.post("/hub/v1/workspaces/not-a-uuid/customers", {}), 404)


def test_nul_characters_in_the_query_or_path_are_400(admin, workspace, node):
    customer = CustomerFactory(node=node)
    response = admin.get(ws_url(workspace, "customers"), {"externalId": "a\x00b"})
    assert_error(response, 400)
    url = ws_url(workspace, f"customers/{customer.id}/subscriptions/a%00b")
    assert_error(admin.delete(url), 400)


def test_too_many_requests_for_a_token_is_429(admin, workspace, monkeypatch):
    monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, "token", "3/min")
    url = ws_url(workspace, "customers")
    for _ in range(3):
        assert admin.get(url).status_code == 200
    response = admin.get(url)
    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("tail", "body"),
    [
        ("configuration/nodes/entries", {"name": "n" * 10_000}),
        ("configuration/subscription-systems", {"id": "news", "name": "n" * 10_000}),
    ],
)
def test_a_value_over_its_column_size_is_400_saying_why(admin, workspace, tail, body):
    response = admin.post(ws_url(workspace, tail), body, format="json")

    error = assert_error(response, 400, "max_length", "name")["errors"][0]
    assert "200" in error["message"]
    assert not Node.objects.exists()
