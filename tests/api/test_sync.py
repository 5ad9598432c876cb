import uuid

import pytest

from sync.models import OutboxEntry, SyncIssue, SyncRun

from .conftest import api_source, assert_error, ws_url
from .test_sources import send_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def source_url(admin, workspace, node, fake_send):
    return send_source(admin, workspace, node)


def issue(source_id, **fields):
    defaults = {
        "kind": SyncIssue.Kind.ERROR,
        "code": "SEND_INVALID_DATA",
        "reason": "x",
    }
    return SyncIssue.objects.create(source_id=source_id, **{**defaults, **fields})


def source_id(url):
    return url.rsplit("/", 1)[1]


def test_sync_shows_the_state_lag_and_last_runs(admin, source_url):
    SyncRun.objects.create(source_id=source_id(source_url), kind=SyncRun.Kind.values[0])
    response = admin.get(f"{source_url}/sync")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] in {"initial", "syncing", "idle"}
    assert set(body["lag"]) == {"oldestPendingSeconds", "sinceLastPollSeconds"}
    assert len(body["lastRuns"]) == 1


def test_sync_errors_are_paged_newest_first(admin, source_url):
    first = issue(source_id(source_url))
    second = issue(source_id(source_url), reason="later")
    body = admin.get(f"{source_url}/sync/errors", {"size": 1}).json()
    assert [e["id"] for e in body["elements"]] == [second.id]
    assert body["page"]["totalElements"] == 2
    body = admin.get(f"{source_url}/sync/errors", {"size": 1, "page": 1}).json()
    assert [e["id"] for e in body["elements"]] == [first.id]


def test_retry_queues_the_chosen_errors_again(admin, source_url):
    subject = uuid.uuid4()
    chosen = issue(source_id(source_url), subject_id=subject)
    other = issue(source_id(source_url), subject_id=uuid.uuid4())
    response = admin.post(
        f"{source_url}/sync/retry", {"errorIds": [chosen.id]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"queued": 1}
    chosen.refresh_from_db()
    other.refresh_from_db()
    assert chosen.resolved_at is not None
    assert other.resolved_at is None
    assert OutboxEntry.objects.filter(subject_id=subject).exists()


def test_retry_refuses_ids_that_are_not_integers(admin, source_url):
    response = admin.post(
        f"{source_url}/sync/retry", {"errorIds": ["1"]}, format="json"
    )
    assert_error(response, 400, "invalid", "errorIds[0]")


def test_resync_is_accepted(admin, source_url):
    response = admin.post(f"{source_url}/sync/resync")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "initial"


def test_an_api_source_has_no_sync(admin, workspace, node):
    source, _client = api_source(workspace, [(node, "RW")])
    url = ws_url(workspace, f"configuration/sources/{source.id}/sync")
    assert_error(admin.get(url), 400, "invalid", "provider")


def test_a_source_token_cannot_see_the_sync(workspace, node, source_url):
    _source, client = api_source(workspace, [(node, "R")])
    assert_error(client.get(f"{source_url}/sync"), 403)
