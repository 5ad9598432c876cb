"""End to end: a real Celery worker and beat, the Send emulator, PostgreSQL
and Redis. Each test waits for the outcome with a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import redis
from django.conf import settings
from django.db import connection

from hub import services as hub
from hub.models import Customer, Node, Workspace
from sources.models import Provider
from sources.services import (
    FieldRow,
    NodeGrant,
    SendSettings,
    SourceSpec,
    SubscriptionRow,
    source_create,
)
from sync.models import Link, SyncIssue
from tests.factories import NodeFactory, SubscriptionSystemFactory, WorkspaceFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
API_KEY, USER_KEY = "test-api-key-e2e", "test-user-key-e2e"


def wait_for(predicate, timeout=40.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def workers(transactional_db, send, tmp_path):
    """Start Celery workers (with beat) on the test database; kill them after."""
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith(
        "redis"
    ):
        pytest.skip("end-to-end tests need PostgreSQL and Redis")
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    database = connection.settings_dict
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": (
            f"postgres://{database['USER']}:{database['PASSWORD'] or ''}"
            f"@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        ),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SEND_GATEWAY": "sources.send.client.SoapSendGateway",
        "SEND_WSDL_URL": send.wsdl_url,
        "SEND_POLL_SECONDS": "1",
        "SYNC_SWEEP_SECONDS": "2",
        "SYNC_CLAIM_SECONDS": "6",
        "SYNC_RELAY_SECONDS": "5",
        "SYNC_CALL_BACKOFF_SECONDS": "0.1",
        "SYNC_BACKOFF_MAX_SECONDS": "2",
        "HUBSYNC_VAR_DIR": str(tmp_path),
    }
    started: list[subprocess.Popen[bytes]] = []

    def start(beat=True):
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "hubsync",
            "worker",
            "--pool=threads",
            "-c",
            "4",
            "--loglevel=WARNING",
            f"--hostname=w{len(started)}@%h",
        ]
        if beat:
            command.append("-B")
        log = (tmp_path / f"worker{len(started)}.log").open("wb")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def world(send):
    """An account, a userdb with a `news` system, and a node with an RW source."""
    send.create_account(API_KEY, USER_KEY)
    userdb = send.create_userdb(
        API_KEY,
        fields=[
            ("email", "STRING", True),
            ("firstName", "STRING"),
            ("lastName", "STRING"),
            ("news_status", "INTEGER"),
        ],
        subscriptions=[{"name": "News", "registrationField": "news_status"}],
    )
    (system,) = userdb["subscriptions"]
    workspace = cast(Workspace, WorkspaceFactory())
    node = cast(Node, NodeFactory(workspace=workspace))
    SubscriptionSystemFactory(workspace=workspace, system_id="news")

    def make_source(enabled=True):
        return source_create(
            workspace=workspace,
            provider=Provider.CONTACTSEND,
            spec=SourceSpec(
                name="Send",
                enabled=enabled,
                nodes=(NodeGrant(node, "RW"),),
                send=SendSettings(
                    userdb_id=userdb["id"],
                    api_key=API_KEY,
                    user_key=USER_KEY,
                    fields=(
                        FieldRow("base.contacts.email", "email", matching=True),
                        FieldRow("base.firstName", "firstName"),
                        FieldRow("base.lastName", "lastName"),
                    ),
                    subscriptions=(
                        SubscriptionRow("news", system["id"], system["webformCode"]),
                    ),
                ),
            ),
        )

    return SimpleNamespace(
        node=node,
        userdb=userdb["id"],
        webform=system["webformCode"],
        make_source=make_source,
        records=lambda: send.subscribers(userdb["id"]),
    )


def by_email(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["attributes"]["email"]: r for r in records}


def data(n, **base):
    return {
        "base": {"firstName": f"Ada{n}", "contacts": {"email": f"ada{n}@example.com"}}
        | base
    }


def news(customer):
    customer.refresh_from_db()
    entries = customer.base.get("subscriptions") or []
    found: dict[str, Any] = next((e for e in entries if e["id"] == "news"), {})
    return found.get("subscribed")


def test_changes_reach_send_and_come_back(world, workers, send):
    workers()
    world.make_source()
    customer = hub.customer_create(node=world.node, data=data(1))
    wait_for(lambda: by_email(world.records()).get("ada1@example.com"), what="add")

    hub.customer_patch(customer=customer, patch={"base": {"lastName": "King"}})
    wait_for(
        lambda: (
            by_email(world.records())["ada1@example.com"]["attributes"]["lastName"]
            == "King"
        ),
        what="update",
    )
    (record,) = world.records()
    send.edit_subscriber(world.userdb, record["identifier"], {"firstName": "Augusta"})

    def first_name():
        customer.refresh_from_db()
        return customer.base.get("firstName") == "Augusta"

    wait_for(first_name, what="the Send edit in the Hub")
    send.add_subscriber(world.userdb, {"email": "grace@example.com"})
    wait_for(lambda: Customer.objects.count() == 2, what="a Send record created")

    hub.customer_delete(customer=customer)
    wait_for(
        lambda: "ada1@example.com" not in by_email(world.records()), what="removal"
    )


def test_subscriptions_travel_both_ways_and_an_older_subscribe_loses(
    world, workers, send
):
    workers()
    world.make_source()
    customer = hub.customer_create(node=world.node, data=data(1))
    wait_for(lambda: Link.objects.filter(subscriber_id__isnull=False).exists())
    hub.customer_patch(
        customer=customer,
        patch={"base": {"subscriptions": [{"id": "news", "subscribed": True}]}},
    )

    def send_status():
        return world.records()[0]["attributes"].get("news_status")

    wait_for(lambda: send_status() == "1", what="subscribe in Send")
    identifier = world.records()[0]["identifier"]
    send.edit_subscriber(world.userdb, identifier, {"news_status": "-1"})
    wait_for(lambda: news(customer) is False, what="unsubscribe in the Hub")

    # Send subscribes, then the Hub unsubscribes a moment later: the
    # unsubscribe is newer and must hold on both sides.
    send.edit_subscriber(world.userdb, identifier, {"news_status": "1"})
    hub.customer_patch(
        customer=customer,
        patch={"base": {"subscriptions": [{"id": "news", "subscribed": True}]}},
    )
    hub.customer_patch(
        customer=customer,
        patch={"base": {"subscriptions": [{"id": "news", "subscribed": False}]}},
    )
    wait_for(lambda: send_status() == "-1", what="the newer unsubscribe in Send")
    wait_for(lambda: news(customer) is False and send_status() == "-1")


def test_an_idle_system_writes_nothing(world, workers, send):
    from sync.models import SyncState

    workers()
    source = world.make_source()
    for n in range(5):
        hub.customer_create(node=world.node, data=data(n))
    send.add_subscriber(world.userdb, {"email": "grace@example.com"})
    wait_for(lambda: len(world.records()) == 6 and Customer.objects.count() == 6)
    wait_for(lambda: Link.objects.filter(subscriber_id__isnull=False).count() == 6)

    def polls_after(moment):
        state = SyncState.objects.get(source=source)
        return state.last_poll_ok_at and state.last_poll_ok_at > moment

    from django.utils import timezone

    mark = timezone.now()
    wait_for(lambda: polls_after(mark))
    writes = send.counters()["writes"]
    for _ in range(4):
        mark = timezone.now()
        wait_for(lambda mark=mark: polls_after(mark), what="another poll")
    assert send.counters()["writes"] == writes


def test_several_matches_are_reported_not_written(world, workers, send):
    workers()
    world.make_source()
    for _ in range(2):
        send.add_subscriber(world.userdb, {"email": "twin@example.com"})
    wait_for(lambda: SyncIssue.objects.filter(code="SYNC_SEVERAL_MATCHES").exists())
    hub.customer_create(
        node=world.node,
        data={"base": {"firstName": "Twin", "contacts": {"email": "twin@example.com"}}},
    )
    wait_for(
        lambda: SyncIssue.objects.filter(
            code="SYNC_SEVERAL_MATCHES", subject_id__isnull=False
        ).exists(),
        what="the ambiguous push reported",
    )
    assert all(r["attributes"].get("firstName") is None for r in world.records())


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(world, workers, send):
    world.make_source()
    for n in range(1200):
        Customer.objects.create(
            node=world.node,
            base={"firstName": f"Ada{n}", "contacts": {"email": f"ada{n}@example.com"}},
        )
    send.set_faults(latencyMs=300)
    first = workers()
    wait_for(lambda: send.counters()["calls"].get("addSubscribers"), what="a batch")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    send.set_faults(latencyMs=0)
    workers()
    wait_for(lambda: len(world.records()) >= 1200, timeout=90, what="all records")
    emails = Counter(r["attributes"]["email"] for r in world.records())
    assert len(emails) == 1200
    assert max(emails.values()) == 1


def test_both_sides_converge_under_faults(world, workers, send):
    workers()
    # Faults start once the source exists: creating it asks Send directly,
    # outside the sync and its retries.
    world.make_source()
    send.set_faults(errorRate=0.05, requestsPerSecond=30, maxConcurrency=4)
    customers = [hub.customer_create(node=world.node, data=data(n)) for n in range(40)]
    for n in range(10):
        send.add_subscriber(world.userdb, {"email": f"send{n}@example.com"})

    # A 5% error rate may spare a short round; edit again until a fault
    # has struck, so that convergence is shown under faults every time.
    try:
        for round_ in range(6):
            edited = f"Edited {round_}"
            for customer in customers[:20]:
                hub.customer_patch(
                    customer=customer, patch={"base": {"lastName": edited}}
                )
            wait_for(
                lambda edited=edited: _converged(world, edited),
                timeout=90,
                what="convergence under faults",
            )
            if send.counters()["faultsInjected"]:
                break
    finally:
        send.set_faults(errorRate=0, requestsPerSecond=0, maxConcurrency=0)
    assert send.counters()["faultsInjected"]


def _converged(world, edited):
    records = by_email(world.records())
    if len(records) != 50 or Customer.objects.count() != 50:
        return False
    return all(
        records[f"ada{n}@example.com"]["attributes"].get("lastName") == edited
        for n in range(20)
    )
