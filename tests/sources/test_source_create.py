import pytest
from django.core.exceptions import ValidationError

from sources.crypto import decrypt, identity_hash
from sources.models import Provider, SendOptions, Source, SourceChange
from sources.send.gateway import SendCredentials
from sources.services import (
    FieldRow,
    NodeGrant,
    SourceSpec,
    SubscriptionRow,
    source_create,
)
from tests.conftest import TEST_CREDENTIALS
from tests.factories import (
    AggregateNodeFactory,
    CustomerFactory,
    NodeFactory,
    SubscriptionSystemFactory,
)

from .helpers import FIRST_NAME, USERDB_FIELDS, codes, create_send_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def node():
    return NodeFactory()


def test_it_creates_a_send_source_with_its_rows(fake_send, node):
    system = SubscriptionSystemFactory(workspace=node.workspace, system_id="news")
    row = SubscriptionRow("news", 11, "WF-NEWS")

    source = create_send_source(node.workspace, node, subscriptions=(row,))

    assert source.provider == Provider.CONTACTSEND
    assert source.nodes.get().node == node
    assert source.send.userdb_id == 7
    assert [m.hub_field for m in source.field_map.all()] == [
        "base.contacts.email",
        "base.firstName",
    ]
    mapping = source.subscription_rows.get()
    assert mapping.hub_system == system
    assert mapping.registration_field == "news_status"


def test_it_stores_keys_as_ciphertext_and_a_keyed_hash(fake_send, node):
    source = create_send_source(node.workspace, node)
    options = SendOptions.objects.get(source=source)

    assert TEST_CREDENTIALS.api_key not in options.api_key_encrypted
    assert TEST_CREDENTIALS.user_key not in options.user_key_encrypted
    assert decrypt(options.api_key_encrypted) == TEST_CREDENTIALS.api_key
    assert options.api_key_hash == identity_hash(TEST_CREDENTIALS.api_key)
    assert options.api_key_hint == TEST_CREDENTIALS.api_key[-4:]


def test_it_audits_the_creation_without_secrets(fake_send, node):
    source = create_send_source(node.workspace, node)

    entry = SourceChange.objects.get(source_id=source.id)
    assert entry.action == "created"
    assert entry.changes["apiKey"] == "changed"
    assert entry.changes["userKey"] == "changed"
    assert TEST_CREDENTIALS.api_key not in str(entry.changes)
    assert entry.changes["userDbId"] == [None, 7]


def test_a_node_can_have_one_send_source(fake_send, node):
    create_send_source(node.workspace, node)
    fake_send.seed(TEST_CREDENTIALS, 8, fields=USERDB_FIELDS)

    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, userdb_id=8)

    assert codes(error.value) == {"NODE_HAS_SEND_SOURCE"}


def test_an_api_source_does_not_block_a_send_source(fake_send, node):
    source_create(
        workspace=node.workspace,
        provider=Provider.API,
        spec=SourceSpec(name="API", nodes=(NodeGrant(node, "RW"),)),
    )

    create_send_source(node.workspace, node)

    assert Source.objects.count() == 2


def test_a_userdb_syncs_with_one_node_only(fake_send, node):
    create_send_source(node.workspace, node)
    other = NodeFactory(workspace=node.workspace)

    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, other)

    assert codes(error.value) == {"USERDB_ALREADY_SYNCED"}


def test_the_same_userdb_id_of_another_account_is_free(fake_send, node):
    create_send_source(node.workspace, node)
    other_account = SendCredentials("test-api-key-0002", "test-user-key-0002")
    fake_send.seed(other_account, 7, fields=USERDB_FIELDS)
    other = NodeFactory(workspace=node.workspace)

    create_send_source(
        node.workspace,
        other,
        api_key=other_account.api_key,
        user_key=other_account.user_key,
    )

    assert SendOptions.objects.filter(userdb_id=7).count() == 2


def test_the_userdb_must_be_empty(fake_send, node):
    fake_send.seed(TEST_CREDENTIALS, 9, fields=USERDB_FIELDS, subscribers=3)

    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, userdb_id=9)

    assert codes(error.value) == {"USERDB_NOT_EMPTY"}
    assert not Source.objects.exists()


def test_exactly_one_active_node_is_required(fake_send, node):
    second = NodeFactory(workspace=node.workspace)

    with pytest.raises(ValidationError) as none:
        create_send_source(node.workspace, node, nodes=())
    with pytest.raises(ValidationError) as two:
        create_send_source(
            node.workspace, node, nodes=(NodeGrant(node, "RW"), NodeGrant(second, "R"))
        )

    assert codes(none.value) == {"SINGLE_NODE_REQUIRED"}
    assert codes(two.value) == {"SINGLE_NODE_REQUIRED"}


@pytest.mark.parametrize("permission", ["W", "RW"])
def test_an_aggregate_node_can_only_be_read(fake_send, permission):
    aggregate = AggregateNodeFactory()

    with pytest.raises(ValidationError) as error:
        create_send_source(aggregate.workspace, aggregate, permission=permission)

    assert codes(error.value) == {"AGGREGATE_NODE_READ_ONLY"}


def test_an_aggregate_node_with_permission_r_is_accepted(fake_send):
    aggregate = AggregateNodeFactory()

    source = create_send_source(aggregate.workspace, aggregate, permission="R")

    assert source.nodes.get().permission == "R"


def test_an_aggregate_node_takes_no_subscription_rows(fake_send):
    aggregate = AggregateNodeFactory()
    SubscriptionSystemFactory(workspace=aggregate.workspace, system_id="news")

    with pytest.raises(ValidationError) as error:
        create_send_source(
            aggregate.workspace,
            aggregate,
            permission="R",
            subscriptions=(SubscriptionRow("news", 11, "WF-NEWS"),),
        )

    assert codes(error.value) == {"AGGREGATE_NODE_NO_SUBSCRIPTIONS"}


def test_a_matching_field_is_required(fake_send, node):
    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, fields=(FIRST_NAME,))

    assert codes(error.value) == {"MATCHING_FIELD_REQUIRED"}


def test_every_broken_rule_is_reported_at_once(fake_send):
    aggregate = AggregateNodeFactory()
    fake_send.seed(TEST_CREDENTIALS, 9, fields=USERDB_FIELDS, subscribers=1)

    with pytest.raises(ValidationError) as error:
        create_send_source(
            aggregate.workspace, aggregate, userdb_id=9, fields=(FIRST_NAME,)
        )

    assert codes(error.value) == {
        "AGGREGATE_NODE_READ_ONLY",
        "MATCHING_FIELD_REQUIRED",
        "USERDB_NOT_EMPTY",
    }


def test_a_node_with_customers_may_get_a_source(fake_send, node):
    CustomerFactory(node=node)

    source = create_send_source(node.workspace, node)

    assert source.enabled


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (FieldRow("base.nickname", "firstName"), "invalid_hub_field"),
        (FieldRow("base.lastName", "surname"), "invalid_send_field"),
        (FieldRow("base.lastName", "id"), "reserved_send_field"),
        (FieldRow("base.lastName", "lastModified"), "reserved_send_field"),
        (FieldRow("base.lastName", "news_status"), "invalid_send_field"),
        (FieldRow("base.firstName", "active"), "incompatible_types"),
        (FieldRow("base.lastName", "email"), "duplicate"),
    ],
)
def test_a_bad_field_row_names_its_place(fake_send, node, row, code):
    fields = (
        FieldRow("base.contacts.email", "email", matching=True),
        row,
    )

    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, fields=fields)

    assert code in codes(error.value)
    assert "properties.fields[1]" in error.value.error_dict


@pytest.mark.parametrize(
    ("row", "code"),
    [
        (SubscriptionRow("missing", 11, "WF-NEWS"), "invalid_hub_subscription"),
        (SubscriptionRow("news", 99, "WF-NEWS"), "invalid_send_subscription"),
        (SubscriptionRow("news", 11, " "), "required"),
        (SubscriptionRow("news", 11, "WF-OTHER"), "webform_code_mismatch"),
    ],
)
def test_a_bad_subscription_row_names_its_place(fake_send, node, row, code):
    SubscriptionSystemFactory(workspace=node.workspace, system_id="news")

    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, subscriptions=(row,))

    assert codes(error.value) == {code}
    assert "properties.subscriptions[0]" in error.value.error_dict


def test_refused_keys_name_the_api_key(fake_send, node):
    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, api_key="test-wrong-key")

    assert codes(error.value) == {"SEND_AUTHENTICATION_FAILED"}
    assert "properties.apiKey" in error.value.error_dict


def test_an_unknown_userdb_names_the_userdb(fake_send, node):
    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, userdb_id=404)

    assert codes(error.value) == {"SEND_USERDB_NOT_FOUND"}


def test_keys_are_required(fake_send, node):
    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, api_key=None, user_key="")

    assert set(error.value.error_dict) == {"properties.apiKey", "properties.userKey"}


def test_a_node_of_another_workspace_is_refused(fake_send, node):
    stranger = NodeFactory()

    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, stranger)

    assert "invalid" in codes(error.value)
