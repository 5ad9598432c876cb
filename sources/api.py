"""REST endpoints of the sources configuration, Send discovery and the sync.

A source is read and written in one representation; PUT replaces it and
PATCH is a JSON merge patch over it. Either way the view builds a full
SourceSpec and the services apply the rules. Send keys are write-only:
responses carry only their hints, and a write without them keeps the
stored ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from hub.documents import merge_patch
from hub.fields import EXTENDED_PATH, MAPPABLE_FIELDS, STRING
from hub.models import Node, Workspace
from hubsync.api.access import workspace_for
from hubsync.api.errors import ApiError
from hubsync.api.paging import PAGE_PARAMETERS, page_body, page_params, paged
from hubsync.api.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    StrictUUIDField,
    page_of,
)
from hubsync.api.views import WRITE_ERRORS, ConfigView, created, error_responses
from sync.selectors import sync_errors, sync_state
from sync.services import sync_resync, sync_retry
from tokens.services import source_token_issue

from .models import Permission, Provider, Source
from .selectors import send_userdb_describe
from .send.gateway import SendCredentials
from .services import (
    FieldRow,
    NodeGrant,
    SendSettings,
    SourceSpec,
    SubscriptionRow,
    source_create,
    source_delete,
    source_spec,
    source_update,
)

DB_INT_MAX = 2_147_483_647

# Input.


class NodeGrantSerializer(StrictSerializer):
    id = StrictUUIDField()
    permission = serializers.ChoiceField(
        Permission.values, default=Permission.READ_WRITE
    )


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "uuid", "description": "A node with RW."},
            {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "permission": {"type": "string", "enum": Permission.values},
                },
                "required": ["id"],
                "additionalProperties": False,
            },
        ]
    }
)
class NodeGrantField(serializers.Field):  # type: ignore[type-arg]
    """A node grant: `{id, permission}`, or a bare node id meaning RW."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            data = {"id": data}
        serializer = NodeGrantSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def to_representation(self, value: Any) -> Any:
        return value


class FieldRowSerializer(StrictSerializer):
    hubField = StrictCharField(max_length=200)
    sendField = StrictCharField(max_length=200)
    matching = StrictBooleanField(required=False, default=False)


class SubscriptionRowSerializer(StrictSerializer):
    hubSubscriptionId = StrictCharField(max_length=100)
    sendSubscriptionId = StrictIntegerField(min_value=0, max_value=DB_INT_MAX)
    webformCode = StrictCharField(max_length=200, allow_blank=True)


class SendPropertiesSerializer(StrictSerializer):
    """The provider properties of a CONTACTSEND source (keys are write-only)."""

    userKey = StrictCharField(required=False, write_only=True, max_length=1000)
    apiKey = StrictCharField(required=False, write_only=True, max_length=1000)
    userDbId = StrictIntegerField(min_value=0, max_value=DB_INT_MAX)
    fields = FieldRowSerializer(  # type: ignore[assignment]
        many=True, required=False, default=list
    )
    subscriptions = SubscriptionRowSerializer(many=True, required=False, default=list)


@extend_schema_field(SendPropertiesSerializer)
class PropertiesField(serializers.Field):  # type: ignore[type-arg]
    """Provider properties, checked against the provider once it is known."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError("Expected an object.", code="invalid")
        return dict(data)

    def to_representation(self, value: Any) -> Any:
        return value


class SourceInSerializer(StrictSerializer):
    provider = serializers.ChoiceField(Provider.values)
    name = StrictCharField(allow_blank=True)
    description = StrictCharField(required=False, allow_blank=True, default="")
    enabled = StrictBooleanField(required=False, default=True)
    nodes = serializers.ListField(child=NodeGrantField(), required=False, default=list)
    properties = PropertiesField(required=False, default=dict)


class SourceReplaceSerializer(SourceInSerializer):
    provider = serializers.ChoiceField(Provider.values, required=False)
    enabled = StrictBooleanField()
    nodes = serializers.ListField(child=NodeGrantField())


# Output (documentation of the representation).


class NodeGrantOutSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    permission = serializers.ChoiceField(Permission.values)


class SendPropertiesOutSerializer(serializers.Serializer[Any]):
    userDbId = serializers.IntegerField(required=False)
    apiKeyHint = serializers.CharField(required=False)
    userKeyHint = serializers.CharField(required=False)
    fields = FieldRowSerializer(many=True, required=False)  # type: ignore[assignment]
    subscriptions = SubscriptionRowSerializer(many=True, required=False)


class SourceSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    provider = serializers.ChoiceField(Provider.values)
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    nodes = NodeGrantOutSerializer(many=True)
    properties = SendPropertiesOutSerializer(
        help_text="Empty for an API source; keys appear only as hints."
    )


class SourceCreatedSerializer(SourceSerializer):
    token = serializers.CharField(
        required=False,
        help_text="API sources only: the bearer token, shown this one time.",
    )


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()


# Representation.


def _writable(source: Source) -> dict[str, Any]:
    """Return the representation of a source that a client may write back."""
    spec = source_spec(source)
    document: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "enabled": spec.enabled,
        "nodes": [
            {"id": str(grant.node.id), "permission": grant.permission}
            for grant in spec.nodes
        ],
        "properties": {},
    }
    if spec.send is not None:
        document["properties"] = {
            "userDbId": spec.send.userdb_id,
            "fields": [
                {
                    "hubField": row.hub_field,
                    "sendField": row.send_field,
                    "matching": row.matching,
                }
                for row in spec.send.fields
            ],
            "subscriptions": [
                {
                    "hubSubscriptionId": row.hub_subscription_id,
                    "sendSubscriptionId": row.send_subscription_id,
                    "webformCode": row.webform_code,
                }
                for row in spec.send.subscriptions
            ],
        }
    return document


def source_document(source: Source) -> dict[str, Any]:
    document = {"id": str(source.id), "provider": source.provider, **_writable(source)}
    if source.is_send:
        document["properties"]["apiKeyHint"] = source.send.api_key_hint
        document["properties"]["userKeyHint"] = source.send.user_key_hint
    return document


def _spec(workspace: Workspace, provider: str, data: dict[str, Any]) -> SourceSpec:
    """Build the SourceSpec a parsed representation describes."""
    ids = [grant["id"] for grant in data["nodes"]]
    found = {
        node.id: node for node in Node.objects.filter(workspace=workspace, id__in=ids)
    }
    grants = []
    for index, grant in enumerate(data["nodes"]):
        node = found.get(grant["id"])
        if node is None:
            raise ApiError(
                400,
                "There is no such node in this workspace.",
                "not_found",
                f"nodes[{index}]",
            )
        grants.append(NodeGrant(node, grant["permission"]))
    return SourceSpec(
        name=data["name"],
        description=data["description"],
        enabled=data["enabled"],
        nodes=tuple(grants),
        send=_send_settings(provider, data["properties"]),
    )


def _send_settings(provider: str, properties: dict[str, Any]) -> SendSettings | None:
    if provider != Provider.CONTACTSEND:
        if properties:
            raise ApiError(
                400,
                "An API source has no provider properties.",
                "invalid",
                "properties",
            )
        return None
    serializer = SendPropertiesSerializer(data=properties)
    if not serializer.is_valid():
        raise serializers.ValidationError({"properties": serializer.errors})
    props = serializer.validated_data
    return SendSettings(
        userdb_id=props["userDbId"],
        api_key=props.get("apiKey") or None,
        user_key=props.get("userKey") or None,
        fields=tuple(
            FieldRow(row["hubField"], row["sendField"], row["matching"])
            for row in props["fields"]
        ),
        subscriptions=tuple(
            SubscriptionRow(
                row["hubSubscriptionId"], row["sendSubscriptionId"], row["webformCode"]
            )
            for row in props["subscriptions"]
        ),
    )


def _actor(request: Request) -> Any:
    return request.user if request.user.is_authenticated else None


def _source(request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID) -> Source:
    workspace = workspace_for(request, workspace_id)
    source = Source.objects.filter(workspace=workspace, id=source_id).first()
    if source is None:
        raise exceptions.NotFound("There is no such source.")
    return source


def _parse(serializer_class: type[serializers.Serializer[Any]], data: Any) -> Any:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _update(request: Request, source: Source, data: dict[str, Any]) -> Response:
    if data.get("provider", source.provider) != source.provider:
        raise ApiError(
            400, "The provider of a source cannot change.", "invalid", "provider"
        )
    spec = _spec(source.workspace, source.provider, data)
    source = source_update(source=source, spec=spec, actor=_actor(request))
    return Response(source_document(source))


class SourcesView(ConfigView):
    @extend_schema(
        operation_id="sources_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of("SourcePage", SourceSerializer),
            **error_responses(400),
        },
    )
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace = workspace_for(request, workspace_id)
        sources = Source.objects.filter(workspace=workspace).select_related("send")
        return Response(paged(request, sources, source_document))

    @extend_schema(
        operation_id="sources_create",
        description=(
            "Create a source. A CONTACTSEND source must meet every creation "
            "rule; all unmet rules are answered at once with 409. An API source "
            "gets a bearer token, returned in this response only."
        ),
        request=SourceInSerializer,
        responses={
            201: SourceCreatedSerializer,
            **error_responses(*WRITE_ERRORS, 409, 503),
        },
    )
    def post(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace = workspace_for(request, workspace_id)
        data = _parse(SourceInSerializer, request.data)
        spec = _spec(workspace, data["provider"], data)
        if data["provider"] != Provider.API:
            source = source_create(
                workspace=workspace,
                provider=data["provider"],
                spec=spec,
                actor=_actor(request),
            )
            return created(source_document(source))
        with transaction.atomic():
            source = source_create(
                workspace=workspace,
                provider=data["provider"],
                spec=spec,
                actor=_actor(request),
            )
            token = source_token_issue(source=source)
        return created({**source_document(source), "token": token})


class SourceView(ConfigView):
    @extend_schema(
        operation_id="sources_get",
        responses={200: SourceSerializer, **error_responses()},
    )
    def get(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        return Response(source_document(_source(request, workspace_id, source_id)))

    @extend_schema(
        operation_id="sources_replace",
        description=(
            "Replace a source's configuration. Without apiKey or userKey the "
            "stored keys are kept. Changes the modification table forbids are "
            "answered with 409, listing every unmet requirement."
        ),
        request=SourceReplaceSerializer,
        responses={200: SourceSerializer, **error_responses(*WRITE_ERRORS, 409, 503)},
    )
    def put(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        source = _source(request, workspace_id, source_id)
        return _update(request, source, _parse(SourceReplaceSerializer, request.data))

    @extend_schema(
        operation_id="sources_patch",
        description=(
            "A JSON merge patch over the source's representation: "
            '`{"properties": {"userDbId": 7}}` changes the userdb alone.'
        ),
        request=SourceReplaceSerializer(partial=True),
        responses={200: SourceSerializer, **error_responses(*WRITE_ERRORS, 409, 503)},
    )
    def patch(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        source = _source(request, workspace_id, source_id)
        if not isinstance(request.data, dict):
            raise ApiError(400, "The body must be a JSON object.", "invalid")
        merged = merge_patch(_writable(source), request.data)
        return _update(request, source, _parse(SourceReplaceSerializer, merged))

    @extend_schema(
        operation_id="sources_delete",
        responses={204: None, **error_responses()},
    )
    def delete(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        source_delete(
            source=_source(request, workspace_id, source_id), actor=_actor(request)
        )
        return Response(status=204)


class SourceTokenView(ConfigView):
    @extend_schema(
        operation_id="sources_refresh_token",
        description="Replace an API source's token; the old one stops working.",
        request=None,
        responses={200: TokenSerializer, **error_responses(400)},
    )
    def post(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        source = _source(request, workspace_id, source_id)
        if source.provider != Provider.API:
            raise ApiError(400, "Only API sources have tokens.", "invalid", "provider")
        return Response({"token": source_token_issue(source=source)})


# Discovery.


class DiscoverSerializer(StrictSerializer):
    userKey = StrictCharField(max_length=1000)
    apiKey = StrictCharField(max_length=1000)
    userDbId = StrictIntegerField(min_value=0, max_value=DB_INT_MAX)


class SendFieldSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    type = serializers.CharField()
    emailField = serializers.BooleanField()


class SendSubscriptionSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    registrationField = serializers.CharField()
    webformCode = serializers.CharField(allow_blank=True)


class UserDbSerializer(serializers.Serializer[Any]):
    userDbId = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    subscriberIdentifierField = serializers.CharField()
    fields = SendFieldSerializer(many=True)  # type: ignore[assignment]
    subscriptions = SendSubscriptionSerializer(many=True)
    subscriberCount = serializers.IntegerField()


def _unprefixed(error: ValidationError) -> ValidationError:
    """Name `properties.apiKey` as the discovery body's `apiKey`."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError(
        {
            key.removeprefix("properties."): value
            for key, value in error.error_dict.items()
        }
    )


class DiscoverView(ConfigView):
    @extend_schema(
        operation_id="send_discover",
        description="Ask Send for a userdb's fields, subscription systems and size.",
        request=DiscoverSerializer,
        responses={200: UserDbSerializer, **error_responses(*WRITE_ERRORS, 503)},
    )
    def post(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace_for(request, workspace_id)
        data = _parse(DiscoverSerializer, request.data)
        credentials = SendCredentials(api_key=data["apiKey"], user_key=data["userKey"])
        try:
            info = send_userdb_describe(credentials, data["userDbId"])
        except ValidationError as error:
            raise _unprefixed(error) from error
        userdb = info.userdb
        return Response(
            {
                "userDbId": userdb.identifier,
                "name": userdb.name,
                "description": userdb.description,
                "subscriberIdentifierField": userdb.subscriber_identifier_field,
                "fields": [
                    {"name": f.name, "type": f.type, "emailField": f.email_field}
                    for f in userdb.fields
                ],
                "subscriptions": [
                    {
                        "id": s.id,
                        "name": s.name,
                        "registrationField": s.registration_field,
                        "webformCode": s.webform_code,
                    }
                    for s in info.subscriptions
                ],
                "subscriberCount": info.subscriber_count,
            }
        )


class HubFieldSerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    type = serializers.CharField()


class HubFieldsSerializer(serializers.Serializer[Any]):
    fields = HubFieldSerializer(many=True)  # type: ignore[assignment]
    extendedPattern = serializers.CharField(
        help_text="Scalar `extended` properties matching this pattern map too."
    )
    extendedType = serializers.CharField()


class HubFieldsView(ConfigView):
    @extend_schema(
        operation_id="hub_fields_list",
        description="The Hub fields a Send field map can carry, with their types.",
        responses={200: HubFieldsSerializer, **error_responses()},
    )
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace_for(request, workspace_id)
        return Response(
            {
                "fields": [
                    {"path": path, "type": kind}
                    for path, kind in MAPPABLE_FIELDS.items()
                ],
                "extendedPattern": EXTENDED_PATH.pattern,
                "extendedType": STRING,
            }
        )


# The sync of a Send source.


class SyncLagSerializer(serializers.Serializer[Any]):
    oldestPendingSeconds = serializers.FloatField(allow_null=True)
    sinceLastPollSeconds = serializers.FloatField(allow_null=True)


class SyncRunSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    startedAt = serializers.CharField(allow_null=True)
    finishedAt = serializers.CharField(allow_null=True)
    added = serializers.IntegerField()
    updated = serializers.IntegerField()
    removed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    failed = serializers.IntegerField()
    conflicts = serializers.IntegerField()
    error = serializers.CharField(allow_null=True)


class SyncStateSerializer(serializers.Serializer[Any]):
    state = serializers.ChoiceField(["disabled", "initial", "syncing", "idle"])
    enabled = serializers.BooleanField()
    lag = SyncLagSerializer()
    pending = serializers.IntegerField()
    lastReconcileAt = serializers.CharField(allow_null=True)
    openErrors = serializers.IntegerField()
    lastRuns = SyncRunSerializer(many=True)


class SyncIssueSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    code = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)
    customerId = serializers.UUIDField(allow_null=True)
    subscriberId = serializers.IntegerField(allow_null=True)
    payload = serializers.JSONField(allow_null=True)
    createdAt = serializers.CharField(allow_null=True)
    resolvedAt = serializers.CharField(allow_null=True)


class SyncRetrySerializer(StrictSerializer):
    errorIds = serializers.ListField(
        child=StrictIntegerField(min_value=0, max_value=2**63 - 1),
        required=False,
        allow_null=True,
        default=None,
        help_text="The errors to retry; all open errors when absent.",
    )


class SyncRetriedSerializer(serializers.Serializer[Any]):
    queued = serializers.IntegerField()


def _send_source(
    request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
) -> Source:
    source = _source(request, workspace_id, source_id)
    if not source.is_send:
        raise ApiError(
            400, "Only Send sources are synchronized.", "invalid", "provider"
        )
    return source


class SyncStateView(ConfigView):
    @extend_schema(
        operation_id="sources_sync_state",
        description="The sync state of a Send source: state, lag and last runs.",
        responses={200: SyncStateSerializer, **error_responses(400)},
    )
    def get(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        source = _send_source(request, workspace_id, source_id)
        return Response(sync_state(source))


class SyncErrorsView(ConfigView):
    @extend_schema(
        operation_id="sources_sync_errors",
        description="The sync history of a Send source, newest first.",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of("SyncIssuePage", SyncIssueSerializer),
            **error_responses(400),
        },
    )
    def get(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        source = _send_source(request, workspace_id, source_id)
        page, size = page_params(request)
        items, total = sync_errors(source, offset=page * size, limit=size)
        return Response(page_body(items, total, page, size))


class SyncRetryView(ConfigView):
    @extend_schema(
        operation_id="sources_sync_retry",
        description="Queue the records of open sync errors again.",
        request=SyncRetrySerializer,
        responses={200: SyncRetriedSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        source = _send_source(request, workspace_id, source_id)
        data = _parse(SyncRetrySerializer, request.data)
        return Response({"queued": sync_retry(source, data["errorIds"])})


class SyncResyncView(ConfigView):
    @extend_schema(
        operation_id="sources_sync_resync",
        description="Compare and send every record again, and read Send anew.",
        request=None,
        responses={202: SyncStateSerializer, **error_responses(400)},
    )
    def post(
        self, request: Request, workspace_id: uuid.UUID, source_id: uuid.UUID
    ) -> Response:
        source = _send_source(request, workspace_id, source_id)
        sync_resync(source)
        return Response(sync_state(source), status=202)
