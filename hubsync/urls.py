from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hub import api as hub_api
from hubsync.api.errors import json_error
from hubsync.api.views import api_not_found
from sources import api as sources_api
from subscriptions import api as subscriptions_api

WORKSPACE = "hub/v1/workspaces/<uuid:workspace_id>/"
CONFIG = WORKSPACE + "configuration/"
SOURCE = CONFIG + "sources/<uuid:source_id>"

api_patterns = [
    path("hub/v1/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "hub/v1/docs",
        SpectacularSwaggerView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path("hub/v1/workspaces", hub_api.WorkspacesView.as_view()),
    path(WORKSPACE + "customers", hub_api.CustomersView.as_view()),
    path(WORKSPACE + "customers/<uuid:customer_id>", hub_api.CustomerView.as_view()),
    path(
        WORKSPACE + "customers/<uuid:customer_id>/subscriptions",
        hub_api.CustomerSubscriptionsView.as_view(),
    ),
    path(
        WORKSPACE + "customers/<uuid:customer_id>/subscriptions/<str:subscription_id>",
        hub_api.CustomerSubscriptionView.as_view(),
    ),
    path(CONFIG + "nodes/entries", hub_api.EntryNodesView.as_view()),
    path(CONFIG + "nodes/entries/<uuid:node_id>", hub_api.EntryNodeView.as_view()),
    path(CONFIG + "nodes/aggregates", hub_api.AggregateNodesView.as_view()),
    path(
        CONFIG + "nodes/aggregates/<uuid:node_id>", hub_api.AggregateNodeView.as_view()
    ),
    path(
        CONFIG + "subscription-systems",
        subscriptions_api.SubscriptionSystemsView.as_view(),
    ),
    path(
        CONFIG + "subscription-systems/<str:system_id>",
        subscriptions_api.SubscriptionSystemView.as_view(),
    ),
    path(CONFIG + "sources", sources_api.SourcesView.as_view()),
    path(SOURCE, sources_api.SourceView.as_view()),
    path(SOURCE + "/refresh-token", sources_api.SourceTokenView.as_view()),
    path(SOURCE + "/sync", sources_api.SyncStateView.as_view()),
    path(SOURCE + "/sync/errors", sources_api.SyncErrorsView.as_view()),
    path(SOURCE + "/sync/retry", sources_api.SyncRetryView.as_view()),
    path(SOURCE + "/sync/resync", sources_api.SyncResyncView.as_view()),
    path(CONFIG + "send/discover", sources_api.DiscoverView.as_view()),
    path(CONFIG + "hub-fields", sources_api.HubFieldsView.as_view()),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    *api_patterns,
    # Unknown API paths answer in the API's error shape, not an HTML page.
    re_path(r"^hub/", api_not_found),
]


def handler500(request: HttpRequest) -> JsonResponse:
    """Answer a server error in the API's error shape."""
    return json_error(request, 500, "server_error", "Internal error.")
