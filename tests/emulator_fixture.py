"""pytest plugin: a Send emulator process shared by the test session.

`send_emulator` (session) starts `python -m send_emulator` on a free port
with a fresh data file and yields a `SendEmulator` helper; `send` (per test)
empties it, points `settings.SEND_WSDL_URL` at it and forgets the SOAP
client's cached WSDLs and tokens.

The emulator starts with its rate and concurrency limits off, so that tests
do not trip over them by accident; tests about limits set them with
`set_faults(requestsPerSecond=..., maxConcurrency=...)`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from send_emulator.process import NO_LIMITS, start
from sources.send.gateway import SendCredentials

REPO_ROOT = Path(__file__).resolve().parent.parent

FieldSpec = tuple[str, str] | tuple[str, str, bool] | dict[str, Any]


class SendEmulator:
    """A handle on a running emulator, speaking its JSON control API."""

    def __init__(self, base_url: str, log_path: Path) -> None:
        self.base_url = base_url
        self.wsdl_url = f"{base_url}/soap/services?wsdl"
        self.soap_url = f"{base_url}/soap/services"
        self.log_path = log_path
        self.http = requests.Session()

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        """Call the control API and return its JSON answer; fail on an error."""
        response = self.http.request(
            method, f"{self.base_url}/_control/{path}", json=payload, timeout=30
        )
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json()

    def create_account(
        self, api_key: str = "test-api-key-1", user_key: str = "test-user-key-1"
    ) -> SendCredentials:
        self.control("POST", "accounts", {"apiKey": api_key, "userKey": user_key})
        return SendCredentials(api_key, user_key)

    def create_userdb(
        self,
        api_key: str = "test-api-key-1",
        name: str = "Test userdb",
        fields: Sequence[FieldSpec] = (("email", "STRING", True),),
        subscriptions: Sequence[dict[str, str]] = (),
    ) -> dict[str, Any]:
        """Create a userdb; return `{"id", "subscriptions": [{"id",
        "webformCode"}]}`."""
        payload = {
            "apiKey": api_key,
            "name": name,
            "fields": [_field(spec) for spec in fields],
            "subscriptions": list(subscriptions),
        }
        answer: dict[str, Any] = self.control("POST", "userdbs", payload)
        return answer

    def subscribers(self, userdb_id: int) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.control(
            "GET", f"userdbs/{userdb_id}/subscribers"
        )
        return answer

    def add_subscriber(
        self, userdb_id: int, attributes: dict[str, str | None]
    ) -> dict[str, Any]:
        """Add a subscriber as if someone had done it in Send."""
        answer: dict[str, Any] = self.control(
            "POST", f"userdbs/{userdb_id}/subscribers", {"attributes": attributes}
        )
        return answer

    def edit_subscriber(
        self, userdb_id: int, identifier: int, attributes: dict[str, str | None]
    ) -> dict[str, Any]:
        """Change a subscriber as if someone had done it in Send."""
        answer: dict[str, Any] = self.control(
            "PUT",
            f"userdbs/{userdb_id}/subscribers/{identifier}",
            {"attributes": attributes},
        )
        return answer

    def delete_subscriber(self, userdb_id: int, identifier: int) -> None:
        self.control("DELETE", f"userdbs/{userdb_id}/subscribers/{identifier}")

    def set_locked(self, userdb_id: int, locked: bool = True) -> None:
        self.control("PUT", f"userdbs/{userdb_id}/flags", {"locked": locked})

    def set_faults(self, **faults: float | None) -> dict[str, Any]:
        answer: dict[str, Any] = self.control("PUT", "faults", faults)
        return answer

    def counters(self) -> dict[str, dict[str, int]]:
        answer: dict[str, dict[str, int]] = self.control("GET", "counters")
        return answer

    def expire_tokens(self) -> None:
        self.control("POST", "tokens/expire")

    def reset(self) -> None:
        self.control("POST", "reset")


def _field(spec: FieldSpec) -> dict[str, Any]:
    if isinstance(spec, dict):
        return spec
    email_field = len(spec) > 2 and bool(spec[2])
    return {"name": spec[0], "type": spec[1], "emailField": email_field}


@pytest.fixture(scope="session")
def send_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SendEmulator]:
    """Run one emulator process for the whole session."""
    folder = tmp_path_factory.mktemp("send-emulator")
    emulator = start(folder, *NO_LIMITS)
    try:
        yield SendEmulator(emulator.base_url, emulator.log_path)
    finally:
        emulator.stop()


@pytest.fixture
def send(send_emulator: SendEmulator, settings: Any) -> Iterator[SendEmulator]:
    """An empty emulator that `open_gateway` and `SoapSendGateway` talk to."""
    from sources.send import client

    send_emulator.reset()
    settings.SEND_WSDL_URL = send_emulator.wsdl_url
    settings.SEND_GATEWAY = "sources.send.client.SoapSendGateway"
    client.reset_caches()
    yield send_emulator
    client.reset_caches()
