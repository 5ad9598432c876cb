"""The sync's writes: outbox rows, relay, polling, reconciliation, upkeep.

Tasks are thin wrappers around these functions; each takes a source id,
returns quietly when the source is gone, and is safe to run twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection, reset_queries, transaction
from django.db.models import Exists, F, Min, OuterRef, Q
from django.utils import timezone

from hub.models import Customer, Node
from hub.selectors import profile_id, profile_key
from sources.models import ActiveNode, Provider, Source
from sources.rules import Change
from sources.send.gateway import MODIFIED_FIELD, AttributeFilter, SendError

from . import batches, engine
from .models import InitialChunk, Link, OutboxEntry, SyncIssue, SyncRun, SyncState
from .slots import NoSlot, account_slot

logger = logging.getLogger(__name__)

# Changes after which the links and the cursor describe another userdb.
_RELINK_CHANGES = {Change.NODE, Change.USERDB, Change.API_KEY}
# Relays running in this process, per source id.
_local_relays: Counter[str] = Counter()
_local_relays_lock = threading.Lock()


# The outbox.


def outbox_targets(node_id: uuid.UUID) -> list[ActiveNode]:
    """Return the Send grants on a node and on the aggregates that merge it."""
    grants = ActiveNode.objects.filter(provider=Provider.CONTACTSEND).filter(
        Q(node_id=node_id) | Q(node__entry_nodes=node_id)
    )
    return list(grants.select_related("node").distinct())


def subject_ids(node: Node, customer_id: uuid.UUID, *documents: Any) -> set[uuid.UUID]:
    """Return the subjects a customer change touches in `node`.

    In an entry node that is the customer; in an aggregate node, the
    profiles it belonged to before and belongs to after the change.
    """
    if not node.is_aggregate:
        return {customer_id}
    found = set()
    for document in documents:
        if document is None:
            continue
        key = profile_key(node, document)
        found.add(profile_id(node, key) if key else customer_id)
    return found


def outbox_record(
    *,
    customer: Customer,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    source_id: uuid.UUID | None,
    **kwargs: Any,
) -> None:
    """Write the outbox rows of one customer change, in its transaction.

    A write made by a Send source itself gets no row for that source, so
    what the sync pulls never echoes back.
    """
    rows = []
    for grant in outbox_targets(customer.node_id):
        if grant.source_id == source_id:
            continue
        kind = OutboxEntry.Action.DELETED if action == "deleted" else "changed"
        rows += [
            OutboxEntry(source_id=grant.source_id, subject_id=subject, action=kind)
            for subject in subject_ids(grant.node, customer.id, before, after)
        ]
    if not rows:
        return
    OutboxEntry.objects.bulk_create(rows)
    for source in {row.source_id for row in rows}:
        transaction.on_commit(functools.partial(_nudge, source))


def _nudge(source_id: uuid.UUID) -> None:
    from .tasks import outbox_relay_task

    outbox_relay_task.delay(str(source_id))


def outbox_relay_run(source_id: uuid.UUID | str, seconds: float) -> bool:
    """Relay a source's outbox for up to `seconds`, as one of its few relays.

    1. At most `relay_limit()` relays run per source: a nudge that finds
       them all busy returns at once, since a running relay drains the
       outbox. Without this, every Hub write queued a relay that held a
       worker thread, and polls waited behind them until they expired.
    2. The slots are rows in the database (shared by every worker); the
       relays of this process are also counted in memory, so that a busy
       worker turns nudges away without opening a connection.
    3. A trickle of changes needs one relay: one that claims less than a
       full batch while others of this process run lets its thread go.
    4. The last relay of this process to stop looks once more, so a row
       whose nudge was turned away meanwhile is not left for the sweep.
    Return True when time ran out with rows left, for the caller to hand
    over.
    """
    deadline = time.monotonic() + seconds
    key = str(source_id)
    while True:
        with _local_relays_lock:
            if _local_relays[key] >= relay_limit():
                return False
            _local_relays[key] += 1
        try:
            with account_slot(
                f"relay:{key}",
                wait_seconds=0,
                limit=relay_limit(),
                lease_seconds=2 * settings.SYNC_RELAY_SECONDS,
            ):
                if _drain(source_id, key, deadline):
                    return True
        except NoSlot:
            return False
        finally:
            with _local_relays_lock:
                _local_relays[key] -= 1
                last = _local_relays[key] == 0
        if not last or not _work_ready(source_id):
            return False


def _drain(source_id: uuid.UUID | str, key: str, deadline: float) -> bool:
    """Relay batches until the outbox is empty, a trickle, or time is up."""
    while True:
        handled = outbox_relay(source_id)
        # With DEBUG on, Django keeps a thread's last 9,000 queries; a
        # relay's bulk writes make that tens of MB.
        reset_queries()
        if not handled:
            return False
        if time.monotonic() >= deadline:
            return True
        if handled < engine.BATCH_SIZE and _local_relays[key] > 1:
            return False


def relay_limit() -> int:
    """Return how many relays may run at once per source.

    Relays hold an account call slot only while a call runs (`engine.call`),
    so a poll waits for one call at most, never for a relay to finish.
    """
    return max(1, int(settings.SYNC_RELAY_PARALLELISM))


def _work_ready(source_id: uuid.UUID | str) -> bool:
    """Tell whether a source has outbox rows or initial chunks free to take."""
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    rows = OutboxEntry.objects.filter(free, source_id=source_id, available_at__lte=now)
    chunks = InitialChunk.objects.filter(free, source_id=source_id)
    return rows.exists() or chunks.exists()


def outbox_relay(source_id: uuid.UUID | str) -> int:
    """Push one batch of a source: outbox rows first, else an initial chunk.

    1. Rows are claimed in a short transaction (SKIP LOCKED plus a lease),
       with the other free rows of the same subjects, so they coalesce.
    2. The subjects are pushed outside any transaction, holding one of
       the account's call slots.
    3. Done rows are deleted; on a passing failure they come back later
       with exponential backoff. A dead worker's lease simply runs out.
       Rows whose subjects an initial chunk still owes wait for it.
    Return the number of rows or customers handled (0: nothing to do).
    """
    ctx = engine.load_context(source_id)
    if ctx is None or not ctx.source.enabled:
        return 0
    claim = _claim(ctx.source)
    if claim is None:
        return _relay_chunk(ctx)
    claimed, subjects = claim
    run = SyncRun.objects.create(source=ctx.source, kind=SyncRun.Kind.PUSH)
    counts = engine.Counts()
    try:
        owed = engine.push_subjects(ctx, subjects, counts)
    except (SendError, NoSlot) as error:
        code = getattr(error, "code", "SYNC_NO_SLOT")
        _back_off(claimed)
        _finish(run, counts, error=f"{code}: {error}")
        logger.warning(
            "Outbox batch postponed. source=%s rows=%s code=%s",
            source_id,
            len(claimed),
            code,
        )
        return len(claimed)
    finally:
        ctx.close()
    rows = OutboxEntry.objects.filter(id__any_of=claimed)
    if owed:
        rows.filter(subject_id__in=owed).update(
            claim=None,
            claimed_until=None,
            available_at=timezone.now()
            + dt.timedelta(seconds=settings.SYNC_CHUNK_WAIT_SECONDS),
        )
        rows = rows.exclude(subject_id__in=owed)
    rows.delete()
    _finish(run, counts)
    return len(claimed)


def _relay_chunk(ctx: engine.Context) -> int:
    """Lease one initial chunk of the source and push its customers.

    The chunk is deleted once pushed, or narrowed to the ids after those
    pushed when it held more than one read; on a passing failure it comes
    back later with exponential backoff. Return the customers handled.
    """
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.SYNC_CLAIM_SECONDS)
    chunk = batches.claim_chunk(ctx.source.id, now, now + lease)
    if chunk is None:
        ctx.close()
        return 0
    run = SyncRun.objects.create(source=ctx.source, kind=SyncRun.Kind.INITIAL)
    counts = engine.Counts()
    chunks = InitialChunk.objects.filter(pk=chunk.pk)
    try:
        more = engine.push_chunk(ctx, chunk, counts)
    except (SendError, NoSlot) as error:
        code = getattr(error, "code", "SYNC_NO_SLOT")
        delay = min(settings.SYNC_BACKOFF_MAX_SECONDS, 2 ** min(chunk.attempts, 16))
        chunks.update(
            keys=[],
            claimed_until=timezone.now()
            + dt.timedelta(seconds=delay * (0.5 + random.random())),
        )
        _finish(run, counts, error=f"{code}: {error}")
        logger.warning(
            "Initial chunk postponed. source=%s chunk=%s code=%s",
            ctx.source.id,
            chunk.pk,
            code,
        )
        return max(chunk.size, 1)
    finally:
        ctx.close()
    if more is None:
        chunks.delete()
    elif chunk.attempts == 1:
        # The rest was never read, so never sent: its next lease adds
        # without look-ups.
        chunks.update(after_id=more, keys=[], claimed_until=None, attempts=0)
    else:
        # An earlier lease may have read further (customers created since
        # move the limit), so the rest is still looked up.
        chunks.update(after_id=more, keys=[], claimed_until=None)
    _release_waiting(ctx.source.id, chunk.after_id, more or chunk.upto_id)
    _finish(run, counts)
    # Never 0, which would tell the relay the source has nothing left.
    return max(1, sum(counts.as_fields().values()))


def _claim(source: Source) -> tuple[list[int], list[uuid.UUID]] | None:
    now = timezone.now()
    lease = dt.timedelta(seconds=settings.SYNC_CLAIM_SECONDS)
    claimed, subjects = batches.claim_outbox(
        source.id, engine.BATCH_SIZE, now, now + lease
    )
    return (claimed, subjects) if claimed else None


def _back_off(row_ids: list[int]) -> None:
    rows = OutboxEntry.objects.filter(id__in=row_ids)
    attempts = (rows.aggregate(most=Min("attempts"))["most"] or 0) + 1
    delay = min(settings.SYNC_BACKOFF_MAX_SECONDS, 2 ** min(attempts, 16))
    rows.update(
        claim=None,
        claimed_until=None,
        attempts=F("attempts") + 1,
        available_at=timezone.now()
        + dt.timedelta(seconds=delay * (0.5 + random.random())),
    )


def _finish(run: SyncRun, counts: engine.Counts, error: str = "") -> None:
    for name, value in counts.as_fields().items():
        setattr(run, name, value)
    run.error = error[:2000]
    run.finished_at = timezone.now()
    run.save()


def _release_waiting(
    source_id: uuid.UUID, after: uuid.UUID | None, upto: uuid.UUID | None
) -> None:
    """Make the outbox rows that waited for a pushed range ready at once."""
    now = timezone.now()
    rows = OutboxEntry.objects.filter(source_id=source_id, available_at__gt=now)
    if after is not None:
        rows = rows.filter(subject_id__gt=after)
    if upto is not None:
        rows = rows.filter(subject_id__lte=upto)
    rows.filter(attempts=0).update(available_at=now)


def pending_sources() -> list[uuid.UUID]:
    """Return the enabled Send sources with work ready to go, once each:
    outbox rows, or initial chunks (a dead worker's lease ran out)."""
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    rows = (
        OutboxEntry.objects.filter(free, source__enabled=True, available_at__lte=now)
        .values_list("source_id", flat=True)
        # The model's default ordering (id) would join the DISTINCT and
        # name a source once per row: 100,000 nudges per sweep.
        .order_by()
        .distinct()
    )
    chunks = (
        InitialChunk.objects.filter(free, source__enabled=True)
        .values_list("source_id", flat=True)
        .order_by()
        .distinct()
    )
    return list(dict.fromkeys([*rows, *chunks]))


def outbox_sweep() -> list[uuid.UUID]:
    """Queue the customers a bulk path changed without an outbox row.

    A customer whose updatedAt is later than its link's last sync (or who
    has no link) and has no pending row gets one. Return the sources with
    rows ready, so the caller can nudge their relays.
    """
    for grant in ActiveNode.objects.filter(
        provider=Provider.CONTACTSEND, source__enabled=True
    ).select_related("node", "source"):
        if "R" in grant.permission:
            _sweep_grant(grant)
    return pending_sources()


def _pushing_initial(source_id: uuid.UUID) -> bool:
    """Tell whether the initial sync of a source still has chunks to push."""
    return InitialChunk.objects.filter(source_id=source_id).exists()


def _sweep_grant(grant: ActiveNode) -> None:
    state, _ = SyncState.objects.get_or_create(source_id=grant.source_id)
    if state.initial_done_at is None:
        return
    if _pushing_initial(grant.source_id):
        # The chunks read every customer as it is when they run. The window
        # below keeps its start meanwhile, so what a bulk path changes in a
        # chunk already pushed is swept once they are done.
        return
    started = timezone.now()
    since = (state.last_sweep_at or state.initial_done_at) - dt.timedelta(minutes=1)
    node = grant.node
    customers = Customer.objects.filter(
        node_id__in=node.storage_node_ids(), updated_at__gte=since
    ).exclude(updated_by=grant.source_id)
    rows: list[tuple[uuid.UUID, dt.datetime]] = []
    if not node.is_aggregate:
        # A customer is its own subject: the database picks the stale ones,
        # so a large import inside the window costs no Python per customer.
        queued = OutboxEntry.objects.filter(
            source_id=grant.source_id, subject_id=OuterRef("pk")
        )
        synced = Link.objects.filter(
            source_id=grant.source_id,
            subject_id=OuterRef("pk"),
            synced_at__gte=OuterRef("updated_at"),
        )
        stale = customers.filter(~Exists(queued), ~Exists(synced))
        rows += stale.values_list("id", "updated_at").iterator(chunk_size=5000)
    else:
        for customer in customers.iterator(chunk_size=2000):
            for subject in subject_ids(node, customer.id, customer.as_document()):
                rows.append((subject, customer.updated_at))
    if rows:
        _queue_stale(grant.source_id, rows)
    state.last_sweep_at = started
    state.save(update_fields=["last_sweep_at"])


def _queue_stale(
    source_id: uuid.UUID, rows: list[tuple[uuid.UUID, dt.datetime]]
) -> None:
    for start in range(0, len(rows), 1000):
        chunk = dict(rows[start : start + 1000])
        synced = dict(
            Link.objects.filter(source_id=source_id, subject_id__in=chunk).values_list(
                "subject_id", "synced_at"
            )
        )
        queued = set(
            OutboxEntry.objects.filter(
                source_id=source_id, subject_id__in=chunk
            ).values_list("subject_id", flat=True)
        )
        OutboxEntry.objects.bulk_create(
            OutboxEntry(source_id=source_id, subject_id=subject, action="changed")
            for subject, updated_at in chunk.items()
            if subject not in queued
            and (subject not in synced or synced[subject] < updated_at)
        )


# Lifecycle.


def source_changed_record(
    *,
    source: Source,
    action: str,
    changes: set[Change],
    was_enabled: bool,
    **kwargs: Any,
) -> None:
    """React to a source's configuration change, inside its transaction.

    Enabling runs the initial sync (first time) or catches up; a change of
    node, account or userdb drops the links and the cursor, which now
    describe another userdb.
    """
    if not source.is_send or action == "deleted":
        return
    if action == "updated" and changes & _RELINK_CHANGES:
        Link.objects.filter(source=source).delete()
        InitialChunk.objects.filter(source=source).delete()
        SyncState.objects.filter(source=source).delete()
    if not source.enabled:
        # Nobody watches the userdb while the source is off.
        SyncState.objects.filter(source=source).update(only_ours=False)
    if not source.enabled or (was_enabled and action == "updated"):
        return
    source_id = str(source.id)
    transaction.on_commit(lambda: _start(source_id))


def _start(source_id: str) -> None:
    from .tasks import source_initial_sync_task

    source_initial_sync_task.delay(source_id)


def source_initial_sync(source_id: uuid.UUID | str) -> int:
    """Queue every subject of the source's node, once; on re-enable, catch up.

    The first time, an entry node is split into initial chunks, and each
    profile of an aggregate node gets an outbox row; the relays then add
    them in batches. Later enables only wake the relays and the poll: the
    outbox and the chunks kept what happened meanwhile, and the cursor
    where the poll stopped. Return the number of subjects queued.
    """
    ctx = engine.load_context(source_id)
    if ctx is None or not ctx.source.enabled:
        return 0
    state, _ = SyncState.objects.get_or_create(source=ctx.source)
    if state.initial_done_at is not None:
        return 0
    # Only a watched userdb may skip look-ups: the poll is what notices a
    # record someone else adds.
    watched = not ctx.node.is_aggregate and (ctx.writes or bool(ctx.rows))
    only_ours = watched and _userdb_empty(ctx)
    SyncState.objects.filter(pk=state.pk).update(only_ours=only_ours)
    if ctx.node.is_aggregate:
        queued = _queue_aggregate(ctx.source, ctx.node)
    else:
        queued = _chunk_entry_node(ctx.source, ctx.node)
    SyncState.objects.filter(pk=state.pk).update(initial_done_at=timezone.now())
    logger.info("Initial sync queued. source=%s subjects=%s", source_id, queued)
    return queued


def _userdb_empty(ctx: engine.Context) -> bool:
    """Tell whether the userdb holds no record; False when Send cannot say."""
    try:
        return engine.call(ctx, ctx.gateway.count_subscribers, ctx.userdb_id) == 0
    except (SendError, NoSlot):
        return False
    finally:
        ctx.close()


def _chunk_entry_node(source: Source, node: Node) -> int:
    """Split an entry node's customers into initial chunks; return how many
    customers they hold.

    Every CHUNK_SIZE-th id, in id order, ends a chunk; the first chunk has
    no lower bound and the last no upper one, so together they cover every
    id. The database numbers the ids: only the bounds reach Python.
    """
    InitialChunk.objects.filter(source=source).delete()
    size = engine.CHUNK_SIZE
    ids = Customer._meta.pk
    assert ids is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM (SELECT id,"  # noqa: S608 - the model's table
            " row_number() OVER (ORDER BY id) AS place"
            f" FROM {Customer._meta.db_table} WHERE node_id = %s) AS numbered"
            " WHERE place %% %s = 0 ORDER BY id",
            [ids.get_db_prep_value(node.id, connection), size],
        )
        bounds = [ids.to_python(row[0]) for row in cursor.fetchall()]
    total = Customer.objects.filter(node=node).count()
    edges = [None, *bounds, None]
    InitialChunk.objects.bulk_create(
        InitialChunk(
            source=source,
            after_id=after,
            upto_id=upto,
            size=size if upto is not None else total - size * len(bounds),
        )
        for after, upto in itertools.pairwise(edges)
    )
    return total


def _queue_aggregate(source: Source, node: Node) -> int:
    from hub.selectors import aggregate_profiles

    profiles = (uuid.UUID(profile["id"]) for profile in aggregate_profiles(node))
    queued = 0
    for chunk in _chunks(profiles, 5000):
        OutboxEntry.objects.bulk_create(
            OutboxEntry(source=source, subject_id=subject, action="changed")
            for subject in chunk
        )
        queued += len(chunk)
    return queued


def _chunks(items: Iterable[uuid.UUID], size: int) -> Iterable[list[uuid.UUID]]:
    chunk: list[uuid.UUID] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# Send to Hub.


def pollable_sources() -> list[uuid.UUID]:
    """Return the enabled Send sources that take anything from Send."""
    return list(
        ActiveNode.objects.filter(
            provider=Provider.CONTACTSEND, source__enabled=True, node__kind="ENTRY"
        ).values_list("source_id", flat=True)
    )


def source_poll(source_id: uuid.UUID | str) -> int:
    """Pull the records changed in Send since the cursor; return how many.

    The cursor is (lastModified, ids applied at it): each page is read
    again from >= the cursor, so records that share a timestamp, or that
    change while the poll pages, are neither skipped nor applied twice.
    Pages carry identifiers and stamps alone; only the records whose stamp
    moved since their link saw them are read whole.

    While initial chunks remain, the poll holds its cursor (see
    `_hold_for_chunks`) and reads on from it once they are pushed.
    """
    ctx = engine.load_context(source_id)
    if ctx is None or not ctx.source.enabled or ctx.node.is_aggregate:
        return 0
    if not ctx.writes and not ctx.rows:
        return 0
    if _pushing_initial(ctx.source.id):
        _hold_for_chunks(ctx)
        return 0
    state = _lease(ctx.source)
    if state is None:
        return 0
    counts = engine.Counts()
    seen = 0
    try:
        seen = _poll_pages(ctx, state, counts)
        state.last_poll_ok_at = timezone.now()
    except (SendError, NoSlot) as error:
        logger.warning(
            "Poll failed. source=%s code=%s",
            source_id,
            getattr(error, "code", "SYNC_NO_SLOT"),
        )
    finally:
        ctx.close()
        state.last_poll_at = timezone.now()
        state.poll_lease_until = None
        # Only the poll's own fields: the initial sync, the sweep and the
        # reconciliation write the same row meanwhile.
        state.save(
            update_fields=["last_poll_at", "poll_lease_until", "last_poll_ok_at"]
        )
    if counts.added or counts.updated or counts.failed or counts.conflicts:
        run = SyncRun.objects.create(source=ctx.source, kind=SyncRun.Kind.POLL)
        _finish(run, counts)
    return seen


def _hold_for_chunks(ctx: engine.Context) -> None:
    """Check, instead of paging, that Send holds only what the sync added.

    Every record a poll would meet during the initial push is one the push
    has just added: reading them back while the push runs took as much of
    Send and of the worker as the adds themselves. The cursor stays where
    it is, so nothing is skipped, only read later. What matters meanwhile
    is a record someone else adds: with `only_ours`, chunks add without
    looking Send up, and would add its customer twice. So Send's count is
    compared with what the sync may have added (read after it): more
    records in Send than that turns look-ups back on.
    """
    if not ctx.only_ours:
        return
    try:
        held = engine.call(ctx, ctx.gateway.count_subscribers, ctx.userdb_id)
    except (SendError, NoSlot) as error:
        logger.warning(
            "Count of a held poll failed. source=%s code=%s",
            ctx.source.id,
            getattr(error, "code", "SYNC_NO_SLOT"),
        )
        return
    finally:
        ctx.close()
    ours = batches.records_added(ctx.source.id)
    if held > ours:
        engine.other_records_counted(ctx, held - ours)


def _lease(source: Source) -> SyncState | None:
    state, _ = SyncState.objects.get_or_create(source=source)
    now = timezone.now()
    until = now + dt.timedelta(seconds=settings.SYNC_CLAIM_SECONDS)
    taken = (
        SyncState.objects.filter(pk=state.pk)
        .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
        .update(poll_lease_until=until)
    )
    if not taken:
        return None
    state.refresh_from_db()
    return state


def _poll_pages(ctx: engine.Context, state: SyncState, counts: engine.Counts) -> int:
    stamp, seen_at_stamp = state.cursor_stamp, set(state.cursor_ids)
    page, total = 1, 0
    while True:
        where = (
            [AttributeFilter(MODIFIED_FIELD, stamp, "GREATER_EQUALS")] if stamp else []
        )
        records = engine.call(
            ctx,
            ctx.gateway.find_subscribers_by,
            ctx.userdb_id,
            where,
            page=page,
            page_size=engine.STUB_PAGE_SIZE,
            sort_field=MODIFIED_FIELD,
            ascending=True,
            attributes=[MODIFIED_FIELD],
        )
        fresh = [
            r
            for r in records
            if not (
                r.attributes.get(MODIFIED_FIELD) == stamp
                and r.identifier in seen_at_stamp
            )
        ]
        engine.pull_moved(ctx, fresh, counts)
        for record in fresh:
            moment = record.attributes.get(MODIFIED_FIELD) or ""
            if moment != stamp:
                stamp, seen_at_stamp = moment, set()
            seen_at_stamp.add(record.identifier)
        total += len(fresh)
        state.cursor_stamp, state.cursor_ids = stamp, sorted(seen_at_stamp)
        state.save(update_fields=["cursor_stamp", "cursor_ids"])
        if len(records) < engine.STUB_PAGE_SIZE:
            return total
        # A full page of records all seen at one instant: read further on.
        page = 1 if fresh else page + 1


def source_reconcile(source_id: uuid.UUID | str) -> int:
    """Compare every Send record with its link: find deletions and misses.

    A linked record Send no longer lists (checked once more by id) is
    unlinked and shown in the history; the Hub customer stays. Return the
    number of records unlinked.
    """
    ctx = engine.load_context(source_id)
    if ctx is None or not ctx.source.enabled or ctx.node.is_aggregate:
        return 0
    if _pushing_initial(ctx.source.id):
        # Everything it would read is being added now; the held poll
        # watches for records of others meanwhile.
        return 0
    state = _reconcile_claim(ctx.source)
    if state is None:
        return 0
    run = SyncRun.objects.create(source=ctx.source, kind=SyncRun.Kind.RECONCILE)
    counts = engine.Counts()
    started = timezone.now()
    try:
        present = _read_all(ctx, counts)
        gone = _unlink_deleted(ctx, present, started, counts)
        _finish(run, counts)
    except (SendError, NoSlot) as error:
        gone = 0
        _finish(run, counts, error=f"{getattr(error, 'code', 'SYNC_NO_SLOT')}")
    finally:
        ctx.close()
    return gone


def _reconcile_claim(source: Source) -> SyncState | None:
    # A reconciliation runs beside the polls (it may take minutes on a large
    # userdb and must not stall them), but never beside another one.
    state, _ = SyncState.objects.get_or_create(source=source)
    now = timezone.now()
    spacing = dt.timedelta(minutes=settings.SYNC_RECONCILE_MINUTES / 2)
    taken = (
        SyncState.objects.filter(pk=state.pk)
        .filter(
            Q(last_reconcile_at__isnull=True) | Q(last_reconcile_at__lt=now - spacing)
        )
        .update(last_reconcile_at=now)
    )
    return state if taken else None


def _read_all(ctx: engine.Context, counts: engine.Counts) -> set[int]:
    present: set[int] = set()
    page = 1
    while True:
        records = engine.call(
            ctx,
            ctx.gateway.find_subscribers_by,
            ctx.userdb_id,
            [],
            page=page,
            page_size=engine.STUB_PAGE_SIZE,
            attributes=[MODIFIED_FIELD],
        )
        present.update(record.identifier for record in records)
        if ctx.writes or ctx.rows:
            engine.pull_moved(ctx, records, counts)
        if len(records) < engine.STUB_PAGE_SIZE:
            return present
        page += 1


def _unlink_deleted(
    ctx: engine.Context, present: set[int], started: dt.datetime, counts: engine.Counts
) -> int:
    missing = Link.objects.filter(
        source=ctx.source, subscriber_id__isnull=False, synced_at__lt=started
    ).exclude(subscriber_id__in=present)
    gone = 0
    for link in missing.iterator():
        assert link.subscriber_id is not None
        # Offset paging can miss a record that moved: ask for it by id.
        record = engine.call(
            ctx, ctx.gateway.get_subscriber, ctx.userdb_id, link.subscriber_id
        )
        if record is not None:
            continue
        engine.unlink_deleted_in_send(ctx, link)
        counts.removed += 1
        gone += 1
    return gone


# Upkeep and operator actions.


def history_prune() -> int:
    """Delete runs and closed issues older than the kept period."""
    limit = timezone.now() - dt.timedelta(days=settings.SYNC_HISTORY_DAYS)
    runs, _ = SyncRun.objects.filter(started_at__lt=limit).delete()
    issues, _ = (
        SyncIssue.objects.filter(created_at__lt=limit)
        .filter(
            Q(resolved_at__isnull=False)
            | Q(kind__in=[SyncIssue.Kind.CONFLICT, SyncIssue.Kind.DELETED_IN_SEND])
        )
        .delete()
    )
    return runs + issues


def sync_retry(source: Source, error_ids: list[int] | None = None) -> int:
    """Queue again the records of open errors (all, or the given ones).

    The errors are closed and their subjects get outbox rows, so the next
    relay tries them with the current data. Return the number of errors.
    """
    issues = SyncIssue.objects.filter(
        source=source,
        kind__in=[SyncIssue.Kind.ERROR, SyncIssue.Kind.ATTENTION],
        resolved_at__isnull=True,
    )
    if error_ids is not None:
        issues = issues.filter(id__in=error_ids)
    with transaction.atomic():
        chosen = list(issues.select_for_update())
        subjects = {i.subject_id for i in chosen if i.subject_id is not None}
        OutboxEntry.objects.bulk_create(
            OutboxEntry(source=source, subject_id=subject, action="changed")
            for subject in subjects
        )
        SyncIssue.objects.filter(id__in=[i.id for i in chosen]).update(
            resolved_at=timezone.now()
        )
        if any(i.subject_id is None for i in chosen):
            # Records known only by their Send id come back with a full read.
            SyncState.objects.filter(source=source).update(
                cursor_stamp="", cursor_ids=[]
            )
        if chosen:
            source_id = source.id
            transaction.on_commit(lambda: _nudge(source_id))
    logger.info("Sync errors retried. source=%s count=%s", source.id, len(chosen))
    return len(chosen)


def sync_resync(source: Source) -> None:
    """Send every subject again and read Send again from the start.

    Links are kept, so nothing is added twice; hashes are cleared, so every
    record is compared and rewritten where it differs.
    """
    with transaction.atomic():
        Link.objects.filter(source=source).update(
            hub_hash="", send_hash="", send_stamp=""
        )
        SyncState.objects.update_or_create(
            source=source,
            defaults={"cursor_stamp": "", "cursor_ids": [], "initial_done_at": None},
        )
        source_id = str(source.id)
        if source.enabled:
            transaction.on_commit(lambda: _start(source_id))
    logger.info("Resync requested. source=%s", source.id)
