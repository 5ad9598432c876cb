"""Who may do what: token kinds, workspaces, and a source token's nodes."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from rest_framework import exceptions, permissions
from rest_framework.request import Request

from hub.models import Node, Workspace
from tokens.models import AccessToken


def request_token(request: Request) -> AccessToken:
    token = request.auth
    if not isinstance(token, AccessToken):
        raise exceptions.NotAuthenticated()
    return token


class HasToken(permissions.BasePermission):
    """Any valid token; what it may reach is checked per workspace and node."""

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request_token(request)
        if token.source is not None and not token.source.enabled:
            raise exceptions.PermissionDenied("The source of this token is disabled.")
        return True


class IsAdminToken(HasToken):
    """Configuration endpoints: admin tokens only."""

    message = "Source tokens cannot use configuration endpoints."

    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and request_token(request).is_admin


def visible_workspaces(token: AccessToken) -> QuerySet[Workspace]:
    """Return the workspaces a token may reach."""
    if token.is_admin:
        assert token.user is not None
        if token.user.is_superuser:
            return Workspace.objects.all()
        return Workspace.objects.filter(members=token.user)
    assert token.source is not None
    return Workspace.objects.filter(pk=token.source.workspace_id)


def workspace_for(request: Request, workspace_id: uuid.UUID) -> Workspace:
    """Return a workspace the token may reach, or refuse with 403.

    A workspace the token cannot see is refused the same way whether or not
    it exists, so that ids cannot be probed; only a superuser gets 404.
    """
    token = request_token(request)
    workspace = visible_workspaces(token).filter(pk=workspace_id).first()
    if workspace is not None:
        return workspace
    if token.is_admin and token.user is not None and token.user.is_superuser:
        raise exceptions.NotFound("There is no such workspace.")
    raise exceptions.PermissionDenied("This token cannot use this workspace.")


class NodeScope:
    """The nodes a token may read and write in a workspace (None: all of them)."""

    def __init__(self, token: AccessToken) -> None:
        self.readable: set[uuid.UUID] | None = None
        self.writable: set[uuid.UUID] | None = None
        self.granted_reads: set[uuid.UUID] | None = None
        if token.source is None:
            return
        links = list(token.source.nodes.select_related("node"))
        self.granted_reads = {link.node_id for link in links if link.reads}
        self.writable = {link.node_id for link in links if link.writes}
        self.readable = set()
        for link in links:
            if link.reads:
                self.readable.update(link.node.storage_node_ids())

    def can_read_node(self, node: Node) -> bool:
        return self.granted_reads is None or node.id in self.granted_reads

    def can_read_storage(self, node_id: uuid.UUID) -> bool:
        return self.readable is None or node_id in self.readable

    def can_write(self, node_id: uuid.UUID) -> bool:
        return self.writable is None or node_id in self.writable

    def check_read(self, node: Node) -> None:
        if not self.can_read_node(node):
            raise exceptions.PermissionDenied("This source may not read the node.")

    def check_write(self, node_id: uuid.UUID) -> None:
        if not self.can_write(node_id):
            raise exceptions.PermissionDenied("This source may not write the node.")
