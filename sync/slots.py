"""One limit of concurrent Send calls per account, shared by every worker.

Slots are rows leased with a conditional UPDATE, so the limit holds with
any broker and any database (the embedded SQLite one included), and a
worker that dies simply lets its lease run out. A slot is taken for each
call to Send, so the lease and its release are plain SQL (built by the
ORM, they cost a millisecond of CPU per call), committed without waiting
for the disk: a lease that a database crash loses only frees its slot
early.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection
from django.utils import timezone

from hubsync.db import execute_relaxed

from .models import AccountSlot


class NoSlot(Exception):
    """Every slot of the account stayed busy for the whole wait."""


@contextlib.contextmanager
def account_slot(
    account: str,
    *,
    wait_seconds: float = 30.0,
    limit: int | None = None,
    lease_seconds: float | None = None,
) -> Iterator[None]:
    """Hold one of the account's call slots for the duration of the block.

    `account` may name any pool of slots (relays use one per source);
    `limit` defaults to SYNC_ACCOUNT_CONCURRENCY and `lease_seconds` to
    SYNC_SLOT_LEASE_SECONDS.
    """
    size = int(settings.SYNC_ACCOUNT_CONCURRENCY) if limit is None else limit
    lease = timedelta(
        seconds=settings.SYNC_SLOT_LEASE_SECONDS
        if lease_seconds is None
        else lease_seconds
    )
    holder = _acquire(account, wait_seconds, size, lease)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            execute_relaxed(
                cursor,
                f"UPDATE {_TABLE} SET leased_until = %s"  # noqa: S608 - model table
                " WHERE account = %s AND holder = %s",
                [_moment(timezone.now()), account, _holder(holder)],
            )


def _acquire(
    account: str, wait_seconds: float, limit: int, lease: timedelta
) -> uuid.UUID:
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    ensured = False
    while True:
        holder = uuid.uuid4()
        if _try_lease(account, limit, holder, lease):
            return holder
        if not ensured:
            # The rows are made on first need; checking on every call cost
            # a query per Send call.
            _ensure_slots(account, limit)
            ensured = True
            continue
        if time.monotonic() > deadline:
            raise NoSlot(account)
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)


_TABLE = AccountSlot._meta.db_table


def _moment(moment: datetime) -> Any:
    return AccountSlot._meta.get_field("leased_until").get_db_prep_value(
        moment, connection
    )


def _holder(holder: uuid.UUID) -> Any:
    return AccountSlot._meta.get_field("holder").get_db_prep_value(holder, connection)


def _try_lease(account: str, limit: int, holder: uuid.UUID, lease: timedelta) -> bool:
    now = timezone.now()
    with connection.cursor() as cursor:
        for _ in range(limit):
            # The conditional UPDATE is the claim: only one worker sees a row
            # count of 1 for a slot whose lease has run out. A random free
            # slot is asked for, so that racing workers seldom want the same.
            taken = execute_relaxed(
                cursor,
                f"UPDATE {_TABLE} SET leased_until = %s, holder = %s"  # noqa: S608
                f" WHERE id = (SELECT id FROM {_TABLE} WHERE account = %s"
                " AND number < %s AND leased_until <= %s ORDER BY random() LIMIT 1)"
                " AND leased_until <= %s",
                [
                    _moment(now + lease),
                    _holder(holder),
                    account,
                    limit,
                    _moment(now),
                    _moment(now),
                ],
            )
            if taken:
                return True
    return False


def _ensure_slots(account: str, limit: int) -> None:
    known = AccountSlot.objects.filter(account=account).count()
    if known >= limit:
        return
    with contextlib.suppress(IntegrityError):
        AccountSlot.objects.bulk_create(
            [AccountSlot(account=account, number=number) for number in range(limit)],
            ignore_conflicts=True,
        )
