import pytest
from django.urls import reverse

from sources.models import SendOptions, SourceChange
from tests.conftest import TEST_CREDENTIALS
from tests.factories import CustomerFactory, NodeFactory, UserFactory

from .helpers import create_send_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def source(fake_send):
    node = NodeFactory()
    return create_send_source(node.workspace, node)


def test_the_source_page_never_shows_a_secret(admin_client, source):
    options = SendOptions.objects.get(source=source)

    page = admin_client.get(reverse("admin:sources_source_change", args=[source.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert TEST_CREDENTIALS.api_key[-4:] in html
    for secret in (
        TEST_CREDENTIALS.api_key,
        TEST_CREDENTIALS.user_key,
        options.api_key_encrypted,
        options.user_key_encrypted,
        options.api_key_hash,
    ):
        assert secret not in html


def test_every_admin_list_page_renders(admin_client, source):
    CustomerFactory(node=source.nodes.get().node)
    for name in (
        "hub_workspace",
        "hub_node",
        "hub_customer",
        "sources_source",
        "sources_sourcechange",
        "subscriptions_subscriptionsystem",
    ):
        page = admin_client.get(reverse(f"admin:{name}_changelist"))
        assert page.status_code == 200, name
        assert TEST_CREDENTIALS.api_key not in page.content.decode()


def test_renaming_in_the_admin_goes_through_the_service(admin_client, source):
    url = reverse("admin:sources_source_change", args=[source.pk])
    form = {
        "name": "Renamed",
        "description": "",
        "enabled": "on",
        **_empty_inlines(),
    }

    page = admin_client.post(url, form)

    assert page.status_code == 302
    source.refresh_from_db()
    assert source.name == "Renamed"
    entry = SourceChange.objects.filter(source_id=source.id).first()
    assert entry.changes == {"name": ["Send", "Renamed"]}
    assert entry.actor_label.startswith("operator")


def test_the_disable_action_disables(admin_client, source):
    admin_client.post(
        reverse("admin:sources_source_changelist"),
        {"action": "disable", "_selected_action": [source.pk]},
    )

    source.refresh_from_db()
    assert not source.enabled


def _empty_inlines():
    prefixes = ["nodes", "send", "field_map", "subscription_rows"]
    form = {}
    for prefix in prefixes:
        form[f"{prefix}-TOTAL_FORMS"] = "0"
        form[f"{prefix}-INITIAL_FORMS"] = "0"
    return form
