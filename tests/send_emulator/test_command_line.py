import subprocess
import sys
import time

import pytest
import requests

from send_emulator import process as emulator_process
from tests.emulator_fixture import REPO_ROOT, SendEmulator

from .conftest import RawSoap, element


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory):
    """An emulator started with options: short tokens, some latency."""
    emulator = emulator_process.start(
        tmp_path_factory.mktemp("short-lived"),
        "--token-ttl=0.6",
        "--latency-ms=20",
        "--requests-per-second=50",
        "--max-concurrency=4",
    )
    try:
        yield SendEmulator(emulator.base_url, emulator.log_path)
    finally:
        emulator.stop()


def test_it_prints_one_ready_line(short_lived):
    lines = short_lived.log_path.read_text().splitlines()

    assert lines[0] == f"send emulator listening on {short_lived.base_url}"


def test_start_options_are_the_initial_faults(short_lived):
    assert short_lived.control("GET", "faults") == {
        "latencyMs": 20,
        "errorRate": 0.0,
        "timeoutRate": 0.0,
        "lostAnswerRate": 0.0,
        "requestsPerSecond": 50.0,
        "maxConcurrency": 4,
    }


def test_tokens_expire_without_keepalive(short_lived):
    short_lived.create_account("test-api-key-1", "test-user-key-1")
    userdb = short_lived.create_userdb()
    raw = RawSoap(short_lived.soap_url)
    raw.login()

    def count():
        return raw.call("countSubscribers", element("sourceIdentifier", userdb["id"]))

    time.sleep(0.4)
    raw.call("keepaliveToken")
    time.sleep(0.4)
    kept = count()
    time.sleep(0.7)
    expired = count()

    assert kept.status == 200
    assert expired.fault_code == "INVALID_TOKEN"


def test_the_log_holds_no_key_or_token(short_lived):
    short_lived.create_account("test-api-key-7", "test-user-key-7")
    raw = RawSoap(short_lived.soap_url)
    raw.login("test-api-key-7", "test-user-key-7")
    raw.call("keepaliveToken")

    log = short_lived.log_path.read_text()
    assert "test-user-key-7" not in log
    assert "test-api-key-7" not in log
    assert raw.token not in log


def test_bad_start_options_stop_with_a_message(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "send_emulator",
            "--data",
            str(tmp_path / "x.sqlite3"),
            "--error-rate",
            "2",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode != 0
    assert "errorRate must be between 0 and 1" in result.stderr


def test_the_data_survives_a_restart(tmp_path):
    def start():
        emulator = emulator_process.start(tmp_path, data_name="kept.sqlite3")
        return emulator, SendEmulator(emulator.base_url, emulator.log_path)

    process, first = start()
    first.create_account("test-api-key-1", "test-user-key-1")
    userdb = first.create_userdb()
    first.add_subscriber(userdb["id"], {"email": "kept@example.com"})
    process.stop()
    process, second = start()
    try:
        stored = second.subscribers(userdb["id"])
        assert stored[0]["attributes"]["email"] == "kept@example.com"
        assert requests.get(second.wsdl_url, timeout=5).status_code == 200
    finally:
        process.stop()
