import pytest

from subscriptions.models import SubscriptionSystem
from tests.factories import SubscriptionSystemFactory

from .conftest import assert_error, ws_url

pytestmark = pytest.mark.django_db

SYSTEMS = "configuration/subscription-systems"


def test_subscription_systems_are_created_read_updated_and_deleted(admin, workspace):
    data = {"id": "newsletter", "name": "Newsletter", "kind": "SERVICE"}
    created = admin.post(ws_url(workspace, SYSTEMS), data, format="json")
    assert created.status_code == 201
    assert created.json() == data
    url = ws_url(workspace, f"{SYSTEMS}/newsletter")
    assert admin.get(url).json() == data
    updated = admin.put(url, {"name": "News", "kind": "OTHER"}, format="json")
    assert updated.json() == {"id": "newsletter", "name": "News", "kind": "OTHER"}
    assert admin.get(ws_url(workspace, SYSTEMS)).json()["page"]["totalElements"] == 1
    assert admin.delete(url).status_code == 204
    assert not SubscriptionSystem.objects.exists()


def test_a_taken_id_is_409_subscription_system_exists(admin, workspace):
    SubscriptionSystemFactory(workspace=workspace, system_id="news")
    response = admin.post(
        ws_url(workspace, SYSTEMS), {"id": "news", "name": "News"}, format="json"
    )
    assert_error(response, 409, "SUBSCRIPTION_SYSTEM_EXISTS", "id")


def test_an_invalid_id_or_kind_is_400_naming_the_field(admin, workspace):
    response = admin.post(
        ws_url(workspace, SYSTEMS), {"id": "no spaces", "name": "N"}, format="json"
    )
    assert_error(response, 400, "invalid", "id")
    response = admin.post(
        ws_url(workspace, SYSTEMS),
        {"id": "ok", "name": "N", "kind": "X"},
        format="json",
    )
    assert_error(response, 400, "invalid_choice", "kind")
    assert not SubscriptionSystem.objects.exists()


def test_the_id_of_a_subscription_system_cannot_change(admin, workspace):
    SubscriptionSystemFactory(workspace=workspace, system_id="news")
    response = admin.put(
        ws_url(workspace, f"{SYSTEMS}/news"),
        {"id": "other", "name": "N"},
        format="json",
    )
    assert_error(response, 400, "invalid", "id")
