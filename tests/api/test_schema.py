"""Property-based checks of the live API against its own OpenAPI schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import CustomerFactory, NodeFactory, UserFactory, WorkspaceFactory
from tokens.services import admin_token_issue, source_token_issue

from .conftest import api_source

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def world(live_server, fake_send):
    workspace = WorkspaceFactory()
    user = UserFactory()
    workspace.members.add(user)
    node = NodeFactory(workspace=workspace)
    customer = CustomerFactory(node=node, external_id="known")
    source, _client = api_source(workspace, [(node, "RW")])
    _token, admin_raw = admin_token_issue(user=user)
    return {
        "url": live_server.url,
        "tokens": [admin_raw, source_token_issue(source=source)],
        "path": {
            "workspace_id": str(workspace.id),
            "node_id": str(node.id),
            "customer_id": str(customer.id),
            "source_id": str(source.id),
        },
    }


def test_the_api_conforms_to_its_schema(world):
    schema = schemathesis.openapi.from_url(f"{world['url']}/hub/v1/schema?format=json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 25
    failures = []
    for operation in operations:
        try:
            _check_operation(operation, world)
        except Exception as error:
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert not failures, "\n\n".join(failures)


def _check_operation(operation, world):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=6,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case):
        for name, value in world["path"].items():
            if case.path_parameters and name in case.path_parameters:
                case.path_parameters[name] = value
        for token in world["tokens"]:
            case.call_and_validate(
                base_url=world["url"],
                headers={"Authorization": f"Bearer {token}"},
                checks=CHECKS,
            )

    check()
