"""One limit of concurrent Send calls per account, shared by every worker.

Slots are rows leased with a conditional UPDATE, so the limit holds with
any broker and any database (the embedded SQLite one included), and a
worker that dies simply lets its lease run out.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

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
        AccountSlot.objects.filter(account=account, holder=holder).update(
            leased_until=timezone.now()
        )


def _acquire(
    account: str, wait_seconds: float, limit: int, lease: timedelta
) -> uuid.UUID:
    _ensure_slots(account, limit)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        holder = uuid.uuid4()
        if _try_lease(account, limit, holder, lease):
            return holder
        if time.monotonic() > deadline:
            raise NoSlot(account)
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)


def _try_lease(account: str, limit: int, holder: uuid.UUID, lease: timedelta) -> bool:
    now = timezone.now()
    for number in random.sample(range(limit), limit):
        # The conditional UPDATE is the claim: only one worker sees a row
        # count of 1 for a slot whose lease has run out.
        taken = AccountSlot.objects.filter(
            Q(leased_until__lte=now), account=account, number=number
        ).update(leased_until=now + lease, holder=holder)
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
