"""Reads of the sync's state for the API and the operator UI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Min, Sum
from django.utils import timezone

from sources.models import Source

from .models import InitialChunk, OutboxEntry, SyncIssue, SyncRun, SyncState

LAST_RUNS = 10


def sync_state(source: Source) -> dict[str, Any]:
    """Return the sync state of a source as a JSON-ready dict.

    `state` is "disabled", "initial" (the first sync is being queued),
    "syncing" (rows are pending) or "idle"; lag ages are in seconds, None
    when there is nothing to measure. `pending` counts the outbox rows and
    the customers the initial chunks still owe Send.
    """
    now = timezone.now()
    pending = OutboxEntry.objects.filter(source=source)
    chunks = InitialChunk.objects.filter(source=source).aggregate(
        oldest=Min("created_at"), owed=Sum("size")
    )
    moments = [pending.aggregate(oldest=Min("created_at"))["oldest"], chunks["oldest"]]
    oldest = min((moment for moment in moments if moment), default=None)
    count = pending.count() + (chunks["owed"] or 0)
    state = SyncState.objects.filter(source=source).first()
    last_poll = state.last_poll_ok_at if state else None
    if not source.enabled:
        label = "disabled"
    elif state is None or state.initial_done_at is None:
        label = "initial"
    else:
        label = "syncing" if count else "idle"
    return {
        "state": label,
        "enabled": source.enabled,
        "lag": {
            "oldestPendingSeconds": _seconds(now - oldest) if oldest else None,
            "sinceLastPollSeconds": _seconds(now - last_poll) if last_poll else None,
        },
        "pending": count,
        "lastReconcileAt": _iso(state.last_reconcile_at if state else None),
        "openErrors": SyncIssue.objects.filter(
            source=source,
            kind__in=[SyncIssue.Kind.ERROR, SyncIssue.Kind.ATTENTION],
            resolved_at__isnull=True,
        ).count(),
        "lastRuns": [
            _run(run)
            for run in SyncRun.objects.filter(source=source).order_by(
                "-started_at", "-id"
            )[:LAST_RUNS]
        ],
    }


def sync_errors(
    source: Source, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Return one page of a source's sync history entries, newest first, and
    the total: open errors and "needs attention", conflicts and deletions."""
    issues = SyncIssue.objects.filter(source=source).order_by("-created_at", "-id")
    total = issues.count()
    page = issues[max(offset, 0) : max(offset, 0) + max(limit, 0)]
    return [_issue(issue) for issue in page], total


def _run(run: SyncRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "kind": run.kind,
        "startedAt": _iso(run.started_at),
        "finishedAt": _iso(run.finished_at),
        "added": run.added,
        "updated": run.updated,
        "removed": run.removed,
        "unchanged": run.unchanged,
        "failed": run.failed,
        "conflicts": run.conflicts,
        "error": run.error or None,
    }


def _issue(issue: SyncIssue) -> dict[str, Any]:
    return {
        "id": issue.id,
        "kind": issue.kind,
        "code": issue.code,
        "reason": issue.reason,
        "customerId": str(issue.subject_id) if issue.subject_id else None,
        "subscriberId": issue.subscriber_id,
        "payload": issue.payload,
        "createdAt": _iso(issue.created_at),
        "resolvedAt": _iso(issue.resolved_at),
    }


def _seconds(delta: dt.timedelta) -> float:
    return round(max(delta.total_seconds(), 0.0), 3)


def _iso(moment: Any) -> str | None:
    if moment is None:
        return None
    return str(moment.isoformat().replace("+00:00", "Z"))
