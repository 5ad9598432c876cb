"""Factories for the whole suite: one place, so every test builds alike."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from hub.models import Customer, Node, Workspace
from sources.models import ActiveNode, Provider, Source
from subscriptions.models import SubscriptionSystem


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"operator{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("not-a-real-password")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")


class NodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Node

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Node {n}")
    kind = Node.Kind.ENTRY


class AggregateNodeFactory(NodeFactory):
    class Meta:
        skip_postgeneration_save = True

    kind = Node.Kind.AGGREGATE
    matching_properties = factory.LazyFunction(lambda: ["base.contacts.email"])

    @factory.post_generation
    def entries(self, create, extracted, **kwargs):
        nodes = extracted or [
            NodeFactory(workspace=self.workspace),
            NodeFactory(workspace=self.workspace),
        ]
        self.entry_nodes.set(nodes)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    node = factory.SubFactory(NodeFactory)
    base = factory.Sequence(
        lambda n: {
            "firstName": f"Ada{n}",
            "lastName": "Lovelace",
            "contacts": {"email": f"ada{n}@example.com"},
        }
    )


class SubscriptionSystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubscriptionSystem

    workspace = factory.SubFactory(WorkspaceFactory)
    system_id = factory.Sequence(lambda n: f"newsletter{n}")
    name = factory.Sequence(lambda n: f"Newsletter {n}")


class ApiSourceFactory(factory.django.DjangoModelFactory):
    """An API-provider source with RW on one node (no Send options)."""

    class Meta:
        model = Source
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    provider = Provider.API
    name = factory.Sequence(lambda n: f"API source {n}")

    @factory.post_generation
    def node(self, create, extracted, **kwargs):
        if extracted is not None:
            ActiveNode.objects.create(
                source=self,
                node=extracted,
                provider=self.provider,
                permission=kwargs.get("permission", "RW"),
            )
