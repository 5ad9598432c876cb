import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from sources.models import Provider
from sources.services import NodeGrant, SourceSpec, source_create
from tests.factories import NodeFactory, UserFactory, WorkspaceFactory
from tokens.services import admin_token_issue, source_token_issue


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


def client_for(raw_token: str | None) -> APIClient:
    client = APIClient()
    if raw_token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_token}")
    return client


def ws_url(workspace, tail: str = "") -> str:
    return f"/hub/v1/workspaces/{workspace.id}/{tail}"


@pytest.fixture
def workspace(db):
    return WorkspaceFactory()


@pytest.fixture
def operator(workspace):
    user = UserFactory()
    workspace.members.add(user)
    return user


@pytest.fixture
def admin(operator):
    _token, raw = admin_token_issue(user=operator)
    return client_for(raw)


@pytest.fixture
def node(workspace):
    return NodeFactory(workspace=workspace)


def api_source(workspace, grants):
    """Create an API source on `grants` [(node, permission)]; return it and a client."""
    source = source_create(
        workspace=workspace,
        provider=Provider.API,
        spec=SourceSpec(
            name=f"client {len(grants)} {grants[0][0].name}",
            nodes=tuple(NodeGrant(node, permission) for node, permission in grants),
        ),
    )
    return source, client_for(source_token_issue(source=source))


def assert_error(response, status: int, code: str | None = None, field=None):
    """Check the error shape, the status and (optionally) one of the codes."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "errors", "data", "logref"}
    assert body["logref"]
    assert body["errors"], body
    if code is not None:
        pairs = {(item["field"], item["code"]) for item in body["errors"]}
        codes = {item["code"] for item in body["errors"]}
        assert code in codes, body
        if field is not None:
            assert (field, code) in pairs, body
    return body
