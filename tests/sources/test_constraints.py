"""The database holds the rules even when Python is bypassed."""

import pytest
from django.db import IntegrityError, transaction

from sources.models import ActiveNode, FieldMapping, Provider, SendOptions, Source
from tests.factories import NodeFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def send_source(workspace, name="Send"):
    return Source.objects.create(
        workspace=workspace, provider=Provider.CONTACTSEND, name=name
    )


def link(source, node, permission="RW"):
    return ActiveNode.objects.create(
        source=source, node=node, provider=source.provider, permission=permission
    )


def options(source, key_hash="a" * 64, userdb_id=7):
    return SendOptions.objects.create(
        source=source,
        api_key_encrypted="x",
        user_key_encrypted="y",
        api_key_hash=key_hash,
        userdb_id=userdb_id,
    )


def test_a_node_takes_one_send_source():
    node = NodeFactory()
    link(send_source(node.workspace, "one"), node)

    with pytest.raises(IntegrityError), transaction.atomic():
        link(send_source(node.workspace, "two"), node)


def test_a_node_takes_any_number_of_api_sources():
    node = NodeFactory()
    for name in ("one", "two"):
        source = Source.objects.create(
            workspace=node.workspace, provider=Provider.API, name=name
        )
        link(source, node)

    assert ActiveNode.objects.filter(node=node).count() == 2


def test_a_send_source_takes_one_node():
    source = send_source(WorkspaceFactory())
    link(source, NodeFactory(workspace=source.workspace))

    with pytest.raises(IntegrityError), transaction.atomic():
        link(source, NodeFactory(workspace=source.workspace))


def test_a_userdb_of_one_account_takes_one_source():
    workspace = WorkspaceFactory()
    options(send_source(workspace, "one"))

    with pytest.raises(IntegrityError), transaction.atomic():
        options(send_source(workspace, "two"))


def test_the_same_userdb_id_of_another_account_is_allowed():
    workspace = WorkspaceFactory()
    options(send_source(workspace, "one"))
    options(send_source(workspace, "two"), key_hash="b" * 64)

    assert SendOptions.objects.count() == 2


def test_the_permission_must_be_r_w_or_rw():
    source = send_source(WorkspaceFactory())

    with pytest.raises(IntegrityError), transaction.atomic():
        link(source, NodeFactory(workspace=source.workspace), permission="X")


def test_the_provider_must_be_known():
    with pytest.raises(IntegrityError), transaction.atomic():
        Source.objects.create(workspace=WorkspaceFactory(), provider="FTP", name="x")


def test_a_hub_field_is_mapped_once_per_source():
    source = send_source(WorkspaceFactory())
    FieldMapping.objects.create(
        source=source, hub_field="base.firstName", send_field="a"
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        FieldMapping.objects.create(
            source=source, hub_field="base.firstName", send_field="b"
        )


def test_a_send_field_is_mapped_once_per_source():
    source = send_source(WorkspaceFactory())
    FieldMapping.objects.create(
        source=source, hub_field="base.firstName", send_field="a"
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        FieldMapping.objects.create(
            source=source, hub_field="base.lastName", send_field="a"
        )
