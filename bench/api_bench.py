"""Measure customers POST throughput of the REST API under gunicorn.

Runs gunicorn (2 workers) on PostgreSQL database `hubsync_apibench`, posts
customers from a few client threads, and prints requests/s and latency
percentiles. With --write, also records the figures in
docs/benchmarks-api.md.

    .venv/bin/python bench/api_bench.py --requests 3000 --threads 4 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "hubsync_apibench"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
PORT = 8765

ENV = {
    **os.environ,
    "DEBUG": "0",
    "DATABASE_URL": DATABASE_URL,
    "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production",
    "HUBSYNC_ENCRYPTION_KEYS": "ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE=",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "CELERY_BROKER_URL": "memory://",
    "HUBSYNC_API_TOKEN_RATE": "1000000/min",
}


def prepare() -> tuple[str, str, str]:
    """Create the database afresh and return (workspace id, node id, token)."""
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DATABASE],
        check=True,
    )
    subprocess.run(
        ["createdb", "-h", "127.0.0.1", "-U", "postgres", DATABASE], check=True
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0"], env=ENV, check=True)
    script = (
        "from django.contrib.auth.models import User\n"
        "from hub.services import workspace_create, entry_node_create\n"
        "from tokens.services import admin_token_issue\n"
        "user = User.objects.create_user('bench')\n"
        "ws = workspace_create(name='Bench')\n"
        "ws.members.add(user)\n"
        "node = entry_node_create(workspace=ws, name='Shop')\n"
        "print(ws.id, node.id, admin_token_issue(user=user)[1])\n"
    )
    out = subprocess.run(
        [*manage, "shell", "-c", script],
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[-3], out[-2], out[-1]


def serve() -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "hubsync.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=ENV,
    )
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{PORT}/hub/v1/workspaces", timeout=5)
            return server
        except requests.RequestException:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def run(
    url: str, token: str, node_id: str, total: int, threads: int
) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    per_thread = total // threads

    def client() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        mine = []
        for index in range(per_thread):
            body: dict[str, Any] = {
                "nodeId": node_id,
                "externalId": uuid.uuid4().hex,
                "base": {
                    "firstName": f"Bench{index}",
                    "contacts": {"email": f"bench{index}@example.com"},
                },
            }
            started = time.perf_counter()
            response = session.post(url, json=body, timeout=30)
            mine.append(time.perf_counter() - started)
            with lock:
                statuses[response.status_code] = (
                    statuses.get(response.status_code, 0) + 1
                )
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "created": statuses.get(201, 0),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p95_ms": quantiles[94] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def write_report(command: str, figures: dict[str, float], threads: int) -> None:
    date = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
    text = f"""# REST API benchmark: customers POST

Command (from the repository root, PostgreSQL and the virtualenv ready):

    {command}

- Date: {date}
- Machine: {machine()}
- Server: gunicorn, 2 sync workers, DEBUG off, PostgreSQL database
  `{DATABASE}` on the same machine; client threads on the same machine too.
- Load: {int(figures["requests"])} `POST /hub/v1/workspaces/{{id}}/customers`
  from {threads} client threads, each a new customer with a unique
  externalId, one admin token (throttle raised for the run).

| requests | created (201) | seconds | requests/s | p50 ms | p95 ms | p99 ms |
| --: | --: | --: | --: | --: | --: | --: |
| {int(figures["requests"])} | {int(figures["created"])} | {figures["seconds"]:.1f} \
| {figures["rps"]:.0f} | {figures["p50_ms"]:.1f} | {figures["p95_ms"]:.1f} \
| {figures["p99_ms"]:.1f} |

Server and client share the 2 cores, so the figures are a floor for a
machine where they do not.
"""
    (ROOT / "docs" / "benchmarks-api.md").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="update the doc")
    args = parser.parse_args()

    workspace_id, node_id, token = prepare()
    server = serve()
    try:
        url = f"http://127.0.0.1:{PORT}/hub/v1/workspaces/{workspace_id}/customers"
        figures = run(url, token, node_id, args.requests, args.threads)
    finally:
        server.terminate()
        server.wait(timeout=10)
    for key, value in figures.items():
        print(f"{key}: {value:.1f}")
    if args.write:
        command = (
            f".venv/bin/python bench/api_bench.py --requests {args.requests} "
            f"--threads {args.threads} --write"
        )
        write_report(command, figures, args.threads)


if __name__ == "__main__":
    main()
