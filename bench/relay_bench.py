"""Measure one relay on its own: the Hub to Send path without a worker.

Usage (PostgreSQL and Redis running; the database is migrated and emptied;
the broker database only receives nudges that nothing consumes):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hubsync_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/6 \\
    .venv/bin/python bench/relay_bench.py --customers 20000

Queues the initial sync of `--customers` customers, then drains the
outbox in this process, one batch after the other, against the Send
emulator. Prints the rate and this process's CPU time per record, with
the queries' share by statement (`--queries`) or a profile
(`--profile`): the figures that tell where a relay's time goes, without
the poll, the other relays and the worker around it. Then times one
poll reading every added record back. Recording the
queries costs CPU of its own: take the CPU figure from a run without it.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hubsync.settings")

import sync_bench  # noqa: E402  (sets DEBUG off and the benchmark's secrets)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--queries", action="store_true")
    args = parser.parse_args()

    _, emulator = sync_bench.start_emulator("relay-bench-")
    from django.db import connection

    from hub.models import Node, Workspace
    from hubsync.celery import prepare_collector
    from sync import services

    try:
        userdb = sync_bench.new_userdb(emulator.base_url, "relay")
        workspace = Workspace.objects.create(name="relay")
        node = Node.objects.create(workspace=workspace, name="relay")
        sync_bench.load_customers(node, args.customers)
        source = sync_bench.send_source(workspace, node, userdb)
        queued = services.source_initial_sync(source.id)
        shares: dict[str, float] = collections.defaultdict(float)
        profile = cProfile.Profile() if args.profile else None
        if args.queries:
            connection.force_debug_cursor = True
        # The collector as a worker has it (see `prepare_collector`).
        prepare_collector()
        started, cpu = time.perf_counter(), time.process_time()
        sessions = sync_bench.postgres_cpu()
        if profile:
            profile.enable()
        relayed = 0
        while handled := services.outbox_relay(source.id):
            relayed += handled
            for query in connection.queries:
                shares[query["sql"][:60]] += float(query["time"])
            connection.queries_log.clear()
        if profile:
            profile.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        database = sum(
            used - sessions.get(pid, 0.0)
            for pid, used in sync_bench.postgres_cpu().items()
        )
        print(
            f"relayed {relayed} of {queued} in {elapsed:.1f} s = "
            f"{relayed / elapsed:.0f} records/s; CPU {cpu * 1e6 / relayed:.0f} us "
            f"per record here, {database * 1e6 / relayed:.0f} us in PostgreSQL; "
            f"Send holds {sync_bench.count(emulator.base_url, userdb)}"
        )
        for statement, seconds in sorted(shares.items(), key=lambda s: -s[1])[:10]:
            print(f"{seconds:7.2f} s  {statement}")
        if profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        # The poll then reads every added record back, as it does after an
        # initial sync: all unchanged, and all to be read.
        started, cpu = time.perf_counter(), time.process_time()
        read = services.source_poll(source.id)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"poll read back {read} in {elapsed:.1f} s = {read / elapsed:.0f} "
            f"records/s; CPU {cpu * 1e6 / max(read, 1):.0f} us per record"
        )
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
