"""Strict input fields and the shared response shapes of the schema.

DRF's own fields coerce ("7" to 7, 1 to True, 5 to "5"); the API refuses
wrong types instead, and refuses unknown properties, so that a client's
mistake is a 400 rather than a silent guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictSerializer(serializers.Serializer[Any]):
    """A serializer that refuses properties it does not declare."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        key: [
                            serializers.ErrorDetail(
                                "This property is not allowed here.", code="unknown"
                            )
                        ]
                        for key in unknown
                    }
                )
        return super().to_internal_value(data)


# Shapes used only to document responses.


class ErrorItemSerializer(serializers.Serializer[Any]):
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer[Any]):
    message = serializers.CharField()
    errors = ErrorItemSerializer(many=True)  # type: ignore[assignment]
    data = serializers.DictField(allow_null=True)  # type: ignore[assignment]
    logref = serializers.CharField()


class PageSerializer(serializers.Serializer[Any]):
    size = serializers.IntegerField()
    totalElements = serializers.IntegerField()
    totalPages = serializers.IntegerField()
    number = serializers.IntegerField()


def page_of(name: str, element: type[serializers.Serializer[Any]]) -> type:
    """Return a documented list shape `{elements, page}` of `element`."""
    return type(
        name,
        (serializers.Serializer,),
        {"elements": element(many=True), "page": PageSerializer()},
    )
