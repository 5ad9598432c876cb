"""The sync's state: outbox, links, cursors, runs, issues and account slots."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class SyncState(models.Model):
    """Per Send source: the poll cursor and the moments of the last runs.

    The cursor is the `lastModified` text of the newest record applied, with
    the identifiers already applied at that instant, so that records which
    share a timestamp are neither skipped nor applied twice.
    """

    source = models.OneToOneField(
        "sources.Source",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="sync_state",
    )
    cursor_stamp = models.CharField(max_length=40, blank=True, default="")
    cursor_ids = models.JSONField(default=list, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    # A poll or reconciliation holds the lease so that two never overlap.
    poll_lease_until = models.DateTimeField(null=True, blank=True)
    last_poll_ok_at = models.DateTimeField(null=True, blank=True)
    last_reconcile_at = models.DateTimeField(null=True, blank=True)
    last_sweep_at = models.DateTimeField(null=True, blank=True)
    initial_done_at = models.DateTimeField(null=True, blank=True)
    # True while every record in the userdb was added by this sync: it was
    # empty when the initial sync began, and no poll has met another record
    # since. New subjects are then added without looking Send up first.
    only_ours = models.BooleanField(default=False)

    class Meta:
        verbose_name = "sync state"

    def __str__(self) -> str:
        return f"sync state of {self.source_id}"


class OutboxEntry(models.Model):
    """A Hub subject (customer or aggregate profile) that Send must catch up on.

    The entry only says "look at this subject again": the relay reads the
    subject's current state, so several entries of one subject coalesce.
    """

    class Action(models.TextChoices):
        CHANGED = "changed", "Changed"
        DELETED = "deleted", "Deleted"

    # Every look-up by source goes through the indexes below.
    source = models.ForeignKey(
        "sources.Source",
        on_delete=models.CASCADE,
        related_name="outbox",
        db_index=False,
    )
    subject_id = models.UUIDField()
    action = models.CharField(max_length=10, choices=Action.choices)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["source", "available_at"]),
            models.Index(fields=["source", "subject_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.subject_id}"


class InitialChunk(models.Model):
    """A run of a node's customers, by id, that the initial sync owes Send.

    The initial sync splits an entry node into chunks of a few batches
    instead of giving every customer an outbox row. A chunk covers the ids
    above `after_id` up to `upto_id` (None: no bound), so the chunks of a
    source cover every id, customers created meanwhile included. Chunks
    are leased like outbox rows, pushed and deleted. While one is leased,
    `keys` holds the match keys of the records it is adding, so that a
    poll reading one back before its link is written knows it as ours. A
    chunk leased again (`attempts` above 1) may have reached Send: its
    customers are looked up before anything is added.

    `sending` counts the records the chunk's calls may have put in Send
    whose links are not written yet: set, before a lease's first add call,
    to the number it is about to add, and lowered in each transaction that
    writes links. With the links, it tells how many records in Send the
    sync may have added, which is how the poll notices a record someone
    else added while it waits for the chunks.
    """

    source = models.ForeignKey(
        "sources.Source", on_delete=models.CASCADE, related_name="initial_chunks"
    )
    after_id = models.UUIDField(null=True, blank=True)
    upto_id = models.UUIDField(null=True, blank=True)
    # Customers in the range when the chunk was made: progress, not a rule.
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    keys = models.JSONField(default=list, blank=True)
    sending = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"({self.after_id}, {self.upto_id}]"


class Link(models.Model):
    """A Hub subject and its Send record, with what each side last held.

    `hub_hash` and `send_hash` are hashes of the mapped values last written
    to or read from each side; `values` are those values in Send's text
    form (to tell which fields changed), and `subscriptions` the last known
    registration state per Hub subscription system. `send_stamp` is the
    record's `lastModified` when the sync last wrote or read all of it: a
    poll reads whole only the records whose stamp moved since.
    `pending_add` marks a record whose add may have reached Send without
    the answer reaching us; while it is set, `values` are the values being
    added.
    """

    # The unique (source, subject) index serves look-ups by source; a
    # separate one only cost writes and misled the planner.
    source = models.ForeignKey(
        "sources.Source",
        on_delete=models.CASCADE,
        related_name="sync_links",
        db_index=False,
    )
    subject_id = models.UUIDField()
    subscriber_id = models.BigIntegerField(null=True, blank=True)
    hub_hash = models.CharField(max_length=64, blank=True, default="")
    send_hash = models.CharField(max_length=64, blank=True, default="")
    send_stamp = models.CharField(max_length=40, blank=True, default="")
    values = models.JSONField(default=dict, blank=True)
    subscriptions = models.JSONField(default=dict, blank=True)
    pending_add = models.UUIDField(null=True, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "subject_id"], name="sync_link_subject_unique"
            ),
            # Send identifier first: polls look links up by many of them,
            # and a leading column the look-up names is used whatever the
            # statistics say.
            models.UniqueConstraint(
                fields=["subscriber_id", "source"],
                condition=models.Q(subscriber_id__isnull=False),
                name="sync_link_subscriber_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject_id} ↔ {self.subscriber_id}"


class SyncRun(models.Model):
    """One pass of the sync for a source, with what it did."""

    class Kind(models.TextChoices):
        PUSH = "push", "Hub to Send"
        POLL = "poll", "Send to Hub"
        RECONCILE = "reconcile", "Reconciliation"
        INITIAL = "initial", "Initial sync"

    source = models.ForeignKey(
        "sources.Source", on_delete=models.CASCADE, related_name="sync_runs"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.source_id} at {self.started_at:%H:%M:%S}"


class SyncIssue(models.Model):
    """A record the sync could not handle alone, or an event to show.

    Errors and "needs attention" stay open until retried; conflicts and
    deletions in Send are history. `payload` never holds a secret.
    """

    class Kind(models.TextChoices):
        ERROR = "error", "Error"
        ATTENTION = "attention", "Needs attention"
        CONFLICT = "conflict", "Conflict"
        DELETED_IN_SEND = "deleted", "Deleted in Send"

    source = models.ForeignKey(
        "sources.Source", on_delete=models.CASCADE, related_name="sync_issues"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject_id = models.UUIDField(null=True, blank=True)
    subscriber_id = models.BigIntegerField(null=True, blank=True)
    code = models.CharField(max_length=60)
    reason = models.TextField()
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["source", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.code}"


class AccountSlot(models.Model):
    """One of the concurrent-call slots of a Send account, leased by a worker.

    Slots live in the database so that the limit holds across every worker
    whatever the broker; a lease that outlives a dead worker simply expires.
    """

    account = models.CharField(max_length=64)
    number = models.PositiveSmallIntegerField()
    leased_until = models.DateTimeField(default=timezone.now)
    holder = models.UUIDField(default=uuid.uuid4)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "number"], name="sync_accountslot_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account[:8]}#{self.number}"
