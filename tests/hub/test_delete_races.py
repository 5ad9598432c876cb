"""Deletes racing with writes end in a 4xx-worthy error, never a crash."""

import pytest
from django.core.exceptions import ValidationError

from hub import services
from hub.models import Node
from sources import services as source_services
from sources.services import SubscriptionRow
from subscriptions.models import SubscriptionSystem
from subscriptions.services import subscription_system_delete
from tests.factories import CustomerFactory, NodeFactory
from tests.sources.helpers import codes, create_send_source


@pytest.mark.django_db
def test_a_customer_that_slipped_past_the_checks_keeps_its_node(monkeypatch):
    node = NodeFactory()
    CustomerFactory(node=node)
    monkeypatch.setattr(services, "_node_uses", lambda node: [])

    with pytest.raises(ValidationError) as error:
        services.node_delete(node=node)

    assert codes(error.value) == {"NODE_IN_USE"}
    assert Node.objects.filter(pk=node.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_customer_written_to_a_node_deleted_meanwhile_is_refused():
    node = NodeFactory()
    Node.objects.filter(pk=node.pk).delete()

    with pytest.raises(ValidationError) as error:
        services.customer_create(node=node, data={"base": {"firstName": "Ada"}})

    assert codes(error.value) == {"not_found"}


@pytest.mark.django_db
def test_a_subscription_system_deleted_during_a_source_write_is_reported(
    fake_send, monkeypatch
):
    node = NodeFactory()
    system = SubscriptionSystem.objects.create(
        workspace=node.workspace, system_id="news", name="News"
    )
    original = source_services._check_rows

    def check_then_delete(*args, **kwargs):
        original(*args, **kwargs)
        subscription_system_delete(system=system)

    monkeypatch.setattr(source_services, "_check_rows", check_then_delete)

    with pytest.raises(ValidationError) as error:
        create_send_source(
            node.workspace,
            node,
            subscriptions=(SubscriptionRow("news", 11, "WF-NEWS"),),
        )

    assert codes(error.value) == {"invalid_hub_subscription"}
