"""Measure the Send emulator: ingest ceiling and indexed lookup latency.

    .venv/bin/python bench/emulator_bench.py [--subscribers 100000]

Starts its own emulator (limits off) on a free port with a throwaway data
file, then measures:

(a) subscribers/s accepted through addSubscribers in batches of 500, once
    through `SoapSendGateway` (zeep) and once with hand-built XML;
(b) p50/p95 latency of findSubscribers by an indexed field (email) on the
    userdb just filled, through both clients.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import requests
from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from send_emulator import process as emulator_process  # noqa: E402

NS = "urn:send-emulator:clab"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
BATCH = 500
FIELDS = [
    {"name": "email", "type": "STRING", "emailField": True},
    {"name": "firstName", "type": "STRING"},
    {"name": "lastName", "type": "STRING"},
    {"name": "city", "type": "STRING"},
    {"name": "age", "type": "INTEGER"},
    {"name": "birthday", "type": "DATE"},
]


def record(prefix: str, number: int) -> dict[str, str | None]:
    return {
        "email": f"{prefix}{number}@example.com",
        "firstName": f"First{number % 997}",
        "lastName": f"Last{number % 1009}",
        "city": ("Milano", "Torino", "Roma", "Napoli")[number % 4],
        "age": str(18 + number % 70),
        "birthday": f"19{50 + number % 50}-0{1 + number % 9}-1{number % 10}",
    }


class RawClient:
    """Hand-built envelopes over one keep-alive connection."""

    def __init__(self, base_url: str, api_key: str, user_key: str) -> None:
        self.url = f"{base_url}/soap/services"
        self.http = requests.Session()
        answer = self.call(
            f"<tns:borrowToken><tns:apiKey>{api_key}</tns:apiKey>"
            f"<tns:userKey>{user_key}</tns:userKey></tns:borrowToken>"
        )
        self.token = answer.split(b"<tns:content>")[1].split(b"<")[0].decode()

    def call(self, body: str) -> bytes:
        envelope = (
            f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:tns="{NS}">'
            f"<soap:Body>{body}</soap:Body></soap:Envelope>"
        )
        response = self.http.post(
            self.url, data=envelope.encode(), headers={"Content-Type": "text/xml"}
        )
        response.raise_for_status()
        return response.content

    def token_xml(self) -> str:
        return f"<tns:token><tns:content>{self.token}</tns:content></tns:token>"

    def add_subscribers(
        self, userdb_id: int, records: list[dict[str, str | None]]
    ) -> None:
        items = "".join(
            "<tns:subscribers>"
            + "".join(
                f"<tns:attributes><tns:key>{key}</tns:key>"
                f"<tns:value>{escape(value or '')}</tns:value></tns:attributes>"
                for key, value in item.items()
            )
            + "</tns:subscribers>"
            for item in records
        )
        self.call(
            f"<tns:addSubscribers>{self.token_xml()}"
            f"<tns:sourceIdentifier>{userdb_id}</tns:sourceIdentifier>"
            f"{items}</tns:addSubscribers>"
        )

    def find_by_email(self, userdb_id: int, email: str) -> bytes:
        return self.call(
            f"<tns:findSubscribers>{self.token_xml()}"
            f"<tns:sourceIdentifier>{userdb_id}</tns:sourceIdentifier>"
            "<tns:attribute><tns:key>email</tns:key>"
            f"<tns:value>{email}</tns:value></tns:attribute></tns:findSubscribers>"
        )


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[94] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args()
    total = args.subscribers - args.subscribers % BATCH

    with tempfile.TemporaryDirectory() as folder:
        emulator = emulator_process.start(
            Path(folder), *emulator_process.NO_LIMITS, data_name="bench.sqlite3"
        )
        try:
            run(emulator.base_url, total, args.lookups)
        finally:
            emulator.stop()


def run(base_url: str, total: int, lookups: int) -> None:
    settings.configure(
        SEND_WSDL_URL=f"{base_url}/soap/services?wsdl", SEND_TIMEOUT_SECONDS=120
    )
    from sources.send.client import SoapSendGateway
    from sources.send.gateway import SendCredentials

    control = requests.Session()
    keys = {"apiKey": "bench-api-key", "userKey": "bench-user-key"}
    control.post(f"{base_url}/_control/accounts", json=keys).raise_for_status()
    userdbs = []
    for name in ("through zeep", "through raw XML"):
        payload: Any = {"apiKey": keys["apiKey"], "name": name, "fields": FIELDS}
        answer = control.post(f"{base_url}/_control/userdbs", json=payload)
        userdbs.append(answer.json()["id"])
    gateway = SoapSendGateway(SendCredentials(keys["apiKey"], keys["userKey"]))
    raw = RawClient(base_url, keys["apiKey"], keys["userKey"])
    print(f"subscribers per userdb: {total}, batch: {BATCH}")

    started = time.perf_counter()
    for start in range(0, total, BATCH):
        gateway.add_subscribers(
            userdbs[0], [record("z", n) for n in range(start, start + BATCH)]
        )
    elapsed = time.perf_counter() - started
    print(f"(a) ingest via SoapSendGateway: {total / elapsed:,.0f} subscribers/s")

    started = time.perf_counter()
    for start in range(0, total, BATCH):
        batch = [record("r", n) for n in range(start, start + BATCH)]
        raw.add_subscribers(userdbs[1], batch)
    elapsed = time.perf_counter() - started
    print(f"(a) ingest via raw XML:         {total / elapsed:,.0f} subscribers/s")

    wanted = [random.randrange(total) for _ in range(lookups)]
    samples = []
    for number in wanted:
        started = time.perf_counter()
        found = gateway.find_subscribers(userdbs[0], "email", f"z{number}@example.com")
        samples.append(time.perf_counter() - started)
        assert len(found) == 1
    p50, p95 = percentiles(samples)
    print(
        f"(b) findSubscribers by email via SoapSendGateway: p50 {p50:.1f} ms,"
        f" p95 {p95:.1f} ms ({lookups} lookups)"
    )

    samples = []
    for number in wanted:
        started = time.perf_counter()
        raw.find_by_email(userdbs[1], f"r{number}@example.com")
        samples.append(time.perf_counter() - started)
    p50, p95 = percentiles(samples)
    print(
        f"(b) findSubscribers by email via raw XML:         p50 {p50:.1f} ms,"
        f" p95 {p95:.1f} ms ({lookups} lookups)"
    )


if __name__ == "__main__":
    main()
