import threading
import time

import pytest
import requests

from .conftest import element


@pytest.fixture
def count(raw, userdb):
    def call():
        return raw.call("countSubscribers", element("sourceIdentifier", userdb["id"]))

    return call


def test_error_rate_answers_503_without_soap(send, raw, userdb):
    send.set_faults(errorRate=1)

    response = raw.post(
        element(
            "countSubscribers",
            t=element("token", c=element("content", raw.token)),
            s=element("sourceIdentifier", userdb["id"]),
        )
    )

    assert response.status_code == 503
    assert response.content == b""


def test_lost_answer_applies_the_write_then_drops_the_connection(send, raw, userdb):
    send.set_faults(lostAnswerRate=1)
    body = element(
        "addSubscriber",
        t=element("token", c=element("content", raw.token)),
        s=element("sourceIdentifier", userdb["id"]),
        b=element(
            "subscriber",
            a=element(
                "attributes", k=element("key", "email"), v=element("value", "a@x.io")
            ),
        ),
    )

    with pytest.raises(requests.ConnectionError):
        raw.post(body)

    assert len(send.subscribers(userdb["id"])) == 1
    assert send.counters()["writes"]["addSubscriber"] == 1


def test_timeout_rate_hangs_until_the_fault_is_lifted(send, raw, userdb, count):
    send.set_faults(timeoutRate=1)

    body = element(
        "countSubscribers",
        t=element("token", c=element("content", raw.token)),
        s=element("sourceIdentifier", 1),
    )

    with pytest.raises(requests.Timeout):
        raw.post(body, timeout=0.5)

    send.set_faults(timeoutRate=0)
    assert count().status == 200
    assert send.counters()["faultsInjected"]["timeout"] == 1


def test_a_hanging_request_is_released_by_a_reset(send, raw, count):
    send.set_faults(timeoutRate=1)
    outcome = []

    def hang():
        try:
            count()
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=hang)
    started = time.monotonic()
    thread.start()
    time.sleep(0.2)
    send.reset()
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert outcome


def test_rate_limit_answers_429_with_its_own_fault_code(send, count):
    send.set_faults(requestsPerSecond=1)

    answers = [count() for _ in range(3)]

    assert answers[0].status == 200
    assert answers[-1].status == 429
    assert answers[-1].fault_code == "RATE_LIMITED"


def test_the_bucket_refills_with_time(send, count):
    # A slow rate, so that a loaded machine cannot refill the bucket as fast
    # as it sends.
    send.set_faults(requestsPerSecond=2)

    statuses = [count().status for _ in range(10)]
    time.sleep(1.0)

    assert 429 in statuses
    assert count().status == 200


def test_concurrency_limit_answers_429(send, count):
    send.set_faults(maxConcurrency=1, latencyMs=300)
    statuses = []

    def call():
        statuses.append(count().status)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 429, 429]
    assert send.counters()["faultsInjected"]["rateLimited.concurrency"] == 2


def test_faults_do_not_touch_the_wsdl_or_control_api(send):
    send.set_faults(errorRate=1, latencyMs=0)

    assert requests.get(send.wsdl_url, timeout=5).status_code == 200
    assert send.counters()["faultsInjected"] == {}
