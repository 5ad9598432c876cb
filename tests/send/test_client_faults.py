import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sources.send.client import SoapSendGateway
from sources.send.gateway import RateLimited, SendError, TransientError


@pytest.fixture
def warm(gateway, userdb):
    """A gateway that already holds a token, so faults hit the call itself."""
    gateway.count_subscribers(userdb["id"])
    return gateway


def test_a_5xx_is_a_transient_error(send, warm, userdb):
    send.set_faults(errorRate=1)

    with pytest.raises(TransientError, match="HTTP 503") as raised:
        warm.count_subscribers(userdb["id"])

    assert raised.value.retryable
    assert send.counters()["faultsInjected"]["error"] == 1


def test_a_5xx_while_borrowing_a_token_is_a_transient_error(send, gateway, userdb):
    send.set_faults(errorRate=1)

    with pytest.raises(TransientError):
        gateway.count_subscribers(userdb["id"])


def test_a_call_that_hangs_times_out_as_a_transient_error(send, warm, userdb, settings):
    settings.SEND_TIMEOUT_SECONDS = 0.5
    gateway = SoapSendGateway(warm._credentials)
    send.set_faults(timeoutRate=1)
    started = time.monotonic()

    with pytest.raises(TransientError, match=r"within 0\.5s"):
        gateway.count_subscribers(userdb["id"])

    assert time.monotonic() - started < 5
    send.set_faults(timeoutRate=0)
    assert gateway.count_subscribers(userdb["id"]) == 0
    assert send.counters()["faultsInjected"]["timeout"] == 1


def test_a_lost_answer_is_transient_but_the_write_happened(send, warm, userdb):
    send.set_faults(lostAnswerRate=1)

    with pytest.raises(TransientError, match="connection"):
        warm.add_subscriber(userdb["id"], {"email": "ada@example.com"})

    send.set_faults(lostAnswerRate=0)
    stored = send.subscribers(userdb["id"])
    assert [s["attributes"]["email"] for s in stored] == ["ada@example.com"]
    assert send.counters()["faultsInjected"]["lostAnswer"] == 1


def test_too_many_requests_per_second_are_rate_limited(send, warm, userdb):
    send.set_faults(requestsPerSecond=2)

    with pytest.raises(RateLimited) as raised:
        for _ in range(5):
            warm.count_subscribers(userdb["id"])

    assert raised.value.retryable
    assert send.counters()["faultsInjected"]["rateLimited.rps"] >= 1


def test_too_many_concurrent_requests_are_rate_limited(send, warm, userdb):
    send.set_faults(maxConcurrency=2, latencyMs=300)

    def count(_):
        try:
            return warm.count_subscribers(userdb["id"])
        except SendError as error:
            return error

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(count, range(6)))

    limited = [r for r in results if isinstance(r, RateLimited)]
    assert 1 <= len(limited) <= 4
    assert results.count(0) >= 2
    assert send.counters()["faultsInjected"]["rateLimited.concurrency"] == len(limited)


def test_limits_are_per_account(send, warm, userdb):
    other = send.create_account("test-api-key-2", "test-user-key-2")
    other_db = send.create_userdb(other.api_key)
    other_gateway = SoapSendGateway(other)
    other_gateway.count_subscribers(other_db["id"])
    send.set_faults(requestsPerSecond=1)
    warm.count_subscribers(userdb["id"])

    assert other_gateway.count_subscribers(other_db["id"]) == 0
    with pytest.raises(RateLimited):
        warm.count_subscribers(userdb["id"])


def test_latency_delays_the_answer(send, warm, userdb):
    send.set_faults(latencyMs=200)
    started = time.monotonic()

    warm.count_subscribers(userdb["id"])

    assert time.monotonic() - started >= 0.2


def test_an_unreachable_service_is_a_transient_error(send, credentials, settings):
    settings.SEND_WSDL_URL = "http://127.0.0.1:9/soap/services?wsdl"

    with pytest.raises(TransientError, match="connection"):
        SoapSendGateway(credentials).find_userdbs()


def test_batch_calls_map_faults_the_same_way(send, warm, userdb):
    batch = [{"email": "ada@example.com"}]

    send.set_faults(errorRate=1)
    with pytest.raises(TransientError, match="HTTP 503"):
        warm.add_subscribers(userdb["id"], batch)
    send.set_faults(errorRate=0, requestsPerSecond=1)
    with pytest.raises(RateLimited):
        for _ in range(3):
            warm.find_subscribers_by(userdb["id"], [])
    send.set_faults(requestsPerSecond=0)
    send.expire_tokens()
    added = warm.add_subscribers(userdb["id"], batch)

    assert added[0].attributes["email"] == "ada@example.com"
    assert send.counters()["calls"]["borrowToken"] == 2
