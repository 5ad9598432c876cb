"""The sync's batch writes: claiming outbox rows and chunks, writing links.

Each runs once per batch of up to 500 subjects. On PostgreSQL each is one
statement whose rows travel as one JSON or array parameter (see
`hubsync.db`); elsewhere the same effect comes from ORM queries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest

from hubsync.db import fast_path, relax_commit
from sources.models import Source

from .models import InitialChunk, Link, OutboxEntry

# What a push may change in a link.
LINK_FIELDS = [
    "subscriber_id",
    "hub_hash",
    "send_hash",
    "send_stamp",
    "values",
    "subscriptions",
    "pending_add",
    "synced_at",
]
_LINK = Link._meta.db_table
_OUTBOX = OutboxEntry._meta.db_table
_CHUNK = InitialChunk._meta.db_table


@dataclasses.dataclass(slots=True)
class Added:
    """The link of a record Send has just added (one per record: not frozen,
    which costs twice as much to make)."""

    subject_id: uuid.UUID
    subscriber_id: int
    hub_hash: str
    send_hash: str
    send_stamp: str
    values: dict[str, str | None]
    subscriptions: dict[str, Any]


def claim_outbox(
    source_id: uuid.UUID, limit: int, now: dt.datetime, until: dt.datetime
) -> tuple[list[int], list[uuid.UUID]]:
    """Lease the first `limit` free ready rows, and the free rows of their subjects.

    Rows locked by another relay are skipped, not waited for. The lists go
    through `ARRAY(...)`, whose `= ANY` the planner serves from an index:
    with `IN (subquery)` it estimated a hash join and scanned the whole
    outbox for every batch. Return the ids of the rows leased, and their
    subjects in the order of the first row of each (empty lists when
    nothing was ready).
    """
    if fast_path(connection):
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH first AS ("  # noqa: S608 - the model's table
                f" SELECT id, subject_id FROM {_OUTBOX}"
                " WHERE source_id = %(source)s AND available_at <= %(now)s"
                " AND (claimed_until IS NULL OR claimed_until < %(now)s)"
                " ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
                "), same AS ("
                f" SELECT id FROM {_OUTBOX}"
                " WHERE source_id = %(source)s"
                " AND subject_id = ANY(ARRAY(SELECT subject_id FROM first))"
                " AND (claimed_until IS NULL OR claimed_until < %(now)s)"
                " FOR UPDATE SKIP LOCKED"
                f") UPDATE {_OUTBOX} SET claim = %(claim)s, claimed_until = %(until)s"
                " WHERE id = ANY(ARRAY(SELECT id FROM first UNION SELECT id FROM same))"
                " RETURNING id, subject_id",
                {
                    "source": source_id,
                    "now": now,
                    "until": until,
                    "limit": limit,
                    "claim": uuid.uuid4(),
                },
            )
            rows = sorted(cursor.fetchall())
        return [row_id for row_id, _ in rows], list(
            dict.fromkeys(subject for _, subject in rows)
        )
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    with transaction.atomic():
        first = list(
            OutboxEntry.objects.select_for_update(skip_locked=True)
            .filter(free, source_id=source_id, available_at__lte=now)
            .order_by("id")
            .values_list("id", "subject_id")[:limit]
        )
        if not first:
            return [], []
        subjects = list(dict.fromkeys(subject for _, subject in first))
        same = OutboxEntry.objects.select_for_update(skip_locked=True).filter(
            free, source_id=source_id, subject_id__in=subjects
        )
        ids = {row_id for row_id, _ in first} | set(same.values_list("id", flat=True))
        OutboxEntry.objects.filter(id__in=ids).update(
            claim=uuid.uuid4(), claimed_until=until
        )
    return sorted(ids), subjects


def claim_chunk(
    source_id: uuid.UUID, now: dt.datetime, until: dt.datetime
) -> InitialChunk | None:
    """Lease the first free initial chunk of a source, or return None.

    A chunk is a few batches, so a few rows serve a large node: the lease
    is a conditional UPDATE, and a relay that loses a race for one chunk
    tries the next.
    """
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    chunks = InitialChunk.objects.filter(free, source_id=source_id)
    for chunk_id in chunks.order_by("id").values_list("id", flat=True)[:8]:
        taken = chunks.filter(pk=chunk_id).update(
            claimed_until=until, attempts=F("attempts") + 1, keys=[]
        )
        if taken:
            return InitialChunk.objects.get(pk=chunk_id)
    return None


def mark_chunk(chunk_id: int, keys: Collection[str] | None, sending: int) -> None:
    """Record what a leased chunk is about to add: the match keys of the
    records (None: leave them), and their number as its `sending` count.

    Counted before the first call rather than before each one, the records
    of later calls count a moment early: the poll then notices a record of
    someone else's only once those calls are answered.
    """
    marks: dict[str, Any] = {"sending": sending}
    if keys is not None:
        marks["keys"] = sorted(keys)
    InitialChunk.objects.filter(pk=chunk_id).update(**marks)


def lower_sending(chunk_id: int, count: int) -> None:
    """Take `count` records off a chunk's `sending` count: their links are
    written, or Send refused them."""
    InitialChunk.objects.filter(pk=chunk_id).update(
        sending=Greatest(F("sending") - count, 0)
    )


def records_added(source_id: uuid.UUID) -> int:
    """Return how many records in Send the sync of a source may have added.

    Linked records, records whose add is marked on their link, and those
    the initial chunks count as sending: one statement, so one snapshot,
    in which a chunk's count falls as its links appear.
    """
    pk = Source._meta.pk
    assert pk is not None
    source = pk.get_db_prep_value(source_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {_LINK} WHERE source_id = %s"  # noqa: S608
            " AND (subscriber_id IS NOT NULL OR pending_add IS NOT NULL))"
            f" + (SELECT coalesce(sum(sending), 0) FROM {_CHUNK}"
            " WHERE source_id = %s)",
            [source, source],
        )
        (total,) = cursor.fetchone()
    return int(total)


def mark_adds(
    source_id: uuid.UUID,
    marker: uuid.UUID,
    batch: Sequence[tuple[uuid.UUID, dict[str, str | None]]],
    existing: Collection[uuid.UUID],
    now: dt.datetime,
    stale: dt.datetime,
) -> set[uuid.UUID]:
    """Mark the links of subjects about to be added; return those marked.

    `batch` pairs each subject with the values it is added with. Subjects
    with no link row get one carrying the marker. Of those in `existing`
    (a link row may exist), only unlinked ones with no marker, or a marker
    older than `stale`, are taken over: another relay's add may be running.
    """
    subjects = [subject for subject, _ in batch]
    taken = set(existing).intersection(subjects)
    fast = fast_path(connection)
    with transaction.atomic():
        if fast:
            marked = _insert_marked(source_id, marker, batch, now)
        else:
            Link.objects.bulk_create(
                [
                    Link(
                        source_id=source_id,
                        subject_id=subject_id,
                        synced_at=now,
                        pending_add=marker,
                        values=values,
                    )
                    for subject_id, values in batch
                ],
                ignore_conflicts=True,
            )
            marked = set()
        if taken:
            Link.objects.filter(
                Q(pending_add__isnull=True) | Q(synced_at__lt=stale),
                source_id=source_id,
                subject_id__any_of=taken,
                subscriber_id__isnull=True,
            ).update(pending_add=marker, synced_at=now)
        # On PostgreSQL the insert named the rows it made; the ORM's cannot.
        unknown = taken if fast else set(subjects)
        if unknown:
            marked.update(
                Link.objects.filter(
                    source_id=source_id, subject_id__any_of=unknown, pending_add=marker
                ).values_list("subject_id", flat=True)
            )
    return marked


def _copy_links(source_id: uuid.UUID, added: Sequence[Added], now: dt.datetime) -> None:
    columns = (
        "source_id, subject_id, subscriber_id, hub_hash, send_hash, send_stamp,"
        ' "values", subscriptions, pending_add, synced_at'
    )
    # The rows are written as COPY text in one piece: psycopg formatting
    # each row cost more than the copy itself.
    fixed = f"{source_id}\t"
    tail = f"\t\\N\t{now.isoformat()}\n"
    dumps = orjson.dumps
    backslash, doubled = "\\", "\\\\"
    # The hashes are hexadecimal, as is a uuid without its hyphens (quicker
    # to write, and read as well); JSON holds no tab, newline or carriage
    # return unescaped, but its escapes hold backslashes.
    lines = [
        f"{fixed}{item.subject_id.hex}\t{item.subscriber_id}\t"
        f"{item.hub_hash}\t{item.send_hash}\t{_copy_text(item.send_stamp)}\t"
        f"{dumps(item.values).decode().replace(backslash, doubled)}\t"
        f"{dumps(item.subscriptions).decode().replace(backslash, doubled)}{tail}"
        for item in added
    ]
    # Django's wrapper has no COPY: the psycopg cursor under it does, and
    # its errors are turned into Django's as any query's are.
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {_LINK} ({columns}) FROM STDIN") as copy,
    ):
        copy.write("".join(lines))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_text(text: str) -> str:
    """Return text as a field of COPY's text format."""
    if _COPY_SPECIAL.search(text) is None:
        return text
    return text.translate(_COPY_ESCAPES)


def _insert_marked(
    source_id: uuid.UUID,
    marker: uuid.UUID,
    batch: Sequence[tuple[uuid.UUID, dict[str, str | None]]],
    now: dt.datetime,
) -> set[uuid.UUID]:
    """Insert marked links for the subjects that have none; return those."""
    rows = [{"subject_id": subject, "values": values} for subject, values in batch]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_LINK} (source_id, subject_id, subscriber_id,"  # noqa: S608
            ' hub_hash, send_hash, send_stamp, "values", subscriptions,'
            " pending_add, synced_at)"
            " SELECT %s, r.subject_id, NULL, '', '', '', r.\"values\", '{}', %s, %s"
            " FROM jsonb_to_recordset(%s::jsonb)"
            ' AS r(subject_id uuid, "values" jsonb)'
            " ON CONFLICT (source_id, subject_id) DO NOTHING"
            " RETURNING subject_id",
            [source_id, marker, now, orjson.dumps(rows).decode()],
        )
        return {subject for (subject,) in cursor.fetchall()}


def save_adds(
    source_id: uuid.UUID,
    added: Sequence[Added],
    now: dt.datetime,
    *,
    new: bool = False,
    chunk_id: int | None = None,
) -> None:
    """Write the links of added records, clearing their markers.

    `new` says that the subjects most likely have no link row at all (a
    first lease of an initial chunk): on PostgreSQL the links are then
    copied in, at about half the cost of the upsert, which still writes
    them should a row turn out to exist. The records leave the `sending`
    count of the chunk `chunk_id` in the same transaction.
    """
    if not added:
        return

    def write(links: Callable[[uuid.UUID, Sequence[Added], dt.datetime], None]) -> None:
        # Lost to a database crash, these links come back: their adds were
        # marked (on the link or the chunk) by a commit that waited for the
        # disk, so the next attempt looks the records up.
        with transaction.atomic():
            relax_commit()
            links(source_id, added, now)
            if chunk_id is not None:
                lower_sending(chunk_id, len(added))

    if new and fast_path(connection):
        try:
            write(_copy_links)
            return
        except IntegrityError:
            pass
    write(_upsert_links)


def _upsert_links(
    source_id: uuid.UUID, added: Sequence[Added], now: dt.datetime
) -> None:
    if fast_path(connection):
        rows = [
            {
                "subject_id": item.subject_id,
                "subscriber_id": item.subscriber_id,
                "hub_hash": item.hub_hash,
                "send_hash": item.send_hash,
                "send_stamp": item.send_stamp,
                "values": item.values,
                "subscriptions": item.subscriptions,
            }
            for item in added
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_LINK} (source_id, subject_id,"  # noqa: S608
                ' subscriber_id, hub_hash, send_hash, send_stamp, "values",'
                " subscriptions, pending_add, synced_at)"
                " SELECT %s, r.subject_id, r.subscriber_id, r.hub_hash, r.send_hash,"
                ' r.send_stamp, r."values", r.subscriptions, NULL, %s'
                " FROM jsonb_to_recordset(%s::jsonb) AS r(subject_id uuid,"
                " subscriber_id bigint, hub_hash text, send_hash text,"
                ' send_stamp text, "values" jsonb, subscriptions jsonb)'
                " ON CONFLICT (source_id, subject_id) DO UPDATE SET"
                " subscriber_id = EXCLUDED.subscriber_id,"
                " hub_hash = EXCLUDED.hub_hash, send_hash = EXCLUDED.send_hash,"
                " send_stamp = EXCLUDED.send_stamp,"
                ' "values" = EXCLUDED."values",'
                " subscriptions = EXCLUDED.subscriptions,"
                " pending_add = NULL, synced_at = EXCLUDED.synced_at",
                [source_id, now, orjson.dumps(rows).decode()],
            )
        return
    Link.objects.bulk_create(
        [
            Link(
                source_id=source_id,
                pending_add=None,
                synced_at=now,
                **dataclasses.asdict(item),
            )
            for item in added
        ],
        update_conflicts=True,
        unique_fields=["source", "subject_id"],
        update_fields=LINK_FIELDS,
    )
