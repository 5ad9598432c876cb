import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from sources.send import client
from sources.send.client import SoapSendGateway
from sources.send.gateway import AuthenticationFailed, SendCredentials


@pytest.fixture
def clock(monkeypatch):
    """A token clock the test moves by hand."""
    now = [1000.0]
    monkeypatch.setattr(client, "_clock", lambda: now[0])
    return now


def test_it_borrows_one_token_and_reuses_it(send, gateway, userdb):
    for _ in range(3):
        gateway.count_subscribers(userdb["id"])

    assert send.counters()["calls"]["borrowToken"] == 1


def test_gateways_of_the_same_account_share_the_token(send, credentials, userdb):
    SoapSendGateway(credentials).count_subscribers(userdb["id"])
    SoapSendGateway(credentials).count_subscribers(userdb["id"])

    assert send.counters()["calls"]["borrowToken"] == 1


def test_threads_borrow_one_token_between_them(send, credentials, userdb):
    gateway = SoapSendGateway(credentials)

    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(gateway.count_subscribers, [userdb["id"]] * 16))

    assert counts == [0] * 16
    assert send.counters()["calls"]["borrowToken"] == 1


def test_an_expired_token_is_replaced_transparently(send, gateway, userdb):
    gateway.count_subscribers(userdb["id"])
    send.expire_tokens()

    assert gateway.count_subscribers(userdb["id"]) == 0

    counters = send.counters()
    assert counters["calls"]["borrowToken"] == 2
    assert counters["soapFaults"]["INVALID_TOKEN"] == 1


def test_a_token_is_kept_alive_past_the_fraction_of_its_life(
    send, gateway, userdb, settings, clock
):
    settings.SEND_TOKEN_TTL_SECONDS = 100
    settings.SEND_TOKEN_KEEPALIVE_FRACTION = 0.5
    gateway = SoapSendGateway(gateway._credentials)
    gateway.count_subscribers(userdb["id"])
    clock[0] += 49
    gateway.count_subscribers(userdb["id"])
    clock[0] += 2
    gateway.count_subscribers(userdb["id"])
    gateway.count_subscribers(userdb["id"])

    calls = send.counters()["calls"]
    assert calls["keepaliveToken"] == 1
    assert calls["borrowToken"] == 1


def test_a_token_past_its_life_is_not_used(send, gateway, userdb, settings, clock):
    settings.SEND_TOKEN_TTL_SECONDS = 100
    gateway = SoapSendGateway(gateway._credentials)
    gateway.count_subscribers(userdb["id"])
    clock[0] += 101
    gateway.count_subscribers(userdb["id"])

    calls = send.counters()["calls"]
    assert calls["borrowToken"] == 2
    assert "keepaliveToken" not in calls


def test_a_refused_keepalive_borrows_a_new_token(
    send, gateway, userdb, settings, clock
):
    settings.SEND_TOKEN_TTL_SECONDS = 100
    gateway = SoapSendGateway(gateway._credentials)
    gateway.count_subscribers(userdb["id"])
    send.expire_tokens()
    clock[0] += 60

    assert gateway.count_subscribers(userdb["id"]) == 0
    assert send.counters()["calls"]["borrowToken"] == 2


def test_wrong_keys_are_authentication_failed(send, userdb):
    gateway = SoapSendGateway(SendCredentials("test-api-key-1", "test-wrong-key"))

    with pytest.raises(AuthenticationFailed) as raised:
        gateway.count_subscribers(userdb["id"])

    assert not raised.value.retryable
    assert "test-wrong-key" not in str(raised.value)
    assert "test-api-key-1" not in str(raised.value)


def test_an_unknown_account_is_authentication_failed(send):
    gateway = SoapSendGateway(SendCredentials("test-api-key-9", "test-user-key-9"))

    with pytest.raises(AuthenticationFailed):
        gateway.find_userdbs()


def test_invalidate_token_ends_the_session(send, gateway, userdb):
    gateway.count_subscribers(userdb["id"])
    gateway.invalidate_token()
    gateway.count_subscribers(userdb["id"])

    calls = send.counters()["calls"]
    assert calls["invalidateToken"] == 1
    assert calls["borrowToken"] == 2
    assert "INVALID_TOKEN" not in send.counters()["soapFaults"]


def test_close_keeps_the_shared_token(send, credentials, userdb):
    first = SoapSendGateway(credentials)
    first.count_subscribers(userdb["id"])
    first.close()
    SoapSendGateway(credentials).count_subscribers(userdb["id"])

    assert send.counters()["calls"]["borrowToken"] == 1


def test_each_call_is_logged_once_without_secrets(send, gateway, userdb, caplog):
    caplog.set_level(logging.DEBUG)
    gateway.count_subscribers(userdb["id"])
    send.expire_tokens()
    gateway.count_subscribers(userdb["id"])

    tokens = [str(session.token) for session in client._sessions.values()]
    text = "\n".join(record.getMessage() for record in caplog.records)
    for secret in ["test-api-key-1", "test-user-key-1", *tokens]:
        assert secret not in text
    ours = [r for r in caplog.records if r.name == "sources.send.client"]
    assert [r.getMessage().split(".")[0] for r in ours] == [
        "Send call done",
        "Send call done",
        "Send call failed",
        "Send call done",
        "Send call done",
    ]
    assert "operation=countSubscribers" in ours[1].getMessage()
    assert f"userdb={userdb['id']}" in ours[1].getMessage()
    assert "duration_ms=" in ours[1].getMessage()
