"""Celery tasks of the sync: thin wrappers that take ids and call services.

Remote calls run on the `send` queue (CELERY_TASK_ROUTES); fan-out and
upkeep on the default queue. Every task is safe to run twice and returns
quietly when its source is gone.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from . import services

logger = logging.getLogger(__name__)


@shared_task
def outbox_relay_task(source_id: str) -> None:
    """Push a source's pending outbox rows in batches, for a bounded time."""
    if services.outbox_relay_run(source_id, settings.SYNC_RELAY_SECONDS):
        # Time is up with rows left: hand over instead of holding the worker.
        outbox_relay_task.delay(source_id)


@shared_task
def source_poll_task(source_id: str) -> None:
    """Pull the records changed in Send since the source's cursor."""
    services.source_poll(source_id)


@shared_task
def source_reconcile_task(source_id: str) -> None:
    """Compare all of a source's Send records with their links."""
    services.source_reconcile(source_id)


@shared_task
def source_initial_sync_task(source_id: str) -> None:
    """Queue a newly enabled source's subjects, then wake its relays and poll."""
    services.source_initial_sync(source_id)
    for _ in range(services.relay_limit()):
        outbox_relay_task.delay(source_id)
    source_poll_task.delay(source_id)


@shared_task
def poll_all_task() -> None:
    """Start a poll of every enabled Send source (beat)."""
    for source_id in services.pollable_sources():
        source_poll_task.delay(str(source_id))


@shared_task
def outbox_sweep_task() -> None:
    """Queue what bulk paths changed and wake relays with rows ready (beat)."""
    for source_id in services.outbox_sweep():
        outbox_relay_task.delay(str(source_id))


@shared_task
def reconcile_all_task() -> None:
    """Start a reconciliation of every enabled Send source (beat)."""
    for source_id in services.pollable_sources():
        source_reconcile_task.delay(str(source_id))


@shared_task
def history_prune_task() -> None:
    """Delete sync history older than the kept period (beat)."""
    deleted = services.history_prune()
    logger.info("Sync history pruned. deleted=%s", deleted)
