from io import StringIO

import pytest
from django.core.management import call_command

from tests.factories import UserFactory, WorkspaceFactory
from tokens.models import AccessToken
from tokens.services import admin_token_issue, token_digest

from .conftest import api_source, assert_error, client_for, ws_url

pytestmark = pytest.mark.django_db


def test_create_admin_token_prints_a_token_and_stores_only_its_hash(operator):
    out = StringIO()
    call_command("create_admin_token", operator.username, stdout=out)
    raw = out.getvalue().strip()
    stored = AccessToken.objects.get(user=operator)
    assert stored.token_hash == token_digest(raw)
    assert raw not in stored.token_hash
    response = client_for(raw).get("/hub/v1/workspaces")
    assert response.status_code == 200


def test_create_admin_token_refuses_an_unknown_user(db):
    with pytest.raises(Exception, match="no user"):
        call_command("create_admin_token", "nobody", stdout=StringIO())


def test_a_request_without_a_token_is_401(workspace):
    response = client_for(None).get(ws_url(workspace, "customers"))
    body = assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert body["logref"] == response["X-Request-Id"]


def test_an_unknown_token_is_401(workspace):
    response = client_for("hs_not-a-real-token").get(ws_url(workspace, "customers"))
    assert_error(response, 401, "authentication_failed")


def test_a_token_of_an_inactive_user_is_401(operator, workspace):
    _token, raw = admin_token_issue(user=operator)
    operator.is_active = False
    operator.save()
    assert_error(client_for(raw).get(ws_url(workspace, "customers")), 401)


def test_an_admin_token_lists_only_its_users_workspaces(admin, workspace):
    WorkspaceFactory()
    body = admin.get("/hub/v1/workspaces").json()
    assert [w["id"] for w in body["elements"]] == [str(workspace.id)]
    assert body["page"] == {
        "size": 20,
        "totalElements": 1,
        "totalPages": 1,
        "number": 0,
    }


def test_an_admin_token_cannot_use_another_workspace(admin):
    other = WorkspaceFactory()
    assert_error(admin.get(ws_url(other, "customers")), 403, "permission_denied")
    assert_error(admin.get(ws_url(other, "configuration/sources")), 403)


def test_a_superuser_sees_every_workspace_and_creates_one(db):
    WorkspaceFactory.create_batch(2)
    root = UserFactory(is_superuser=True)
    _token, raw = admin_token_issue(user=root)
    client = client_for(raw)
    assert client.get("/hub/v1/workspaces").json()["page"]["totalElements"] == 2
    response = client.post("/hub/v1/workspaces", {"name": "Acme"}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "Acme"
    assert client.get("/hub/v1/workspaces").json()["page"]["totalElements"] == 3


def test_only_a_superuser_creates_workspaces(admin):
    response = admin.post("/hub/v1/workspaces", {"name": "Acme"}, format="json")
    assert_error(response, 403)


def test_a_superuser_gets_404_for_a_missing_workspace(db):
    root = UserFactory(is_superuser=True)
    _token, raw = admin_token_issue(user=root)
    response = client_for(raw).get(
        "/hub/v1/workspaces/00000000-0000-0000-0000-000000000000/customers"
    )
    assert_error(response, 404)


def test_a_source_token_cannot_use_configuration_endpoints(workspace, node):
    _source, client = api_source(workspace, [(node, "RW")])
    for tail in (
        "configuration/sources",
        "configuration/nodes/entries",
        "configuration/nodes/aggregates",
        "configuration/subscription-systems",
        "configuration/hub-fields",
    ):
        assert_error(client.get(ws_url(workspace, tail)), 403, "permission_denied")
    assert_error(client.get("/hub/v1/workspaces"), 403)


def test_a_source_token_cannot_use_another_workspace(workspace, node):
    _source, client = api_source(workspace, [(node, "RW")])
    other = WorkspaceFactory()
    assert_error(client.get(ws_url(other, "customers")), 403)


def test_the_token_of_a_disabled_source_is_refused(workspace, node):
    source, client = api_source(workspace, [(node, "RW")])
    source.enabled = False
    source.save()
    assert_error(client.get(ws_url(workspace, "customers")), 403)


def test_refresh_token_replaces_the_old_token(admin, workspace, node):
    source, old_client = api_source(workspace, [(node, "RW")])
    url = ws_url(workspace, f"configuration/sources/{source.id}/refresh-token")
    response = admin.post(url)
    assert response.status_code == 200
    new_client = client_for(response.json()["token"])
    assert new_client.get(ws_url(workspace, "customers")).status_code == 200
    assert_error(old_client.get(ws_url(workspace, "customers")), 401)
    assert AccessToken.objects.filter(source=source).count() == 1


def test_a_request_id_given_by_the_client_is_the_logref(workspace):
    response = client_for(None).get(
        ws_url(workspace, "customers"), HTTP_X_REQUEST_ID="client-chosen-id-1"
    )
    assert response.json()["logref"] == "client-chosen-id-1"
