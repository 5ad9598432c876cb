"""The sync between one Send source's node and its userdb.

`Context` gathers what a pass needs (field map, subscription rows, the
direction of the data) and opens the gateway lazily. `push_subjects`
carries Hub subjects (customers, or profiles of an aggregate node) to
Send; `pull_records` carries Send records to the Hub. Both keep a `Link`
per pair, whose hashes turn a write of ours coming back into a no-op.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from hub import services as hub_services
from hub.documents import get_path
from hub.fields import EMAIL, hub_field_type
from hub.models import Customer, Node
from hub.selectors import (
    aggregate_profiles,
    customer_documents,
    customer_documents_after,
)
from sources.models import ActiveNode, FieldMapping, Source
from sources.selectors import source_credentials
from sources.send.gateway import (
    IDENTIFIER_FIELD,
    MODIFIED_FIELD,
    AttributeFilter,
    InvalidData,
    RateLimited,
    SendError,
    SendGateway,
    Subscriber,
    open_gateway,
)
from subscriptions.models import SubscriptionMapping

from . import batches
from .conversion import (
    ConversionError,
    hub_to_send,
    match_key,
    send_to_hub_patch,
    to_hub,
    values_hash,
)
from .models import InitialChunk, Link, OutboxEntry, SyncIssue, SyncState
from .slots import account_slot

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# Records per page when only identifiers and stamps are read: Send's
# largest page, since each record is a few bytes.
STUB_PAGE_SIZE = 1000
# Customers per initial chunk: a few batches, so that the bookkeeping of a
# chunk (its lease, its run, the context) is paid once for all of them.
CHUNK_SIZE = 4 * BATCH_SIZE
# Customers read per chunk at most: a chunk may have grown since it was made.
CHUNK_LIMIT = 2 * CHUNK_SIZE
NOT_FOUND_CODE = "SEND_SUBSCRIBER_NOT_FOUND"
_STATES = {True: "1", False: "-1", None: "0"}
T = TypeVar("T")


@dataclasses.dataclass
class Counts:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    conflicts: int = 0

    def as_fields(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Context:
    """One Send source as the sync sees it, with a lazily opened gateway."""

    source: Source
    node: Node
    reads: bool
    writes: bool
    userdb_id: int
    account: str
    mappings: list[FieldMapping]
    rows: list[SubscriptionMapping]
    # Every record in the userdb was added by this sync (see SyncState).
    only_ours: bool = False
    _gateway: SendGateway | None = None

    @property
    def gateway(self) -> SendGateway:
        if self._gateway is None:
            self._gateway = open_gateway(source_credentials(self.source))
        return self._gateway

    @property
    def matching(self) -> list[FieldMapping]:
        return [row for row in self.mappings if row.matching]

    @property
    def sections(self) -> set[str]:
        """Return the sections of a Hub document that a push reads."""
        wanted = {"id", "enabled"} | {
            row.hub_field.split(".")[0] for row in self.mappings
        }
        if self.rows:
            wanted.add("base")
        return wanted

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None


def load_context(source_id: uuid.UUID | str) -> Context | None:
    """Return the context of a Send source, or None if it is gone or unusable."""
    source = Source.objects.filter(pk=source_id).select_related("send").first()
    if source is None or not source.is_send:
        return None
    active = ActiveNode.objects.filter(source=source).select_related("node").first()
    if active is None:
        return None
    only_ours = SyncState.objects.filter(source=source, only_ours=True).exists()
    return Context(
        source=source,
        node=active.node,
        reads=active.reads,
        writes=active.writes and not active.node.is_aggregate,
        userdb_id=source.send.userdb_id,
        account=source.send.api_key_hash,
        only_ours=only_ours,
        mappings=list(source.field_map.all()),
        rows=list(
            source.subscription_rows.select_related("hub_system").exclude(
                registration_field=""
            )
        ),
    )


def call(
    ctx: Context,
    operation: Callable[..., T],
    *args: Any,
    repeatable: bool = True,
    **kwargs: Any,
) -> T:
    """Run one Send call, retrying passing failures with backoff and jitter.

    Each attempt holds one of the account's call slots, and only while it
    runs: the sync's reads and writes between calls, and its pauses before
    a retry, leave the slot to other relays and to the polls. Raises NoSlot
    when every slot stays busy.

    A call that is not `repeatable` (an add) is retried here only when Send
    refused it before doing anything (rate limit): after any other failure
    it may have been applied, and only a look-up can tell.
    """
    attempts = int(settings.SYNC_CALL_ATTEMPTS)
    for attempt in range(attempts):
        try:
            with account_slot(ctx.account):
                return operation(*args, **kwargs)
        except SendError as error:
            again = error.retryable and (repeatable or isinstance(error, RateLimited))
            if not again or attempt == attempts - 1:
                raise
            pause = settings.SYNC_CALL_BACKOFF_SECONDS * 2**attempt
            logger.info(
                "Send call failed, retrying. code=%s attempt=%s", error.code, attempt
            )
            time.sleep(pause * (0.5 + random.random()))
    raise AssertionError("unreachable")


# Subjects.


def subject_documents(
    ctx: Context, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Return the current documents of the given subjects (absent when gone)."""
    wanted = set(ids)
    if not ctx.node.is_aggregate:
        return customer_documents(ctx.node.id, wanted, ctx.sections)
    # TODO: an aggregate is merged whole for each batch; index profiles by
    # key when aggregates over large nodes get a Send source.
    return {
        uuid.UUID(profile["id"]): profile
        for profile in aggregate_profiles(ctx.node)
        if uuid.UUID(profile["id"]) in wanted
    }


def subscription_state(document: dict[str, Any], system_id: str) -> str | None:
    """Return the Send registration value of a Hub entry, None when absent."""
    for entry in (document.get("base") or {}).get("subscriptions") or []:
        if entry.get("id") == system_id:
            return _STATES.get(entry.get("subscribed"))
    return None


def _entry(document: dict[str, Any], system_id: str) -> dict[str, Any] | None:
    entries = (document.get("base") or {}).get("subscriptions") or []
    return next((e for e in entries if e.get("id") == system_id), None)


def record_issue(
    ctx: Context,
    kind: str,
    code: str,
    reason: str,
    *,
    subject_id: uuid.UUID | None = None,
    subscriber_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Record a per-record error or event in the sync history."""
    SyncIssue.objects.create(
        source=ctx.source,
        kind=kind,
        code=code,
        reason=reason[:2000],
        subject_id=subject_id,
        subscriber_id=subscriber_id,
        payload=payload or {},
    )
    logger.info(
        "Sync issue recorded. source=%s kind=%s code=%s subject=%s subscriber=%s",
        ctx.source.id,
        kind,
        code,
        subject_id,
        subscriber_id,
    )


# Hub to Send.


def push_subjects(
    ctx: Context, ids: Sequence[uuid.UUID], counts: Counts
) -> set[uuid.UUID]:
    """Bring Send in line with the current state of the given Hub subjects.

    Return the subjects left to the initial sync: unlinked ones that an
    initial chunk not pushed yet covers. The chunk reads them when it runs,
    so their outbox rows must wait for it: pushed now, they would be added
    twice, or removed before the chunk adds them again.
    """
    documents = subject_documents(ctx, ids)
    links = {
        link.subject_id: link
        for link in Link.objects.filter(source=ctx.source, subject_id__any_of=ids)
    }
    unlinked = [s for s in ids if _unlinked(links.get(s))]
    owed = _owed_by_chunks(ctx, unlinked) if unlinked else set()
    _push(ctx, [s for s in ids if s not in owed], documents, links, counts)
    return owed


def push_chunk(ctx: Context, chunk: InitialChunk, counts: Counts) -> uuid.UUID | None:
    """Push the customers of an initial chunk, up to CHUNK_LIMIT of them.

    Return the last id pushed when the limit was reached (the chunk may
    hold more), else None.
    """
    documents = customer_documents_after(
        ctx.node.id, chunk.after_id, chunk.upto_id, CHUNK_LIMIT, ctx.sections
    )
    ids = list(documents)
    if not ids:
        return None
    links = Link.objects.filter(source=ctx.source, subject_id__lte=ids[-1])
    if chunk.after_id is not None:
        links = links.filter(subject_id__gt=chunk.after_id)
    by_subject = {link.subject_id: link for link in links}
    _push(ctx, ids, documents, by_subject, counts, chunk=chunk)
    return ids[-1] if len(ids) == CHUNK_LIMIT else None


def _unlinked(link: Link | None) -> bool:
    return link is None or link.subscriber_id is None


def _owed_by_chunks(ctx: Context, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Return the subjects that an initial chunk not pushed yet covers."""
    ranges = InitialChunk.objects.filter(source=ctx.source).values_list(
        "after_id", "upto_id"
    )
    return {
        subject_id
        for after, upto in ranges
        for subject_id in ids
        if (after is None or subject_id > after)
        and (upto is None or subject_id <= upto)
    }


def _push(
    ctx: Context,
    ids: Sequence[uuid.UUID],
    documents: dict[uuid.UUID, dict[str, Any]],
    links: dict[uuid.UUID, Link],
    counts: Counts,
    chunk: InitialChunk | None = None,
) -> None:
    """Push subjects, given their documents (absent: gone) and links.

    1. Gone or disabled subjects have their Send record removed.
    2. Linked subjects are updated with the fields that changed, then their
       subscriptions are pushed.
    3. The others are matched by the matching fields and linked, or added
       in batches; several matches are reported, not written.
    The links written meanwhile are saved together at the end, even when a
    retryable SendError escapes so that the caller can back off and retry.
    """
    fresh: list[tuple[uuid.UUID, dict[str, Any]]] = []
    dirty: list[Link] = []
    try:
        for subject_id in ids:
            document = documents.get(subject_id)
            link = links.get(subject_id)
            try:
                if document is None or not document.get("enabled", True):
                    _remove(ctx, subject_id, link, counts)
                elif link is None or link.subscriber_id is None:
                    fresh.append((subject_id, document))
                elif not _update(ctx, link, document, counts, dirty):
                    # The record was deleted in Send: a Hub change sends it
                    # anew.
                    fresh.append((subject_id, document))
            except ConversionError as error:
                _failed(ctx, counts, error.code, str(error), subject_id, document)
            except SendError as error:
                if error.retryable:
                    raise
                _failed(ctx, counts, error.code, str(error), subject_id, document)
        if fresh:
            _add_or_match(ctx, fresh, counts, dirty, set(links), chunk)
    finally:
        _save_links(dirty)


def _save_links(links: list[Link]) -> None:
    """Write the links a push changed, in one query."""
    if links:
        Link.objects.bulk_update(links, batches.LINK_FIELDS)


def _failed(
    ctx: Context,
    counts: Counts,
    code: str,
    reason: str,
    subject_id: uuid.UUID,
    document: dict[str, Any] | None,
) -> None:
    counts.failed += 1
    payload: dict[str, Any] = {"subject": str(subject_id)}
    if document is not None and ctx.reads:
        try:
            payload["values"] = hub_to_send(document, ctx.mappings)
        except ConversionError:
            payload["document"] = {
                row.hub_field: get_path(document, row.hub_field) for row in ctx.mappings
            }
    record_issue(
        ctx, SyncIssue.Kind.ERROR, code, reason, subject_id=subject_id, payload=payload
    )


def _remove(
    ctx: Context, subject_id: uuid.UUID, link: Link | None, counts: Counts
) -> None:
    if link is None:
        counts.unchanged += 1
        return
    if ctx.reads and link.subscriber_id is not None:
        try:
            call(ctx, ctx.gateway.remove_subscriber, ctx.userdb_id, link.subscriber_id)
        except InvalidData as error:
            if error.code != NOT_FOUND_CODE:
                raise
        counts.removed += 1
    link.delete()


def _update(
    ctx: Context,
    link: Link,
    document: dict[str, Any],
    counts: Counts,
    dirty: list[Link],
) -> bool:
    """Push a linked subject; return False when its Send record is gone.

    The link is added to `dirty` for the caller to save.
    """
    assert link.subscriber_id is not None
    wrote = False
    if ctx.reads:
        values = hub_to_send(document, ctx.mappings)
        digest = values_hash(values)
        changed = {k: v for k, v in values.items() if link.values.get(k) != v}
        if digest != link.hub_hash and changed:
            try:
                record = call(
                    ctx,
                    ctx.gateway.update_subscriber,
                    ctx.userdb_id,
                    link.subscriber_id,
                    changed,
                )
            except InvalidData as error:
                if error.code != NOT_FOUND_CODE:
                    raise
                unlink_deleted_in_send(ctx, link)
                return False
            link.values = _mapped(ctx, record.attributes)
            link.send_hash = values_hash(link.values)
            link.send_stamp = _stamp(record)
            wrote = True
        link.hub_hash = digest
    wrote = _push_subscriptions(ctx, link, document) or wrote
    link.synced_at = timezone.now()
    dirty.append(link)
    if wrote:
        counts.updated += 1
    else:
        counts.unchanged += 1
    return True


def _push_subscriptions(ctx: Context, link: Link, document: dict[str, Any]) -> bool:
    """Call modifySubscriberSubscriptionStatus for each entry that changed.

    Before pushing, the Send record is read: a registration change made in
    Send after the Hub entry's change wins (the poll brings it in), so an
    older Hub subscribe never undoes a newer unsubscribe in Send.
    """
    assert link.subscriber_id is not None
    record: Subscriber | None = None
    wrote = False
    for row in ctx.rows:
        system_id = row.hub_system.system_id
        wanted = subscription_state(document, system_id)
        known = link.subscriptions.get(system_id)
        if wanted is None or wanted == "0" or wanted == known:
            continue
        if record is None:
            record = call(
                ctx, ctx.gateway.get_subscriber, ctx.userdb_id, link.subscriber_id
            )
            if record is None:
                return wrote
        held = record.attributes.get(row.registration_field)
        entry = _entry(document, system_id) or {}
        if held != known and _newer(record, entry.get("updatedAt")):
            continue
        if held != wanted:
            call(
                ctx,
                ctx.gateway.modify_subscription_status,
                row.webform_code,
                link.subscriber_id,
                wanted == "1",
            )
            wrote = True
        link.subscriptions = {**link.subscriptions, system_id: wanted}
    return wrote


def _newer(record: Subscriber, hub_moment: str | None) -> bool:
    """Tell whether the Send record changed after the given Hub moment."""
    send_moment = send_time(record)
    if send_moment is None or not hub_moment:
        return False
    return send_moment > _parse_iso(hub_moment)


def unlink_deleted_in_send(ctx: Context, link: Link) -> None:
    """Record that Send lost the record, and forget the link; the Hub keeps it."""
    record_issue(
        ctx,
        SyncIssue.Kind.DELETED_IN_SEND,
        "SYNC_DELETED_IN_SEND",
        "The Send record was deleted in Send; the Hub customer is kept.",
        subject_id=link.subject_id,
        subscriber_id=link.subscriber_id,
    )
    link.delete()


def _add_or_match(
    ctx: Context,
    fresh: list[tuple[uuid.UUID, dict[str, Any]]],
    counts: Counts,
    dirty: list[Link],
    tried: set[uuid.UUID],
    chunk: InitialChunk | None = None,
) -> None:
    """Link subjects with no Send record to their match, or add them.

    While the userdb holds only records this sync added, a subject with no
    link at all was never sent (every add marks its link first, or its
    initial chunk), so it cannot be in Send and is added without a
    look-up. Subjects in `tried` have a link row (a marker left by an add
    whose answer may have been lost), and the subjects of a chunk leased
    before: they are always looked up, so a retry duplicates nothing.
    """
    if not ctx.reads:
        counts.unchanged += len(fresh)
        return
    if chunk is not None and chunk.attempts > 1:
        tried = tried | {subject_id for subject_id, _ in fresh}
    # A first lease of a chunk marks its adds in the chunk's row, at once.
    chunk_marks = chunk is not None and chunk.attempts == 1
    prepared: list[tuple[uuid.UUID, dict[str, Any], dict[str, str | None]]] = []
    to_add = []
    for subject_id, document in fresh:
        try:
            values = hub_to_send(document, ctx.mappings)
        except ConversionError as error:
            _failed(ctx, counts, error.code, str(error), subject_id, document)
            continue
        if ctx.only_ours and subject_id not in tried:
            to_add.append((subject_id, document, values))
        else:
            prepared.append((subject_id, document, values))
    matches = find_send_matches(ctx, [values for _, _, values in prepared])
    for (subject_id, document, values), found in zip(prepared, matches, strict=True):
        if len(found) > 1:
            _ambiguous(ctx, counts, subject_id, values, found)
        elif found:
            _adopt(ctx, subject_id, document, values, found[0], counts, dirty)
        else:
            to_add.append((subject_id, document, values))
    if chunk is not None:
        # What lost answers of earlier leases added is now found and
        # linked: the chunk is sending what it adds next, and only that.
        keys = _keys(ctx, [values for _, _, values in to_add]) if chunk_marks else None
        batches.mark_chunk(chunk.id, keys, len(to_add))
    for start in range(0, len(to_add), BATCH_SIZE):
        batch = to_add[start : start + BATCH_SIZE]
        _add_batch(ctx, batch, counts, tried, chunk)


def _keys(ctx: Context, candidates: list[dict[str, str | None]]) -> set[str]:
    """Return the match keys (first matching field) of records to add."""
    if not ctx.matching:
        return set()
    first = ctx.matching[0]
    keys = {
        match_key(values.get(first.send_field), first.hub_field)
        for values in candidates
    }
    keys.discard("")
    return keys


def _ambiguous(
    ctx: Context,
    counts: Counts,
    subject_id: uuid.UUID,
    values: dict[str, str | None],
    found: list[Subscriber],
) -> None:
    counts.conflicts += 1
    record_issue(
        ctx,
        SyncIssue.Kind.ATTENTION,
        "SYNC_SEVERAL_MATCHES",
        f"{len(found)} Send records match the customer; nothing was written.",
        subject_id=subject_id,
        payload={
            "hub": values,
            "send": [
                {"identifier": r.identifier, **_mapped(ctx, r.attributes)}
                for r in found
            ],
        },
    )


def _adopt(
    ctx: Context,
    subject_id: uuid.UUID,
    document: dict[str, Any],
    values: dict[str, str | None],
    record: Subscriber,
    counts: Counts,
    dirty: list[Link],
) -> None:
    held = Link.objects.filter(source=ctx.source, subscriber_id=record.identifier)
    if held.exclude(subject_id=subject_id).exists():
        _ambiguous(ctx, counts, subject_id, values, [record])
        return
    link, _ = Link.objects.get_or_create(source=ctx.source, subject_id=subject_id)
    link.subscriber_id = record.identifier
    link.pending_add = None
    link.values = _mapped(ctx, record.attributes)
    link.send_hash = values_hash(link.values)
    link.send_stamp = _stamp(record)
    link.subscriptions = _registrations(ctx, record.attributes)
    link.hub_hash = ""
    _update(ctx, link, document, counts, dirty)
    # Saved now, so that another subject of the batch matching the same
    # record sees it taken.
    _save_links(dirty)
    dirty.clear()


def _add_batch(
    ctx: Context,
    batch: list[tuple[uuid.UUID, dict[str, Any], dict[str, str | None]]],
    counts: Counts,
    tried: set[uuid.UUID],
    chunk: InitialChunk | None = None,
) -> None:
    """Add records in one call, marking them first so a retry looks them up.

    `tried` holds the subjects that had a link row when the push began.
    The first lease of the initial chunk holding them (`chunk`) is their
    mark; any lease counts them as sending until their links are written.
    """
    marker = None
    chunk_marks = chunk is not None and chunk.attempts == 1
    if not chunk_marks:
        marker = uuid.uuid4()
        now = timezone.now()
        # Another relay's marker stands while its claim may still be
        # running; after that its add either reached Send (the look-up
        # found it) or not.
        stale = now - dt.timedelta(seconds=settings.SYNC_CLAIM_SECONDS)
        mine = batches.mark_adds(
            ctx.source.id,
            marker,
            [(subject_id, values) for subject_id, _, values in batch],
            tried,
            now,
            stale,
        )
        batch = [item for item in batch if item[0] in mine]
        if not batch:
            return
    records = [_with_registrations(ctx, doc, values) for _, doc, values in batch]
    try:
        added = call(
            ctx, ctx.gateway.add_subscribers, ctx.userdb_id, records, repeatable=False
        )
    except SendError as error:
        # This add is over: free the subjects for the next attempt, which
        # looks them up first since their links exist (or their chunk was
        # leased before).
        if marker is not None:
            Link.objects.filter(source=ctx.source, pending_add=marker).update(
                pending_add=None
            )
        if not isinstance(error, InvalidData):
            raise
        if len(batch) == 1:
            if chunk is not None:
                # Refused, so not in Send, and not sent again.
                batches.lower_sending(chunk.id, 1)
            raise
        # The batch is all or none: add one by one to find the bad records.
        for item in batch:
            try:
                _add_batch(ctx, [item], counts, tried | {item[0]}, chunk)
            except InvalidData as bad:
                _failed(ctx, counts, bad.code, str(bad), item[0], item[1])
        return
    saved = []
    for (subject_id, _, values), record in zip(batch, added, strict=True):
        mapped = _mapped(ctx, record.attributes)
        sent = values_hash(values)
        saved.append(
            batches.Added(
                subject_id=subject_id,
                subscriber_id=record.identifier,
                hub_hash=sent,
                # Send most often holds what it was sent, in the same form.
                send_hash=sent if mapped == values else values_hash(mapped),
                send_stamp=_stamp(record),
                values=mapped,
                subscriptions=_registrations(ctx, record.attributes),
            )
        )
    batches.save_adds(
        ctx.source.id,
        saved,
        timezone.now(),
        new=chunk_marks,
        chunk_id=chunk.id if chunk is not None else None,
    )
    counts.added += len(saved)


def _with_registrations(
    ctx: Context, document: dict[str, Any], values: dict[str, str | None]
) -> dict[str, str | None]:
    """Add the initial registration state of a new record's subscriptions."""
    record = dict(values)
    for row in ctx.rows:
        state = subscription_state(document, row.hub_system.system_id)
        if state is not None:
            record[row.registration_field] = state
    return record


def find_send_matches(
    ctx: Context, candidates: list[dict[str, str | None]]
) -> list[list[Subscriber]]:
    """Return, per candidate, the Send records whose matching fields agree.

    Look-ups go by the first matching field, many values per call (IN),
    and every matching field is then compared, emails trimmed and without
    regard to case. A candidate with an empty matching value matches
    nothing.
    """
    matching = ctx.matching
    results: list[list[Subscriber]] = [[] for _ in candidates]
    if not matching or not candidates:
        return results
    first = matching[0]
    wanted: dict[str, list[int]] = {}
    for index, values in enumerate(candidates):
        if all(values.get(row.send_field) for row in matching):
            key = match_key(values[first.send_field], first.hub_field)
            wanted.setdefault(key, []).append(index)
    found = _lookup(ctx, first, [candidates[i[0]] for i in wanted.values()])
    if hub_field_type(first.hub_field) == EMAIL:
        seen = {
            match_key(r.attributes.get(first.send_field), first.hub_field)
            for r in found
        }
        missed = [key for key in wanted if key not in seen]
        found += _lookup_case_blind(ctx, first, missed)
    for record in found:
        key = match_key(record.attributes.get(first.send_field), first.hub_field)
        for index in wanted.get(key, []):
            if _agree(matching, candidates[index], record.attributes):
                results[index].append(record)
    return results


def _lookup(
    ctx: Context, field: FieldMapping, candidates: list[dict[str, str | None]]
) -> list[Subscriber]:
    texts: set[str] = set()
    for values in candidates:
        text = (values[field.send_field] or "").strip()
        texts.add(text)
        if hub_field_type(field.hub_field) == EMAIL:
            texts.add(text.casefold())
    plain = sorted(t for t in texts if "," not in t)
    found: dict[int, Subscriber] = {}
    for start in range(0, len(plain), 200):
        chunk = ",".join(plain[start : start + 200])
        where = [AttributeFilter(field.send_field, chunk, "IN")]
        for record in _all_pages(ctx, where):
            found[record.identifier] = record
    for text in sorted(texts - set(plain)):
        for record in call(
            ctx, ctx.gateway.find_subscribers, ctx.userdb_id, field.send_field, text
        ):
            found[record.identifier] = record
    return list(found.values())


def _lookup_case_blind(
    ctx: Context, field: FieldMapping, keys: list[str]
) -> list[Subscriber]:
    """Find emails that `IN` missed because Send holds them in other case.

    `IN` compares as written; LIKE compares without regard to case, and
    `%` around the value finds it with spaces around. Wildcards (`_` is
    common in emails) only widen the answer, which the caller compares
    again. One call per value, so only for the misses.
    """
    found: dict[int, Subscriber] = {}
    for key in keys:
        where = [AttributeFilter(field.send_field, f"%{key}%", "LIKE")]
        found |= {record.identifier: record for record in _all_pages(ctx, where)}
    return list(found.values())


def _all_pages(ctx: Context, where: list[AttributeFilter]) -> list[Subscriber]:
    records: list[Subscriber] = []
    page = 1
    while True:
        batch = call(
            ctx,
            ctx.gateway.find_subscribers_by,
            ctx.userdb_id,
            where,
            page=page,
            page_size=BATCH_SIZE,
        )
        records.extend(batch)
        if len(batch) < BATCH_SIZE:
            return records
        page += 1


def _agree(
    matching: list[FieldMapping],
    values: dict[str, str | None],
    attributes: dict[str, str | None],
) -> bool:
    return all(
        match_key(values.get(row.send_field), row.hub_field)
        == match_key(attributes.get(row.send_field), row.hub_field)
        for row in matching
    )


def _mapped(ctx: Context, attributes: dict[str, str | None]) -> dict[str, str | None]:
    return {row.send_field: attributes.get(row.send_field) for row in ctx.mappings}


def _registrations(ctx: Context, attributes: dict[str, str | None]) -> dict[str, Any]:
    return {
        row.hub_system.system_id: attributes.get(row.registration_field)
        for row in ctx.rows
    }


# Send to Hub.


def _stamp(record: Subscriber) -> str:
    return record.attributes.get(MODIFIED_FIELD) or ""


def send_time(record: Subscriber) -> dt.datetime | None:
    """Return the record's lastModified moment, if Send gave one."""
    text = record.attributes.get(MODIFIED_FIELD)
    return _parse_iso(text) if text else None


def _parse_iso(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def pull_moved(ctx: Context, stubs: Sequence[Subscriber], counts: Counts) -> None:
    """Apply the records among `stubs` that changed since the sync last saw them.

    `stubs` carry the identifier and lastModified alone. Send moves the
    stamp on every write, so a record whose stamp is its link's is as the
    link knows it, and counts as unchanged unread: most records a poll
    meets are the sync's own writes. The others are read whole, by
    identifier, and pulled.
    """
    if not stubs:
        return
    seen = _link_stamps(ctx, [s.identifier for s in stubs])
    moved = [s.identifier for s in stubs if seen.get(s.identifier) != _stamp(s)]
    counts.unchanged += len(stubs) - len(moved)
    for start in range(0, len(moved), BATCH_SIZE):
        listed = ",".join(str(i) for i in moved[start : start + BATCH_SIZE])
        records = call(
            ctx,
            ctx.gateway.find_subscribers_by,
            ctx.userdb_id,
            [AttributeFilter(IDENTIFIER_FIELD, listed, "IN")],
            page=1,
            page_size=BATCH_SIZE,
        )
        pull_records(ctx, records, counts)


def _link_stamps(ctx: Context, identifiers: list[int]) -> dict[int, str]:
    """Return the stamps the links of these Send identifiers hold."""
    low, high = min(identifiers), max(identifiers)
    links = Link.objects.filter(source=ctx.source)
    if high - low < 2 * len(identifiers):
        # A poll's page is mostly a run of consecutive identifiers (adds):
        # one range of the index serves it at a fraction of a probe each.
        links = links.filter(subscriber_id__gte=low, subscriber_id__lte=high)
    else:
        links = links.filter(subscriber_id__any_of=identifiers)
    wanted = set(identifiers)
    rows = links.values_list("subscriber_id", "send_stamp")
    return {identifier: stamp for identifier, stamp in rows if identifier in wanted}


def pull_records(ctx: Context, records: Iterable[Subscriber], counts: Counts) -> None:
    """Apply Send records to the Hub, each on its own (errors are per record).

    The links of the whole page are read in one query: most polled records
    are unchanged (often our own writes), and a query per record made the
    poll cost as much as the write it reads back.
    """
    records = list(records)
    # Most records equal their link: tell them from its hashes alone, and
    # build link objects only for the others.
    known = {
        identifier: (send_hash, subscriptions)
        for identifier, send_hash, subscriptions in Link.objects.filter(
            source=ctx.source, subscriber_id__any_of=[r.identifier for r in records]
        ).values_list("subscriber_id", "send_hash", "subscriptions")
    }
    changed = []
    for record in records:
        seen = known.get(record.identifier)
        if seen and not ctx.node.is_aggregate and _as_linked(ctx, record, *seen):
            counts.unchanged += 1
        else:
            changed.append(record)
    records = changed
    linked = [r.identifier for r in records if r.identifier in known]
    links = (
        {
            link.subscriber_id: link
            for link in Link.objects.filter(
                source=ctx.source, subscriber_id__any_of=linked
            )
        }
        if linked
        else {}
    )
    unlinked = [r for r in records if r.identifier not in links]
    in_flight = _adds_in_flight(ctx) if unlinked else set()
    for record in records:
        if record.identifier not in links and _key(ctx, record) in in_flight:
            # Our own add, read back before its link was written: the relay
            # writes the link from the same answer.
            counts.unchanged += 1
            continue
        try:
            pull_record(ctx, record, counts, links.get(record.identifier))
        except (ConversionError, InvalidData) as error:
            counts.failed += 1
            record_issue(
                ctx,
                SyncIssue.Kind.ERROR,
                getattr(error, "code", "SYNC_ERROR"),
                str(error),
                subscriber_id=record.identifier,
                payload={"send": _mapped(ctx, record.attributes)},
            )
        except ValidationError as error:
            counts.failed += 1
            record_issue(
                ctx,
                SyncIssue.Kind.ERROR,
                "SYNC_HUB_REFUSED",
                "; ".join(error.messages),
                subscriber_id=record.identifier,
                payload={"send": _mapped(ctx, record.attributes)},
            )


def _adds_in_flight(ctx: Context) -> set[str]:
    """Return the match keys of the records our relays are adding now.

    A poll reads new records a moment before their links are written;
    matching each against the Hub costs a scan of the node's customers.
    """
    if not ctx.matching:
        return set()
    pending = Link.objects.filter(
        source=ctx.source, pending_add__isnull=False, subscriber_id__isnull=True
    ).values_list("values", flat=True)
    keys = _keys(ctx, list(pending))
    leased = InitialChunk.objects.filter(
        source=ctx.source, claimed_until__gt=timezone.now()
    )
    for chunk_keys in leased.values_list("keys", flat=True):
        keys.update(chunk_keys)
    return keys


def _key(ctx: Context, record: Subscriber) -> str | None:
    if not ctx.matching:
        return None
    first = ctx.matching[0]
    return match_key(record.attributes.get(first.send_field), first.hub_field)


def pull_record(
    ctx: Context, record: Subscriber, counts: Counts, link: Link | None
) -> None:
    """Apply one Send record to the Hub (fields need W; subscriptions always).

    `link` is the record's link as read with its page, None when unlinked.
    """
    if ctx.node.is_aggregate:
        return
    values = _mapped(ctx, record.attributes)
    registrations = _registrations(ctx, record.attributes)
    if link is None:
        _pull_unlinked(ctx, record, values, registrations, counts)
        return
    if _unchanged(values, registrations, link.send_hash, link.subscriptions):
        counts.unchanged += 1
        return
    customer = Customer.objects.filter(pk=link.subject_id, node=ctx.node).first()
    if customer is None:
        counts.unchanged += 1
        return
    _pull_into(ctx, link, customer, record, values, registrations, counts)


def _as_linked(
    ctx: Context, record: Subscriber, send_hash: str, subscriptions: dict[str, Any]
) -> bool:
    """Tell whether a Send record holds what its link last saw of it."""
    values = _mapped(ctx, record.attributes)
    registrations = _registrations(ctx, record.attributes)
    return _unchanged(values, registrations, send_hash, subscriptions)


def _unchanged(
    values: dict[str, str | None],
    registrations: dict[str, Any],
    send_hash: str,
    subscriptions: dict[str, Any],
) -> bool:
    return values_hash(values) == send_hash and registrations == {
        key: subscriptions.get(key) for key in registrations
    }


def _pull_unlinked(
    ctx: Context,
    record: Subscriber,
    values: dict[str, str | None],
    registrations: dict[str, Any],
    counts: Counts,
) -> None:
    matches = hub_matches(ctx, values)
    if ctx.only_ours and not _added_by_us(ctx, record, matches):
        _other_record_seen(ctx, record)
    if len(matches) > 1:
        counts.conflicts += 1
        record_issue(
            ctx,
            SyncIssue.Kind.ATTENTION,
            "SYNC_SEVERAL_MATCHES",
            f"{len(matches)} Hub customers match the Send record; nothing was written.",
            subscriber_id=record.identifier,
            payload={
                "send": values,
                "hub": [str(customer.id) for customer in matches],
            },
        )
        return
    if matches:
        customer = matches[0]
        link, _ = Link.objects.get_or_create(source=ctx.source, subject_id=customer.id)
        if link.subscriber_id not in (None, record.identifier):
            counts.conflicts += 1
            record_issue(
                ctx,
                SyncIssue.Kind.ATTENTION,
                "SYNC_SEVERAL_MATCHES",
                "The Hub customer is already linked to another Send record.",
                subject_id=customer.id,
                subscriber_id=record.identifier,
                payload={"send": values, "linked": link.subscriber_id},
            )
            return
        link.subscriber_id = record.identifier
        link.pending_add = None
        _pull_into(ctx, link, customer, record, values, registrations, counts)
        return
    if not ctx.writes:
        counts.unchanged += 1
        return
    _pull_create(ctx, record, values, registrations, counts)


def _added_by_us(ctx: Context, record: Subscriber, matches: list[Customer]) -> bool:
    """Tell whether an unlinked record is one of our adds still in flight.

    An add marks the link before the call and fills it after the answer,
    so a poll can read the new record in between.
    """
    if len(matches) != 1:
        return False
    return (
        Link.objects.filter(source=ctx.source, subject_id=matches[0].id)
        .filter(Q(pending_add__isnull=False) | Q(subscriber_id=record.identifier))
        .exists()
    )


def _other_record_seen(ctx: Context, record: Subscriber) -> None:
    """Stop adding without a look-up: Send holds a record we did not add."""
    _stop_only_ours(ctx)
    logger.info(
        "Send record not added by the sync seen; adds look Send up again."
        " source=%s subscriber=%s",
        ctx.source.id,
        record.identifier,
    )


def other_records_counted(ctx: Context, extra: int) -> None:
    """Stop adding without a look-up: Send counts records we did not add."""
    _stop_only_ours(ctx)
    logger.info(
        "Send holds more records than the sync added; adds look Send up again."
        " source=%s extra=%s",
        ctx.source.id,
        extra,
    )


def _stop_only_ours(ctx: Context) -> None:
    ctx.only_ours = False
    SyncState.objects.filter(source=ctx.source, only_ours=True).update(only_ours=False)


def _pull_create(
    ctx: Context,
    record: Subscriber,
    values: dict[str, str | None],
    registrations: dict[str, Any],
    counts: Counts,
) -> None:
    data = send_to_hub_patch(values, ctx.mappings)
    header = {
        "externalId": data.pop("externalId", None),
        "enabled": data.pop("enabled", True),
    }
    subscriptions = [
        _new_entry(system_id, state, record)
        for system_id, state in registrations.items()
        if state in ("1", "-1", "0")
    ]
    if subscriptions:
        data.setdefault("base", {})["subscriptions"] = subscriptions
    customer = hub_services.customer_create(
        node=ctx.node,
        data={**data, **{k: v for k, v in header.items() if v is not None}},
        source_id=ctx.source.id,
    )
    Link.objects.create(
        source=ctx.source,
        subject_id=customer.id,
        subscriber_id=record.identifier,
        values=values,
        send_hash=values_hash(values),
        send_stamp=_stamp(record),
        hub_hash=_hub_hash(ctx, customer.as_document()),
        subscriptions=registrations,
    )
    counts.added += 1


def _new_entry(system_id: str, state: str, record: Subscriber) -> dict[str, Any]:
    moment = record.attributes.get(MODIFIED_FIELD)
    entry: dict[str, Any] = {"id": system_id, "updatedAt": moment}
    if state == "1":
        entry |= {"subscribed": True, "startDate": moment, "endDate": None}
    elif state == "-1":
        entry |= {"subscribed": False, "endDate": moment}
    else:
        entry |= {"subscribed": None, "startDate": None, "endDate": None}
    return entry


def _hub_hash(ctx: Context, document: dict[str, Any]) -> str:
    try:
        return values_hash(hub_to_send(document, ctx.mappings))
    except ConversionError:
        return ""


def _pull_into(
    ctx: Context,
    link: Link,
    customer: Customer,
    record: Subscriber,
    values: dict[str, str | None],
    registrations: dict[str, Any],
    counts: Counts,
) -> None:
    """Apply what changed in Send since the link's last sync to one customer.

    When the Hub changed the same field since then too, the later change
    wins and a conflict is recorded; a Hub winner is pushed again.
    """
    document = customer.as_document()
    moment = send_time(record) or timezone.now()
    hub_wins: list[str] = []
    patch: dict[str, Any] = {}
    if ctx.writes:
        changed = [
            r
            for r in ctx.mappings
            if values[r.send_field] != link.values.get(r.send_field)
        ]
        hub_now = hub_to_send(document, ctx.mappings) if ctx.reads else {}
        both = [
            r.hub_field
            for r in changed
            if r.send_field in hub_now
            and hub_now[r.send_field] != link.values.get(r.send_field)
            and hub_now[r.send_field] != values[r.send_field]
            and link.hub_hash
            and link.values
        ]
        if both and customer.updated_at > moment:
            hub_wins += both
        if both:
            _conflict(ctx, link, record, both, hub_wins, counts)
        applied = [r for r in changed if r.hub_field not in hub_wins]
        patch = send_to_hub_patch(
            {r.send_field: values[r.send_field] for r in applied}, applied
        )
    entries, changed_subscriptions, held = _pulled_subscriptions(
        ctx, link, document, record, registrations, counts
    )
    if changed_subscriptions:
        patch.setdefault("base", {})["subscriptions"] = entries
    hub_wins += held
    if patch:
        customer = hub_services.customer_patch(
            customer=customer, patch=patch, source_id=ctx.source.id
        )
        counts.updated += 1
    else:
        counts.unchanged += 1
    link.values = values
    link.send_hash = values_hash(values)
    link.send_stamp = _stamp(record)
    link.subscriptions = {**link.subscriptions, **registrations}
    if not hub_wins:
        link.hub_hash = _hub_hash(ctx, customer.as_document())
        # A Hub value that did not change stays what Send holds, so it is
        # not pushed back.
    link.synced_at = timezone.now()
    link.save()
    if hub_wins:
        OutboxEntry.objects.create(
            source=ctx.source, subject_id=link.subject_id, action="changed"
        )


def _pulled_subscriptions(
    ctx: Context,
    link: Link,
    document: dict[str, Any],
    record: Subscriber,
    registrations: dict[str, Any],
    counts: Counts,
) -> tuple[list[dict[str, Any]], bool, list[str]]:
    """Return the Hub entries after Send's registration changes are applied.

    When both sides changed an entry since the last sync, the later change
    wins (a conflict), so an older subscribe never undoes a newer
    unsubscribe; an entry only the Hub changed is left for the push.
    """
    entries = [dict(e) for e in (document["base"].get("subscriptions") or [])]
    moment = send_time(record) or timezone.now()
    stamp = record.attributes.get(MODIFIED_FIELD)
    changed, held = False, []
    for system_id, state in registrations.items():
        known = link.subscriptions.get(system_id)
        current = subscription_state(document, system_id)
        if state == current or state not in ("1", "-1", "0"):
            continue
        if state == known:
            # Only the Hub changed: its push carries the change.
            held.append(f"subscription:{system_id}")
            continue
        entry = _entry(document, system_id) or {}
        hub_moment = entry.get("updatedAt")
        both = current != known
        if hub_moment and _parse_iso(hub_moment) > moment:
            held.append(f"subscription:{system_id}")
            if both:
                _conflict(ctx, link, record, [system_id], [system_id], counts)
            continue
        if both:
            _conflict(ctx, link, record, [system_id], [], counts)
        new = _new_entry(system_id, state, record)
        new["registeredAt"] = entry.get("registeredAt") or stamp
        entries = [e for e in entries if e.get("id") != system_id] + [{**entry, **new}]
        changed = True
    return entries, changed, held


def _conflict(
    ctx: Context,
    link: Link,
    record: Subscriber,
    names: list[str],
    hub_wins: list[str],
    counts: Counts,
) -> None:
    counts.conflicts += 1
    winner = "hub" if hub_wins else "send"
    record_issue(
        ctx,
        SyncIssue.Kind.CONFLICT,
        "SYNC_CONFLICT",
        f"Both sides changed {', '.join(names)}; the later ({winner}) wins.",
        subject_id=link.subject_id,
        subscriber_id=record.identifier,
        payload={"fields": names, "winner": winner},
    )


def hub_matches(ctx: Context, values: dict[str, str | None]) -> list[Customer]:
    """Return the node's customers whose matching fields agree with Send values."""
    matching = ctx.matching
    if not matching:
        return []
    query = Q(node=ctx.node)
    for row in matching:
        text = values.get(row.send_field)
        if not text or not text.strip():
            return []
        hub_type = hub_field_type(row.hub_field) or "string"
        value = to_hub(text.strip(), hub_type, row.send_type)
        query &= _field_query(row.hub_field, value, hub_type == EMAIL)
    return list(Customer.objects.filter(query)[:5])


def _field_query(path: str, value: Any, case_blind: bool) -> Q:
    columns = {"id": "id", "externalId": "external_id", "enabled": "enabled"}
    lookup = columns.get(path) or path.replace(".", "__")
    if case_blind:
        return Q(**{f"{lookup}__iexact": value})
    return Q(**{lookup: value})
