"""Benchmark the sync against the Send emulator.

Usage (PostgreSQL and Redis running; the database is migrated and emptied):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hubsync_bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/3 \
    .venv/bin/python bench/sync_bench.py --customers 100000

The benchmark and its worker run with DEBUG off, as production does (with
DEBUG on, Django keeps the text of every query, which cost the sync's
batch writes almost as much CPU as the rest of their work), on secrets
made for the benchmark alone.

Measures: a naive one-call-per-customer sync (on a sample), the initial
sync of `--customers` customers by a real worker, the emulator's raw ingest
ceiling (addSubscribers, 500 a call, 4 at a time) right before that sync
and right after its records are read back, the worker's peak memory (RSS
and PSS of its process tree), and the latency of single changes each way
under a background load.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import django
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hubsync.settings")
os.environ["DEBUG"] = "0"
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-secret")
# base64 of "bench-only-fernet-key-not-secret": a valid key, and a fake one.
os.environ.setdefault(
    "HUBSYNC_ENCRYPTION_KEYS", "YmVuY2gtb25seS1mZXJuZXQta2V5LW5vdC1zZWNyZXQ="
)

from send_emulator import process as emulator_process  # noqa: E402

API_KEY, USER_KEY = "bench-api-key-fake", "bench-user-key-fake"


def control(base: str, method: str, path: str, payload: Any = None) -> Any:
    answer = requests.request(
        method, f"{base}/_control/{path}", json=payload, timeout=60
    )
    answer.raise_for_status()
    return answer.json()


def new_userdb(base: str, name: str) -> int:
    answer = control(
        base,
        "POST",
        "userdbs",
        {
            "apiKey": API_KEY,
            "name": name,
            "fields": [
                {"name": "email", "type": "STRING", "emailField": True},
                {"name": "firstName", "type": "STRING"},
            ],
        },
    )
    return int(answer["id"])


def count(base: str, userdb: int) -> int:
    info = control(base, "GET", f"userdbs/{userdb}/info")
    return int(info["subscriberCount"])


def added(counters: dict[str, Any], before: dict[str, Any]) -> int:
    """Return the records added by `addSubscribers` between two readings
    of the emulator's counters."""
    writes, earlier = counters["writes"], before["writes"]
    return int(writes.get("addSubscribers", 0) - earlier.get("addSubscribers", 0))


def memory_tree(pid: int) -> tuple[int, int]:
    """Return the resident and proportional memory of a process and its
    children, in bytes.

    The proportional figure (PSS) counts a page shared by n processes as
    1/n in each: the processes of a prefork pool share most of their pages
    with their parent, and summing their resident sets counts those again
    for every process.
    """
    rss = pss = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            pass
    return rss, pss


def process_cpu(pid: int) -> float:
    """Return the CPU seconds a process has used so far (0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    utime, stime = fields.split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return the CPU seconds used so far by a process and its children."""
    family = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        family += [int(p) for p in children.read_text().split()]
    return sum(process_cpu(each) for each in family)


def postgres_cpu() -> dict[int, float]:
    """Return the CPU seconds of each PostgreSQL process (sessions included).

    Key 0 holds what the sessions that ended so far used: the server's
    main process collects their times (a Celery task closes its
    connection when it ends, so sessions come and go during a run).
    """
    found = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                pid = int(entry.name)
                found[pid] = process_cpu(pid)
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if (
                    fields[1] == "1"
                    or Path(f"/proc/{fields[1]}/comm").read_text().strip() != "postgres"
                ):
                    found[0] = (int(fields[13]) + int(fields[14])) / ticks
            except (FileNotFoundError, ProcessLookupError):
                continue
    return found


def machine_ticks() -> list[int]:
    """Return the machine's CPU ticks so far: busy, idle, stolen."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return [user + nice + system + irq + softirq, idle + iowait, steal]


def machine_share(before: list[int], after: list[int]) -> str:
    """Describe how the machine's CPU time went between two readings."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent) or 1
    busy, idle, stolen = (100 * part / total for part in spent)
    return f"machine {busy:.0f}% busy, {idle:.0f}% idle, {stolen:.0f}% stolen"


def cpu_split(worker: int, emulator: int) -> dict[str, Any]:
    """Return the CPU seconds used so far by each part of the benchmark."""
    return {
        "worker": cpu_seconds(worker),
        "emulator": process_cpu(emulator),
        "PostgreSQL": postgres_cpu(),
        "this script": process_cpu(os.getpid()),
    }


def cpu_spent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Return the CPU seconds each part used between two `cpu_split` calls.

    PostgreSQL sessions opened in between count from nothing."""
    spent = {name: after[name] - before[name] for name in after if name != "PostgreSQL"}
    old = before["PostgreSQL"]
    spent["PostgreSQL"] = sum(
        used - old.get(pid, 0.0) for pid, used in after["PostgreSQL"].items()
    )
    return spent


def raw_ceiling(gateway_factory: Any, base: str, records: int) -> float:
    from sources.send.gateway import SendCredentials

    userdb = new_userdb(base, "raw")
    rows = [{"email": f"raw{n}@example.com", "firstName": "R"} for n in range(records)]
    chunks = [rows[i : i + 500] for i in range(0, records, 500)]
    lock = threading.Lock()

    def work() -> None:
        gateway = gateway_factory(SendCredentials(API_KEY, USER_KEY))
        while True:
            with lock:
                if not chunks:
                    return
                chunk = chunks.pop()
            gateway.add_subscribers(userdb, chunk)

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records / (time.perf_counter() - started)


def naive(gateway_factory: Any, base: str, sample: int) -> float:
    from sources.send.gateway import SendCredentials

    userdb = new_userdb(base, "naive")
    gateway = gateway_factory(SendCredentials(API_KEY, USER_KEY))
    started = time.perf_counter()
    for n in range(sample):
        # What a naive sync does per customer: look up, then add.
        gateway.find_subscribers(userdb, "email", f"naive{n}@example.com")
        gateway.add_subscriber(userdb, {"email": f"naive{n}@example.com"})
    return sample / (time.perf_counter() - started)


def start_emulator(prefix: str) -> tuple[Path, Any]:
    """Start the emulator, point Django at it, empty the database, and
    open the benchmark's Send account. Return the folder and the emulator."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    emulator = emulator_process.start(folder, *emulator_process.NO_LIMITS)
    os.environ["SEND_WSDL_URL"] = f"{emulator.base_url}/soap/services?wsdl"
    os.environ["SEND_GATEWAY"] = "sources.send.client.SoapSendGateway"
    django.setup()
    from django.core.management import call_command

    call_command("flush", "--noinput", verbosity=0)
    credentials = {"apiKey": API_KEY, "userKey": USER_KEY}
    control(emulator.base_url, "POST", "accounts", credentials)
    return folder, emulator


def load_customers(node: Any, customers: int) -> None:
    """Store `customers` customers with an email and a first name, then
    take fresh statistics, as autovacuum would after a bulk load (it is
    off on some development servers)."""
    from django.db import connection

    from hub.models import Customer

    Customer.objects.bulk_create(
        (
            Customer(node=node, base={"firstName": "Ada", "contacts": contact})
            for contact in ({"email": f"c{n}@example.com"} for n in range(customers))
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def send_source(workspace: Any, node: Any, userdb: int) -> Any:
    """Create and enable the benchmark's Send source (email matches)."""
    from sources.models import Provider
    from sources.services import (
        FieldRow,
        NodeGrant,
        SendSettings,
        SourceSpec,
        source_create,
    )

    return source_create(
        workspace=workspace,
        provider=Provider.CONTACTSEND,
        spec=SourceSpec(
            name="bench",
            nodes=(NodeGrant(node, "RW"),),
            send=SendSettings(
                userdb_id=userdb,
                api_key=API_KEY,
                user_key=USER_KEY,
                fields=(
                    FieldRow("base.contacts.email", "email", matching=True),
                    FieldRow("base.firstName", "firstName"),
                ),
            ),
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=1000)
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument("--pool", default="threads", help="the worker's pool")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    folder, emulator = start_emulator("sync-bench-")
    base = emulator.base_url
    from django.conf import settings
    from django.db import connection

    from hub import services as hub
    from hub.models import Customer, Node, Workspace
    from sources.send.client import SoapSendGateway
    from sync.models import Link

    worker = None
    try:
        raw = min(args.customers, 50_000)

        def ceiling_now(when: str) -> float:
            before_raw, ticks = process_cpu(emulator.process.pid), machine_ticks()
            ceiling = raw_ceiling(SoapSendGateway, base, raw)
            emulator_cpu = process_cpu(emulator.process.pid) - before_raw
            print(
                f"raw ingest ceiling {when}: {ceiling:.0f} records/s "
                f"(emulator CPU {emulator_cpu * 1e6 / raw:.0f} us per record; "
                f"{machine_share(ticks, machine_ticks())})",
                flush=True,
            )
            return ceiling

        slow = naive(SoapSendGateway, base, args.naive_sample)
        print(f"naive one call per customer: {slow:.0f} records/s", flush=True)

        userdb = new_userdb(base, "sync")
        workspace = Workspace.objects.create(name="bench")
        node = Node.objects.create(workspace=workspace, name="bench")
        load_customers(node, args.customers)
        # The sync's own tables grow from empty during the run: analyse them
        # as autovacuum would, at most once a minute (its default naptime),
        # and once the initial sync is over, before the latencies.
        analysing = threading.Event()

        def analyse_sync_tables() -> None:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE sync_link, sync_outboxentry")

        def analyse() -> None:
            while not analysing.wait(60):
                analyse_sync_tables()
            connection.close()

        analyser = threading.Thread(target=analyse, daemon=True)
        analyser.start()
        env = {
            **os.environ,
            "SEND_POLL_SECONDS": "1",
            "SYNC_SWEEP_SECONDS": "2",
            "HUBSYNC_VAR_DIR": str(folder),
        }
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hubsync",
                "worker",
                "-B",
                f"--pool={args.pool}",
                "-c",
                str(args.concurrency),
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=(folder / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        time.sleep(3)
        # The machine's speed drifts within seconds: the ceiling is taken
        # right before the sync and again once its records are read back,
        # with the worker idle, and the sync is read against their mean.
        ceiling = ceiling_now("before the sync")
        peak = peak_pss = 0
        before, ticks = cpu_split(worker.pid, emulator.process.pid), machine_ticks()
        counters_before = control(base, "GET", "counters")
        calls_before = counters_before["calls"]
        started = time.perf_counter()
        source = send_source(workspace, node, userdb)
        # The end is watched on the emulator's write counter, a cheap read,
        # every 50 ms (counting the userdb's records every 0.5 s made the
        # run look 0.25 s longer on average), then confirmed by a count.
        sampled = 0.0
        while True:
            if time.perf_counter() - sampled >= 0.5:
                rss, pss = memory_tree(worker.pid)
                peak, peak_pss = max(peak, rss), max(peak_pss, pss)
                sampled = time.perf_counter()
            if (
                added(control(base, "GET", "counters"), counters_before)
                >= args.customers
                and count(base, userdb) >= args.customers
            ):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        spent = cpu_spent(before, cpu_split(worker.pid, emulator.process.pid))
        rate = args.customers / elapsed
        print(
            f"initial sync: {args.customers} in {elapsed:.1f} s = {rate:.0f} "
            f"records/s ({rate / slow:.1f}x naive)",
            flush=True,
        )
        print(
            "CPU per record during it: "
            + ", ".join(
                f"{name} {seconds * 1e6 / args.customers:.0f} us"
                for name, seconds in spent.items()
            )
            + f"; {machine_share(ticks, machine_ticks())}",
            flush=True,
        )
        calls = control(base, "GET", "counters")["calls"]
        served = {
            name: calls[name] - calls_before.get(name, 0)
            for name in sorted(calls)
            if calls[name] != calls_before.get(name, 0)
        }
        print(f"Send calls during it: {served}", flush=True)
        print(
            f"worker peak memory (process tree): RSS {peak / 2**20:.0f} MB, "
            f"PSS {peak_pss / 2**20:.0f} MB",
            flush=True,
        )
        analyse_sync_tables()

        # The poll reads back the records the initial sync added before it
        # reaches anything newer: time that catch-up with one probe edited
        # in Send, so that the latencies below are the steady state.
        customers = list(Customer.objects.filter(node=node)[:201])
        probe = customers[200]
        probe_id = Link.objects.get(source=source, subject_id=probe.id).subscriber_id
        t0 = time.perf_counter()
        control(
            base,
            "PUT",
            f"userdbs/{userdb}/subscribers/{probe_id}",
            {"attributes": {"firstName": "Probe"}},
        )
        while probe.base.get("firstName") != "Probe":
            time.sleep(0.1)
            probe.refresh_from_db()
        print(
            f"poll caught up with the initial sync's read-back in "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        again = ceiling_now("after it")
        mean = (ceiling + again) / 2
        print(
            f"initial sync: {rate / ceiling:.2f} / {rate / again:.2f} / "
            f"{rate / mean:.2f} of the ceiling before / after / on average",
            flush=True,
        )

        # Latency under a background load of 50 Hub changes per second.
        stop = threading.Event()

        def load() -> None:
            n = 0
            while not stop.is_set():
                tick = time.perf_counter()
                for _ in range(5):
                    target = customers[n % 100]
                    hub.customer_patch(
                        customer=target, patch={"base": {"lastName": f"L{n}"}}
                    )
                    n += 1
                time.sleep(max(0.0, 0.1 - (time.perf_counter() - tick)))

        from django.db import connections

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(5)
        hub_to_send, send_to_hub = [], []
        links = dict(
            Link.objects.filter(source=source).values_list(
                "subject_id", "subscriber_id"
            )
        )
        for i in range(args.latency_samples):
            target = customers[100 + i]
            t0 = time.perf_counter()
            hub.customer_patch(customer=target, patch={"base": {"firstName": f"H{i}"}})
            identifier = links[target.id]
            while True:
                record = control(
                    base, "GET", f"userdbs/{userdb}/subscribers/{identifier}"
                )
                if record["attributes"].get("firstName") == f"H{i}":
                    break
                time.sleep(0.02)
            hub_to_send.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            control(
                base,
                "PUT",
                f"userdbs/{userdb}/subscribers/{identifier}",
                {"attributes": {"firstName": f"S{i}"}},
            )
            while True:
                target.refresh_from_db()
                if target.base.get("firstName") == f"S{i}":
                    break
                time.sleep(0.02)
            send_to_hub.append(time.perf_counter() - t0)
        stop.set()
        analysing.set()
        loader.join()
        connections.close_all()
        for name, values in (
            ("Hub -> Send", hub_to_send),
            ("Send -> Hub", send_to_hub),
        ):
            cuts = statistics.quantiles(values, n=20)
            print(
                f"latency {name}: p50 {statistics.median(values):.2f} s, "
                f"p95 {cuts[18]:.2f} s (poll {settings.SEND_POLL_SECONDS} s)"
            )

    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        emulator.stop()


if __name__ == "__main__":
    main()
