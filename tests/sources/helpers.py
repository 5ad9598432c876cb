"""Builders of Send source specs for the rule tests."""

from __future__ import annotations

from hub.models import Node, Workspace
from sources.models import Provider, Source
from sources.send.gateway import SendField
from sources.services import (
    FieldRow,
    NodeGrant,
    SendSettings,
    SourceSpec,
    SubscriptionRow,
    source_create,
)
from tests.conftest import TEST_CREDENTIALS

USERDB_FIELDS = (
    SendField("email", "STRING", email_field=True),
    SendField("firstName", "STRING"),
    SendField("lastName", "STRING"),
)

EMAIL_MATCH = FieldRow("base.contacts.email", "email", matching=True)
FIRST_NAME = FieldRow("base.firstName", "firstName")


def send_spec(
    node: Node,
    *,
    permission: str = "RW",
    userdb_id: int = 7,
    fields: tuple[FieldRow, ...] = (EMAIL_MATCH, FIRST_NAME),
    subscriptions: tuple[SubscriptionRow, ...] = (),
    enabled: bool = True,
    api_key: str | None = TEST_CREDENTIALS.api_key,
    user_key: str | None = TEST_CREDENTIALS.user_key,
    nodes: tuple[NodeGrant, ...] | None = None,
    name: str = "Send",
) -> SourceSpec:
    return SourceSpec(
        name=name,
        enabled=enabled,
        nodes=nodes if nodes is not None else (NodeGrant(node, permission),),
        send=SendSettings(
            userdb_id=userdb_id,
            api_key=api_key,
            user_key=user_key,
            fields=fields,
            subscriptions=subscriptions,
        ),
    )


def create_send_source(workspace: Workspace, node: Node, **options: object) -> Source:
    return source_create(
        workspace=workspace,
        provider=Provider.CONTACTSEND,
        spec=send_spec(node, **options),  # type: ignore[arg-type]
    )


def codes(error: Exception) -> set[str]:
    """Return every code a ValidationError carries."""
    return {
        item.code
        for items in error.error_dict.values()  # type: ignore[attr-defined]
        for item in items
        if item.code
    }
