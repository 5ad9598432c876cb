"""REST endpoints of the Hub: workspaces, nodes, customers (Contacthub shape).

Views parse, check access, call hub.services and render; the rules live in
the services.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from hubsync.api.access import (
    NodeScope,
    request_token,
    visible_workspaces,
    workspace_for,
)
from hubsync.api.errors import ApiError
from hubsync.api.paging import PAGE_PARAMETERS, paged
from hubsync.api.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictSerializer,
    page_of,
)
from hubsync.api.views import (
    WRITE_ERRORS,
    ApiView,
    ConfigView,
    created,
    error_responses,
)

from . import services
from .documents import get_path, set_path
from .models import Customer, Node, Workspace
from .selectors import aggregate_profiles, node_customers

# Workspaces.


class WorkspaceSerializer(StrictSerializer):
    id = serializers.UUIDField(read_only=True)
    name = StrictCharField(max_length=200)


def workspace_document(workspace: Workspace) -> dict[str, Any]:
    return {"id": str(workspace.id), "name": workspace.name}


class WorkspacesView(ConfigView):
    @extend_schema(
        operation_id="workspaces_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of("WorkspacePage", WorkspaceSerializer),
            **error_responses(400),
        },
    )
    def get(self, request: Request) -> Response:
        workspaces = visible_workspaces(request_token(request))
        return Response(paged(request, workspaces, workspace_document))

    @extend_schema(
        operation_id="workspaces_create",
        request=WorkspaceSerializer,
        responses={201: WorkspaceSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request) -> Response:
        token = request_token(request)
        if token.user is None or not token.user.is_superuser:
            raise exceptions.PermissionDenied("Only a superuser creates workspaces.")
        data = _valid(WorkspaceSerializer, request.data)
        workspace = services.workspace_create(name=data["name"])
        return created(workspace_document(workspace))


# Nodes.


class EntryNodeSerializer(StrictSerializer):
    id = serializers.UUIDField(read_only=True)
    name = StrictCharField()
    description = StrictCharField(required=False, allow_blank=True, default="")


class MatchingPolicySerializer(StrictSerializer):
    properties = serializers.ListField(child=StrictCharField())
    caseSensitive = StrictBooleanField(required=False, default=False)


class AggregateNodeSerializer(StrictSerializer):
    id = serializers.UUIDField(read_only=True)
    name = StrictCharField()
    description = StrictCharField(required=False, allow_blank=True, default="")
    entryNodes = serializers.ListField(child=serializers.UUIDField())
    matchingPolicy = MatchingPolicySerializer()


def node_document(node: Node) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": str(node.id),
        "name": node.name,
        "description": node.description,
    }
    if node.is_aggregate:
        document["entryNodes"] = [
            str(pk)
            for pk in node.entry_nodes.order_by("id").values_list("id", flat=True)
        ]
        document["matchingPolicy"] = {
            "properties": list(node.matching_properties),
            "caseSensitive": node.matching_case_sensitive,
        }
    return document


def _entry_nodes(workspace: Workspace, ids: list[uuid.UUID]) -> list[Node]:
    """Return the nodes named by id, refusing ids that are not in the workspace."""
    found = {
        node.id: node for node in Node.objects.filter(workspace=workspace, id__in=ids)
    }
    for index, pk in enumerate(ids):
        if pk not in found:
            raise ApiError(
                400,
                f"There is no node {pk} in this workspace.",
                "not_found",
                f"entryNodes[{index}]",
            )
    return [found[pk] for pk in ids]


def _node(workspace: Workspace, node_id: uuid.UUID, kind: str) -> Node:
    node = Node.objects.filter(workspace=workspace, id=node_id, kind=kind).first()
    if node is None:
        raise exceptions.NotFound("There is no such node.")
    return node


class EntryNodesView(ConfigView):
    @extend_schema(
        operation_id="entry_nodes_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of("EntryNodePage", EntryNodeSerializer),
            **error_responses(400),
        },
    )
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace = workspace_for(request, workspace_id)
        nodes = Node.objects.filter(workspace=workspace, kind=Node.Kind.ENTRY)
        return Response(paged(request, nodes, node_document))

    @extend_schema(
        operation_id="entry_nodes_create",
        request=EntryNodeSerializer,
        responses={201: EntryNodeSerializer, **error_responses(*WRITE_ERRORS, 409)},
    )
    def post(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace = workspace_for(request, workspace_id)
        data = _valid(EntryNodeSerializer, request.data)
        node = services.entry_node_create(workspace=workspace, **data)
        return created(node_document(node))


class EntryNodeView(ConfigView):
    @extend_schema(
        operation_id="entry_nodes_get",
        responses={200: EntryNodeSerializer, **error_responses()},
    )
    def get(
        self, request: Request, workspace_id: uuid.UUID, node_id: uuid.UUID
    ) -> Response:
        node = _node(workspace_for(request, workspace_id), node_id, Node.Kind.ENTRY)
        return Response(node_document(node))

    @extend_schema(
        operation_id="entry_nodes_update",
        request=EntryNodeSerializer,
        responses={200: EntryNodeSerializer, **error_responses(*WRITE_ERRORS, 409)},
    )
    def put(
        self, request: Request, workspace_id: uuid.UUID, node_id: uuid.UUID
    ) -> Response:
        node = _node(workspace_for(request, workspace_id), node_id, Node.Kind.ENTRY)
        data = _valid(EntryNodeSerializer, request.data)
        node = services.node_update(node=node, **data)
        return Response(node_document(node))

    @extend_schema(
        operation_id="entry_nodes_delete",
        responses={204: None, **error_responses(409)},
    )
    def delete(
        self, request: Request, workspace_id: uuid.UUID, node_id: uuid.UUID
    ) -> Response:
        node = _node(workspace_for(request, workspace_id), node_id, Node.Kind.ENTRY)
        services.node_delete(node=node)
        return Response(status=204)


class AggregateNodesView(ConfigView):
    @extend_schema(
        operation_id="aggregate_nodes_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of("AggregateNodePage", AggregateNodeSerializer),
            **error_responses(400),
        },
    )
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace = workspace_for(request, workspace_id)
        nodes = Node.objects.filter(workspace=workspace, kind=Node.Kind.AGGREGATE)
        return Response(paged(request, nodes, node_document))

    @extend_schema(
        operation_id="aggregate_nodes_create",
        request=AggregateNodeSerializer,
        responses={201: AggregateNodeSerializer, **error_responses(*WRITE_ERRORS, 409)},
    )
    def post(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace = workspace_for(request, workspace_id)
        data = _valid(AggregateNodeSerializer, request.data)
        node = services.aggregate_node_create(
            workspace=workspace,
            name=data["name"],
            description=data["description"],
            entry_nodes=_entry_nodes(workspace, data["entryNodes"]),
            matching_properties=data["matchingPolicy"]["properties"],
            case_sensitive=data["matchingPolicy"]["caseSensitive"],
        )
        return created(node_document(node))


class AggregateNodeView(ConfigView):
    @extend_schema(
        operation_id="aggregate_nodes_get",
        responses={200: AggregateNodeSerializer, **error_responses()},
    )
    def get(
        self, request: Request, workspace_id: uuid.UUID, node_id: uuid.UUID
    ) -> Response:
        node = _node(workspace_for(request, workspace_id), node_id, Node.Kind.AGGREGATE)
        return Response(node_document(node))

    @extend_schema(
        operation_id="aggregate_nodes_update",
        request=AggregateNodeSerializer,
        responses={200: AggregateNodeSerializer, **error_responses(*WRITE_ERRORS, 409)},
    )
    def put(
        self, request: Request, workspace_id: uuid.UUID, node_id: uuid.UUID
    ) -> Response:
        workspace = workspace_for(request, workspace_id)
        node = _node(workspace, node_id, Node.Kind.AGGREGATE)
        data = _valid(AggregateNodeSerializer, request.data)
        node = services.node_update(
            node=node,
            name=data["name"],
            description=data["description"],
            entry_nodes=_entry_nodes(workspace, data["entryNodes"]),
            matching_properties=data["matchingPolicy"]["properties"],
            case_sensitive=data["matchingPolicy"]["caseSensitive"],
        )
        return Response(node_document(node))

    @extend_schema(
        operation_id="aggregate_nodes_delete",
        responses={204: None, **error_responses(409)},
    )
    def delete(
        self, request: Request, workspace_id: uuid.UUID, node_id: uuid.UUID
    ) -> Response:
        node = _node(workspace_for(request, workspace_id), node_id, Node.Kind.AGGREGATE)
        services.node_delete(node=node)
        return Response(status=204)


# Customers.


@extend_schema_field(OpenApiTypes.OBJECT)
class ObjectField(serializers.JSONField):
    pass


class SourceInfoSerializer(serializers.Serializer[Any]):
    registeredBy = serializers.UUIDField(allow_null=True, required=False)
    updatedBy = serializers.UUIDField(allow_null=True, required=False)


class TagsSerializer(serializers.Serializer[Any]):
    auto = serializers.ListField(child=serializers.CharField(), required=False)
    manual = serializers.ListField(child=serializers.CharField(), required=False)


class CustomerSerializer(serializers.Serializer[Any]):
    """The Contacthub customer document (documentation only).

    Requests are validated by hub.services against the customer schema;
    with `fields`, responses carry only the properties asked for.
    """

    id = serializers.UUIDField(required=False, read_only=True)
    nodeId = serializers.UUIDField(required=False)
    externalId = serializers.CharField(required=False, allow_null=True)
    enabled = serializers.BooleanField(required=False)
    registeredAt = serializers.CharField(required=False, read_only=True)
    updatedAt = serializers.CharField(required=False, read_only=True)
    sourceInfo = SourceInfoSerializer(required=False, read_only=True)
    base = ObjectField(required=False)
    extended = ObjectField(required=False)
    extra = serializers.CharField(required=False, allow_null=True)
    consents = ObjectField(required=False)
    tags = TagsSerializer(required=False)
    memberIds = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        read_only=True,
        help_text="On an aggregate node: the customers merged into the profile.",
    )


class CustomerIdSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()


class CustomerExistsDataSerializer(serializers.Serializer[Any]):
    customer = CustomerIdSerializer()


CUSTOMER_QUERY = [
    OpenApiParameter("nodeId", OpenApiTypes.UUID, description="Only this node."),
    OpenApiParameter(
        "externalId", OpenApiTypes.STR, description="Only this externalId."
    ),
    OpenApiParameter(
        "fields",
        OpenApiTypes.STR,
        description="Comma-separated properties to include (dotted paths allowed).",
    ),
    *PAGE_PARAMETERS,
]


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object.", "invalid")
    return data


def _valid(serializer_class: type[serializers.Serializer[Any]], data: Any) -> Any:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _uuid(value: Any, field: str) -> uuid.UUID:
    try:
        if isinstance(value, str):
            return uuid.UUID(value)
    except ValueError:
        pass
    raise ApiError(400, f"{field} must be a UUID.", "invalid", field)


def _workspace_node(workspace: Workspace, node_id: Any, field: str = "nodeId") -> Node:
    if node_id in (None, ""):
        raise ApiError(400, f"{field} is required.", "required", field)
    pk = _uuid(node_id, field)
    node = Node.objects.filter(workspace=workspace, id=pk).first()
    if node is None:
        raise ApiError(
            400, "There is no such node in this workspace.", "not_found", field
        )
    return node


def _project(document: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Keep only the listed (dotted) properties of a document, and its id."""
    result: dict[str, Any] = {"id": document["id"]}
    missing = object()
    for path in fields:
        value = get_path(document, path, missing)
        if value is not missing:
            set_path(result, path, value)
    return result


def _renderer(request: Request) -> Any:
    raw = request.query_params.get("fields", "")
    fields = [part.strip() for part in raw.split(",") if part.strip()]
    if not fields:
        return lambda document: document
    return lambda document: _project(document, fields)


class CustomerContext:
    """A request's workspace and the nodes its token may reach."""

    def __init__(self, request: Request, workspace_id: uuid.UUID) -> None:
        self.token = request_token(request)
        self.workspace = workspace_for(request, workspace_id)
        self.scope = NodeScope(self.token)
        self.source_id = self.token.source_id

    def customer(self, customer_id: uuid.UUID, *, write: bool = False) -> Customer:
        customer = (
            Customer.objects.select_related("node")
            .filter(id=customer_id, node__workspace=self.workspace)
            .first()
        )
        if customer is None:
            raise exceptions.NotFound("There is no such customer.")
        if write:
            self.scope.check_write(customer.node_id)
        elif not self.scope.can_read_storage(customer.node_id):
            raise exceptions.PermissionDenied("This source may not read the node.")
        return customer


class CustomersView(ApiView):
    @extend_schema(
        operation_id="customers_list",
        parameters=CUSTOMER_QUERY,
        responses={
            200: page_of("CustomerPage", CustomerSerializer),
            **error_responses(400),
        },
    )
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        context = CustomerContext(request, workspace_id)
        if "query" in request.query_params:
            # Answering every customer to a filtered request would mislead
            # the client (and anything it then does with the list).
            raise ApiError(
                400,
                "Contacthub queries are not supported; filter by nodeId.",
                "unsupported",
                "query",
            )
        render = _renderer(request)
        external_id = request.query_params.get("externalId")
        node_id = request.query_params.get("nodeId")
        if node_id:
            node = _workspace_node(context.workspace, node_id)
            context.scope.check_read(node)
            if node.is_aggregate:
                profiles = [
                    profile
                    for profile in aggregate_profiles(node)
                    if external_id is None or profile["externalId"] == external_id
                ]
                return Response(paged(request, profiles, render))
            customers = node_customers(node)
        else:
            customers = Customer.objects.filter(node__workspace=context.workspace)
            if context.scope.readable is not None:
                customers = customers.filter(node_id__in=context.scope.readable)
        if external_id is not None:
            customers = customers.filter(external_id=external_id)
        return Response(
            paged(request, customers, lambda customer: render(customer.as_document()))
        )

    @extend_schema(
        operation_id="customers_create",
        request=CustomerSerializer,
        responses={
            201: CustomerSerializer,
            409: OpenApiResponse(
                description=(
                    "CUSTOMER_ALREADY_EXISTS: `data.customer.id` names the customer "
                    "holding the externalId; NODE_READ_ONLY on an aggregate node."
                ),
                response=error_responses(409)[409].response,
            ),
            **{k: v for k, v in error_responses(*WRITE_ERRORS).items() if k != 409},
        },
    )
    def post(self, request: Request, workspace_id: uuid.UUID) -> Response:
        context = CustomerContext(request, workspace_id)
        data = dict(_body(request))
        node = _workspace_node(context.workspace, data.pop("nodeId", None))
        context.scope.check_write(node.id)
        customer = services.customer_create(
            node=node, data=data, source_id=context.source_id
        )
        return created(customer.as_document())


def _check_same_node(data: dict[str, Any], customer: Customer) -> None:
    if "nodeId" in data and str(data["nodeId"]) != str(customer.node_id):
        raise ApiError(
            400, "A customer cannot move to another node.", "invalid", "nodeId"
        )


class CustomerView(ApiView):
    @extend_schema(
        operation_id="customers_get",
        parameters=[CUSTOMER_QUERY[2]],
        responses={200: CustomerSerializer, **error_responses(400)},
    )
    def get(
        self, request: Request, workspace_id: uuid.UUID, customer_id: uuid.UUID
    ) -> Response:
        context = CustomerContext(request, workspace_id)
        customer = context.customer(customer_id)
        return Response(_renderer(request)(customer.as_document()))

    @extend_schema(
        operation_id="customers_replace",
        request=CustomerSerializer,
        responses={200: CustomerSerializer, **error_responses(*WRITE_ERRORS, 409)},
    )
    def put(
        self, request: Request, workspace_id: uuid.UUID, customer_id: uuid.UUID
    ) -> Response:
        context = CustomerContext(request, workspace_id)
        customer = context.customer(customer_id, write=True)
        data = dict(_body(request))
        _check_same_node(data, customer)
        customer = services.customer_replace(
            customer=customer, data=data, source_id=context.source_id
        )
        return Response(customer.as_document())

    @extend_schema(
        operation_id="customers_patch",
        description="An RFC 7396 JSON merge patch of the writable properties.",
        request=CustomerSerializer,
        responses={200: CustomerSerializer, **error_responses(*WRITE_ERRORS, 409)},
    )
    def patch(
        self, request: Request, workspace_id: uuid.UUID, customer_id: uuid.UUID
    ) -> Response:
        context = CustomerContext(request, workspace_id)
        customer = context.customer(customer_id, write=True)
        patch = dict(_body(request))
        _check_same_node(patch, customer)
        patch.pop("nodeId", None)
        customer = services.customer_patch(
            customer=customer, patch=patch, source_id=context.source_id
        )
        return Response(customer.as_document())

    @extend_schema(
        operation_id="customers_delete",
        responses={204: None, **error_responses(409)},
    )
    def delete(
        self, request: Request, workspace_id: uuid.UUID, customer_id: uuid.UUID
    ) -> Response:
        context = CustomerContext(request, workspace_id)
        customer = context.customer(customer_id, write=True)
        services.customer_delete(customer=customer, source_id=context.source_id)
        return Response(status=204)


# Subscriptions of a customer: writes of base.subscriptions.


class PreferenceSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(allow_null=True, required=False)
    value = serializers.CharField(allow_null=True, required=False)


class CustomerSubscriptionSerializer(serializers.Serializer[Any]):
    """A subscription entry (validated by the customer schema in hub.services)."""

    id = serializers.CharField()
    name = serializers.CharField(allow_null=True, required=False)
    type = serializers.CharField(allow_null=True, required=False)
    kind = serializers.ChoiceField(
        ["DIGITAL_MESSAGE", "SERVICE", "OTHER"], allow_null=True, required=False
    )
    subscribed = serializers.BooleanField(allow_null=True, required=False)
    startDate = serializers.CharField(allow_null=True, required=False)
    endDate = serializers.CharField(allow_null=True, required=False)
    subscriberId = serializers.CharField(allow_null=True, required=False)
    registeredAt = serializers.CharField(allow_null=True, required=False)
    updatedAt = serializers.CharField(allow_null=True, required=False)
    preferences = PreferenceSerializer(many=True, allow_null=True, required=False)


def _subscriptions(customer: Customer) -> list[dict[str, Any]]:
    return list(customer.base.get("subscriptions") or [])


def _entry(customer: Customer, subscription_id: str) -> dict[str, Any]:
    for entry in _subscriptions(customer):
        if entry.get("id") == subscription_id:
            return entry
    raise exceptions.NotFound("The customer has no such subscription.")


def _write_subscriptions(
    context: CustomerContext, customer_id: uuid.UUID, change: Any
) -> Customer:
    """Rewrite a customer's subscription list under a row lock.

    The lock makes the read of the current list and the write of the new
    one a single step, so two clients adding subscriptions both land.
    """
    with transaction.atomic():
        customer = context.customer(customer_id, write=True)
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        customer.refresh_from_db()
        entries = change(_subscriptions(customer))
        return services.customer_patch(
            customer=customer,
            patch={"base": {"subscriptions": entries}},
            source_id=context.source_id,
        )


class CustomerSubscriptionsView(ApiView):
    @extend_schema(
        operation_id="customer_subscriptions_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of("CustomerSubscriptionPage", CustomerSubscriptionSerializer),
            **error_responses(400),
        },
    )
    def get(
        self, request: Request, workspace_id: uuid.UUID, customer_id: uuid.UUID
    ) -> Response:
        context = CustomerContext(request, workspace_id)
        customer = context.customer(customer_id)
        return Response(paged(request, _subscriptions(customer), lambda entry: entry))

    @extend_schema(
        operation_id="customer_subscriptions_add",
        request=CustomerSubscriptionSerializer,
        responses={
            201: CustomerSubscriptionSerializer,
            **error_responses(*WRITE_ERRORS, 409),
        },
    )
    def post(
        self, request: Request, workspace_id: uuid.UUID, customer_id: uuid.UUID
    ) -> Response:
        context = CustomerContext(request, workspace_id)
        entry = _body(request)
        subscription_id = entry.get("id")

        def add(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if any(each.get("id") == subscription_id for each in entries):
                raise ApiError(
                    409,
                    "The customer already has this subscription.",
                    "SUBSCRIPTION_ALREADY_EXISTS",
                    "id",
                )
            return [*entries, entry]

        customer = _write_subscriptions(context, customer_id, add)
        return created(_entry(customer, subscription_id))  # type: ignore[arg-type]


class CustomerSubscriptionView(ApiView):
    @extend_schema(
        operation_id="customer_subscriptions_update",
        request=CustomerSubscriptionSerializer,
        responses={
            200: CustomerSubscriptionSerializer,
            **error_responses(*WRITE_ERRORS, 409),
        },
    )
    def put(
        self,
        request: Request,
        workspace_id: uuid.UUID,
        customer_id: uuid.UUID,
        subscription_id: str,
    ) -> Response:
        context = CustomerContext(request, workspace_id)
        entry = {**_body(request)}
        if entry.setdefault("id", subscription_id) != subscription_id:
            raise ApiError(400, "The id does not match the path.", "invalid", "id")

        def replace(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if not any(each.get("id") == subscription_id for each in entries):
                raise exceptions.NotFound("The customer has no such subscription.")
            return [
                entry if each.get("id") == subscription_id else each for each in entries
            ]

        customer = _write_subscriptions(context, customer_id, replace)
        return Response(_entry(customer, subscription_id))

    @extend_schema(
        operation_id="customer_subscriptions_delete",
        responses={204: None, **error_responses(409)},
    )
    def delete(
        self,
        request: Request,
        workspace_id: uuid.UUID,
        customer_id: uuid.UUID,
        subscription_id: str,
    ) -> Response:
        context = CustomerContext(request, workspace_id)

        def remove(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [each for each in entries if each.get("id") != subscription_id]
            if len(kept) == len(entries):
                raise exceptions.NotFound("The customer has no such subscription.")
            return kept

        _write_subscriptions(context, customer_id, remove)
        return Response(status=204)
