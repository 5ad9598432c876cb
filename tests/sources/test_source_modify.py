import dataclasses

import pytest
from django.core.exceptions import ValidationError

from sources.models import Source, SourceChange
from sources.rules import MODIFICATION_TABLE, Change, Requirement, requirements_for
from sources.send.gateway import SendCredentials, SendSubscription
from sources.services import (
    FieldRow,
    NodeGrant,
    SubscriptionRow,
    source_spec,
    source_update,
)
from tests.conftest import TEST_CREDENTIALS
from tests.factories import (
    AggregateNodeFactory,
    CustomerFactory,
    NodeFactory,
    SubscriptionSystemFactory,
)

from .helpers import EMAIL_MATCH, FIRST_NAME, USERDB_FIELDS, codes, create_send_source

pytestmark = pytest.mark.django_db

OTHER_ACCOUNT = SendCredentials("test-api-key-0002", "test-user-key-0002")
NEWS = SendSubscription(11, "Weekly news", "news_status", "WF-NEWS")
D, E, N, U = (
    Requirement.DISABLED,
    Requirement.EXISTING_NODE_EMPTY,
    Requirement.NEW_NODE_EMPTY,
    Requirement.USERDB_EMPTY,
)


def test_the_table_has_the_rows_of_the_design():
    assert {
        frozenset({Change.NODE}): {D, N},
        frozenset({Change.API_KEY}): {D, E},
        frozenset({Change.NODE, Change.API_KEY}): {D, N},
        frozenset({Change.USERDB}): {D, E, U},
        frozenset({Change.NODE, Change.USERDB}): {D, N, U},
        frozenset({Change.SUBSCRIPTIONS}): {D},
        frozenset({Change.FIELD_MAP}): {D},
        frozenset({Change.PERMISSION}): {D},
    } == MODIFICATION_TABLE


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({Change.FIELD_MAP, Change.SUBSCRIPTIONS}, {D}),
        ({Change.API_KEY, Change.USERDB}, {D, E, U}),
        ({Change.NODE, Change.API_KEY, Change.USERDB}, {D, N, U}),
        ({Change.NODE, Change.FIELD_MAP}, {D, N}),
        ({Change.API_KEY, Change.FIELD_MAP}, {D, E}),
        ({Change.NODE, Change.USERDB, Change.SUBSCRIPTIONS}, {D, N, U}),
        (set(), set()),
    ],
)
def test_combined_changes_join_their_rows(changes, expected):
    assert requirements_for(changes) == expected


class Scene:
    """A Send source on `node`, and the means to propose each kind of change."""

    def __init__(self, fake_send, *, enabled: bool, crowded: bool):
        fake_send.seed(OTHER_ACCOUNT, 7, fields=USERDB_FIELDS, subscriptions=[NEWS])
        for account in (TEST_CREDENTIALS, OTHER_ACCOUNT):
            fake_send.seed(
                account,
                8,
                fields=USERDB_FIELDS,
                subscriptions=[NEWS],
                subscribers=2 if crowded else 0,
            )
        self.node = NodeFactory()
        self.workspace = self.node.workspace
        self.new_node = NodeFactory(workspace=self.workspace)
        SubscriptionSystemFactory(workspace=self.workspace, system_id="news")
        self.source = create_send_source(self.workspace, self.node)
        if crowded:
            CustomerFactory(node=self.node)
            CustomerFactory(node=self.new_node)
        if not enabled:
            self.update(enabled=False)

    def proposal(self, changes: set[Change]):
        spec = source_spec(self.source)
        send = spec.send
        if Change.NODE in changes:
            spec = dataclasses.replace(spec, nodes=(NodeGrant(self.new_node, "RW"),))
        if Change.PERMISSION in changes:
            spec = dataclasses.replace(spec, nodes=(NodeGrant(self.node, "R"),))
        if Change.API_KEY in changes:
            send = dataclasses.replace(
                send, api_key=OTHER_ACCOUNT.api_key, user_key=OTHER_ACCOUNT.user_key
            )
        if Change.USERDB in changes:
            send = dataclasses.replace(send, userdb_id=8)
        if Change.FIELD_MAP in changes:
            send = dataclasses.replace(
                send, fields=(*send.fields, FieldRow("base.lastName", "lastName"))
            )
        if Change.SUBSCRIPTIONS in changes:
            send = dataclasses.replace(
                send, subscriptions=(SubscriptionRow("news", 11, "WF-NEWS"),)
            )
        return dataclasses.replace(spec, send=send)

    def update(self, **fields):
        spec = dataclasses.replace(source_spec(self.source), **fields)
        self.source = source_update(source=self.source, spec=spec)
        return self.source


CASES = [
    *MODIFICATION_TABLE.items(),
    (frozenset({Change.FIELD_MAP, Change.SUBSCRIPTIONS}), frozenset({D})),
    (frozenset({Change.API_KEY, Change.USERDB}), frozenset({D, E, U})),
    (frozenset({Change.NODE, Change.API_KEY, Change.USERDB}), frozenset({D, N, U})),
]


@pytest.mark.parametrize(("changes", "needs"), CASES, ids=lambda v: "+".join(sorted(v)))
def test_each_row_reports_exactly_its_unmet_requirements(fake_send, changes, needs):
    scene = Scene(fake_send, enabled=True, crowded=True)

    with pytest.raises(ValidationError) as error:
        source_update(source=scene.source, spec=scene.proposal(set(changes)))

    assert codes(error.value) == {requirement.value for requirement in needs}


@pytest.mark.parametrize(("changes", "needs"), CASES, ids=lambda v: "+".join(sorted(v)))
def test_each_row_passes_when_its_requirements_hold(fake_send, changes, needs):
    scene = Scene(fake_send, enabled=False, crowded=False)
    proposal = scene.proposal(set(changes))

    source = source_update(source=scene.source, spec=proposal)

    stored = source_spec(source)
    assert stored.nodes == proposal.nodes
    assert stored.send.userdb_id == proposal.send.userdb_id
    assert set(stored.send.fields) == set(proposal.send.fields)
    assert set(stored.send.subscriptions) == set(proposal.send.subscriptions)


@pytest.mark.parametrize(
    "requirement",
    [Requirement.DISABLED, Requirement.EXISTING_NODE_EMPTY, Requirement.USERDB_EMPTY],
)
def test_a_userdb_change_fails_on_each_requirement_alone(fake_send, requirement):
    scene = Scene(fake_send, enabled=False, crowded=False)
    if requirement is Requirement.DISABLED:
        scene.update(enabled=True)
    if requirement is Requirement.EXISTING_NODE_EMPTY:
        CustomerFactory(node=scene.node)
    if requirement is Requirement.USERDB_EMPTY:
        fake_send.seed(TEST_CREDENTIALS, 8, fields=USERDB_FIELDS, subscribers=1)

    with pytest.raises(ValidationError) as error:
        source_update(source=scene.source, spec=scene.proposal({Change.USERDB}))

    assert codes(error.value) == {requirement.value}


def test_a_node_change_ignores_the_old_node_but_not_the_new(fake_send):
    scene = Scene(fake_send, enabled=False, crowded=False)
    CustomerFactory(node=scene.node)

    source = source_update(source=scene.source, spec=scene.proposal({Change.NODE}))

    assert source.nodes.get().node == scene.new_node


def test_name_description_and_enabled_change_at_any_time(fake_send):
    scene = Scene(fake_send, enabled=True, crowded=True)

    scene.update(name="Renamed", description="New words")
    source = scene.update(enabled=False)

    assert (source.name, source.description, source.enabled) == (
        "Renamed",
        "New words",
        False,
    )


def test_a_refused_change_writes_nothing(fake_send):
    scene = Scene(fake_send, enabled=True, crowded=True)
    before = source_spec(scene.source)
    audited = SourceChange.objects.count()

    with pytest.raises(ValidationError):
        source_update(
            source=scene.source,
            spec=dataclasses.replace(
                scene.proposal({Change.FIELD_MAP}), name="Should not stick"
            ),
        )

    scene.source.refresh_from_db()
    assert source_spec(scene.source) == before
    assert SourceChange.objects.count() == audited


def test_a_key_change_is_audited_as_changed(fake_send):
    scene = Scene(fake_send, enabled=False, crowded=False)

    source_update(source=scene.source, spec=scene.proposal({Change.API_KEY}))

    entry = SourceChange.objects.filter(source_id=scene.source.id).first()
    assert entry.changes["apiKey"] == "changed"
    assert entry.changes["userKey"] == "changed"
    assert OTHER_ACCOUNT.api_key not in str(entry.changes)


def test_sending_the_stored_keys_again_is_no_change(fake_send):
    scene = Scene(fake_send, enabled=True, crowded=True)
    spec = source_spec(scene.source)
    same = dataclasses.replace(
        spec,
        send=dataclasses.replace(
            spec.send,
            api_key=TEST_CREDENTIALS.api_key,
            user_key=TEST_CREDENTIALS.user_key,
        ),
    )

    source_update(source=scene.source, spec=same)


class TestRulesHoldOnModification:
    def test_moving_to_a_node_with_a_send_source_is_refused(self, fake_send):
        scene = Scene(fake_send, enabled=False, crowded=False)
        create_send_source(scene.workspace, scene.new_node, userdb_id=8)

        with pytest.raises(ValidationError) as error:
            source_update(source=scene.source, spec=scene.proposal({Change.NODE}))

        assert codes(error.value) == {"NODE_HAS_SEND_SOURCE"}

    def test_moving_to_a_synced_userdb_is_refused(self, fake_send):
        scene = Scene(fake_send, enabled=False, crowded=False)
        create_send_source(scene.workspace, scene.new_node, userdb_id=8)

        with pytest.raises(ValidationError) as error:
            source_update(source=scene.source, spec=scene.proposal({Change.USERDB}))

        assert codes(error.value) == {"USERDB_ALREADY_SYNCED"}

    def test_an_aggregate_node_stays_read_only(self, fake_send):
        scene = Scene(fake_send, enabled=False, crowded=False)
        aggregate = AggregateNodeFactory(workspace=scene.workspace)
        spec = dataclasses.replace(
            source_spec(scene.source), nodes=(NodeGrant(aggregate, "RW"),)
        )

        with pytest.raises(ValidationError) as error:
            source_update(source=scene.source, spec=spec)

        assert codes(error.value) == {"AGGREGATE_NODE_READ_ONLY"}

    def test_the_last_matching_field_cannot_go(self, fake_send):
        scene = Scene(fake_send, enabled=False, crowded=False)
        spec = source_spec(scene.source)
        spec = dataclasses.replace(
            spec,
            send=dataclasses.replace(
                spec.send, fields=(dataclasses.replace(EMAIL_MATCH, matching=False),)
            ),
        )

        with pytest.raises(ValidationError) as error:
            source_update(source=scene.source, spec=spec)

        assert codes(error.value) == {"MATCHING_FIELD_REQUIRED"}

    def test_a_second_node_is_refused(self, fake_send):
        scene = Scene(fake_send, enabled=False, crowded=False)
        spec = dataclasses.replace(
            source_spec(scene.source),
            nodes=(NodeGrant(scene.node, "RW"), NodeGrant(scene.new_node, "RW")),
        )

        with pytest.raises(ValidationError) as error:
            source_update(source=scene.source, spec=spec)

        assert codes(error.value) == {"SINGLE_NODE_REQUIRED"}


def test_the_field_map_keeps_first_name_row(fake_send):
    scene = Scene(fake_send, enabled=False, crowded=False)

    assert FIRST_NAME in source_spec(scene.source).send.fields


def test_a_userdb_change_made_meanwhile_is_not_undone_unchecked(fake_send):
    scene = Scene(fake_send, enabled=False, crowded=False)
    stale = Source.objects.select_related("send").get(pk=scene.source.pk)
    renamed = dataclasses.replace(source_spec(stale), name="Renamed")
    source_update(source=scene.source, spec=scene.proposal({Change.USERDB}))
    fake_send.seed(TEST_CREDENTIALS, 7, fields=USERDB_FIELDS, subscribers=2)

    with pytest.raises(ValidationError) as error:
        source_update(source=stale, spec=renamed)

    assert codes(error.value) == {"SOURCE_CHANGED"}
    assert Source.objects.get(pk=stale.pk).send.userdb_id == 8
