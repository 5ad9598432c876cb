"""Concurrent creations on PostgreSQL: the database picks exactly one winner."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from sources.models import Source
from tests.conftest import TEST_CREDENTIALS
from tests.factories import NodeFactory

from .helpers import USERDB_FIELDS, codes, create_send_source

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor != 'postgresql'", reason="needs PostgreSQL row locks"
    ),
]


def race(workers, barrier):
    """Run each worker in its own thread and connection, all released at once."""
    outcomes = []

    def run(work):
        try:
            barrier.wait()
            outcomes.append(("ok", work()))
        except ValidationError as error:
            outcomes.append(("refused", codes(error)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


@pytest.mark.parametrize("attempt", range(3))
def test_two_send_sources_for_one_node_one_wins(fake_send, attempt):
    node = NodeFactory()
    fake_send.seed(TEST_CREDENTIALS, 8, fields=USERDB_FIELDS)
    barrier = threading.Barrier(2)

    outcomes = race(
        [
            lambda: create_send_source(node.workspace, node, userdb_id=7),
            lambda: create_send_source(node.workspace, node, userdb_id=8),
        ],
        barrier,
    )

    assert sorted(kind for kind, _ in outcomes) == ["ok", "refused"]
    assert [found for kind, found in outcomes if kind == "refused"] == [
        {"NODE_HAS_SEND_SOURCE"}
    ]
    assert Source.objects.filter(nodes__node=node).count() == 1


def test_two_nodes_for_one_userdb_one_wins(fake_send):
    first = NodeFactory()
    second = NodeFactory(workspace=first.workspace)
    barrier = threading.Barrier(2)

    outcomes = race(
        [
            lambda: create_send_source(first.workspace, first),
            lambda: create_send_source(first.workspace, second),
        ],
        barrier,
    )

    assert sorted(kind for kind, _ in outcomes) == ["ok", "refused"]
    assert [found for kind, found in outcomes if kind == "refused"] == [
        {"USERDB_ALREADY_SYNCED"}
    ]


def test_the_database_stops_a_race_the_checks_missed(fake_send, monkeypatch):
    node = NodeFactory()
    fake_send.seed(TEST_CREDENTIALS, 8, fields=USERDB_FIELDS)
    monkeypatch.setattr("sources.services.creation_violations", lambda **_: [])
    create_send_source(node.workspace, node, userdb_id=7)

    with pytest.raises(ValidationError) as error:
        create_send_source(node.workspace, node, userdb_id=8)

    assert codes(error.value) == {"NODE_HAS_SEND_SOURCE"}
    assert Source.objects.count() == 1
