"""REST endpoints of the Hub subscription systems (configuration)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from hubsync.api.access import workspace_for
from hubsync.api.paging import PAGE_PARAMETERS, paged
from hubsync.api.serializers import StrictCharField, StrictSerializer, page_of
from hubsync.api.views import WRITE_ERRORS, ConfigView, created, error_responses

from . import services
from .models import SubscriptionSystem


class SubscriptionSystemSerializer(StrictSerializer):
    id = StrictCharField()
    name = StrictCharField()
    kind = serializers.ChoiceField(
        SubscriptionSystem.Kind.values, required=False, default="DIGITAL_MESSAGE"
    )


class SubscriptionSystemUpdateSerializer(SubscriptionSystemSerializer):
    id = StrictCharField(required=False)


def system_document(system: SubscriptionSystem) -> dict[str, Any]:
    return {"id": system.system_id, "name": system.name, "kind": system.kind}


def _renamed(error: ValidationError) -> ValidationError:
    """Name the model's `system_id` as the API's `id`."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError(
        {
            ("id" if key == "system_id" else key): value
            for key, value in error.error_dict.items()
        }
    )


class SubscriptionSystemsView(ConfigView):
    @extend_schema(
        operation_id="subscription_systems_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of("SubscriptionSystemPage", SubscriptionSystemSerializer),
            **error_responses(400),
        },
    )
    def get(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace = workspace_for(request, workspace_id)
        systems = SubscriptionSystem.objects.filter(workspace=workspace)
        return Response(paged(request, systems, system_document))

    @extend_schema(
        operation_id="subscription_systems_create",
        request=SubscriptionSystemSerializer,
        responses={
            201: SubscriptionSystemSerializer,
            **error_responses(*WRITE_ERRORS, 409),
        },
    )
    def post(self, request: Request, workspace_id: uuid.UUID) -> Response:
        workspace = workspace_for(request, workspace_id)
        serializer = SubscriptionSystemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            system = services.subscription_system_create(
                workspace=workspace,
                system_id=data["id"],
                name=data["name"],
                kind=data["kind"],
            )
        except ValidationError as error:
            raise _renamed(error) from error
        return created(system_document(system))


class SubscriptionSystemView(ConfigView):
    def _system(self, request: Request, workspace_id: uuid.UUID, system_id: str) -> Any:
        workspace = workspace_for(request, workspace_id)
        system = SubscriptionSystem.objects.filter(
            workspace=workspace, system_id=system_id
        ).first()
        if system is None:
            raise exceptions.NotFound("There is no such subscription system.")
        return system

    @extend_schema(
        operation_id="subscription_systems_get",
        responses={200: SubscriptionSystemSerializer, **error_responses()},
    )
    def get(
        self, request: Request, workspace_id: uuid.UUID, system_id: str
    ) -> Response:
        return Response(system_document(self._system(request, workspace_id, system_id)))

    @extend_schema(
        operation_id="subscription_systems_update",
        description="Change the name and kind; the id is fixed.",
        request=SubscriptionSystemUpdateSerializer,
        responses={
            200: SubscriptionSystemSerializer,
            **error_responses(*WRITE_ERRORS, 409),
        },
    )
    def put(
        self, request: Request, workspace_id: uuid.UUID, system_id: str
    ) -> Response:
        system = self._system(request, workspace_id, system_id)
        serializer = SubscriptionSystemUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("id", system_id) != system_id:
            raise serializers.ValidationError(
                {
                    "id": [
                        serializers.ErrorDetail("The id cannot change.", code="invalid")
                    ]
                }
            )
        try:
            system = services.subscription_system_update(
                system=system, name=data["name"], kind=data["kind"]
            )
        except ValidationError as error:
            raise _renamed(error) from error
        return Response(system_document(system))

    @extend_schema(
        operation_id="subscription_systems_delete",
        responses={204: None, **error_responses(409)},
    )
    def delete(
        self, request: Request, workspace_id: uuid.UUID, system_id: str
    ) -> Response:
        services.subscription_system_delete(
            system=self._system(request, workspace_id, system_id)
        )
        return Response(status=204)
