import threading

import pytest
from django.db import connection, connections

from hub.models import Customer
from sources.models import Source
from sources.send.gateway import SendField
from tests.conftest import TEST_CREDENTIALS
from tests.factories import NodeFactory, UserFactory, WorkspaceFactory
from tokens.services import admin_token_issue

from .conftest import client_for, ws_url

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="races need PostgreSQL row locks"
    ),
]

THREADS = 6


def race(call):
    """Run `call` in several threads released at once; return the responses."""
    barrier = threading.Barrier(THREADS)
    responses = [None] * THREADS

    def run(index):
        try:
            barrier.wait()
            responses[index] = call()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


@pytest.fixture
def setup():
    workspace = WorkspaceFactory()
    user = UserFactory()
    workspace.members.add(user)
    _token, raw = admin_token_issue(user=user)
    return workspace, raw


def test_identical_customer_posts_create_one_and_conflict_the_rest(setup):
    workspace, raw = setup
    node = NodeFactory(workspace=workspace)
    body = {"nodeId": str(node.id), "externalId": "same"}
    responses = race(
        lambda: client_for(raw).post(
            ws_url(workspace, "customers"), body, format="json"
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (THREADS - 1)
    holder = Customer.objects.get()
    for response in responses:
        if response.status_code == 409:
            assert response.json()["data"] == {"customer": {"id": str(holder.id)}}


def test_send_sources_racing_for_one_node_create_one(setup, fake_send):
    workspace, raw = setup
    node = NodeFactory(workspace=workspace)
    for userdb in range(20, 20 + THREADS):
        fake_send.seed(TEST_CREDENTIALS, userdb, fields=[SendField("email", "STRING")])
    userdbs = iter(range(20, 20 + THREADS))
    lock = threading.Lock()

    def post():
        with lock:
            userdb = next(userdbs)
        body = {
            "provider": "CONTACTSEND",
            "name": f"Send {userdb}",
            "nodes": [str(node.id)],
            "properties": {
                "apiKey": TEST_CREDENTIALS.api_key,
                "userKey": TEST_CREDENTIALS.user_key,
                "userDbId": userdb,
                "fields": [
                    {
                        "hubField": "base.contacts.email",
                        "sendField": "email",
                        "matching": True,
                    }
                ],
            },
        }
        return client_for(raw).post(
            ws_url(workspace, "configuration/sources"), body, format="json"
        )

    responses = race(post)
    statuses = sorted(r.status_code for r in responses)
    assert 500 not in statuses, [r.content for r in responses]
    assert Source.objects.count() == 1
    assert statuses.count(201) == 1
    assert all(s == 409 for s in statuses if s != 201), [r.content for r in responses]
