"""Database helpers shared by the apps, for the sync's batch queries.

psycopg quotes every query parameter in Python, and Django builds a model
object per row: for the sync's batches of 500 that was most of a worker's
CPU. On PostgreSQL the batch queries therefore send a list as one
parameter (an array or a JSON document) and read plain rows; every other
database gets the portable ORM query, which the tests also run on
PostgreSQL by setting `DB_FAST_PATH = False`.

`field__any_of=ids` matches like `__in`, but on PostgreSQL it sends the ids
as one array literal (`= ANY(%s::uuid[])`) instead of one parameter each.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection as default_connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BigIntegerField, IntegerField, UUIDField
from django.db.models.lookups import In
from django.db.models.sql.compiler import SQLCompiler

_ARRAY_TYPES = {UUIDField: "uuid", BigIntegerField: "bigint", IntegerField: "integer"}


def fast_path(connection: BaseDatabaseWrapper | None = None) -> bool:
    """Tell whether the PostgreSQL-only form of a batch query may be used."""
    connection = connection or default_connection
    return connection.vendor == "postgresql" and getattr(settings, "DB_FAST_PATH", True)


def array_literal(values: Any) -> str:
    """Return ids (UUIDs or integers) as a PostgreSQL array literal."""
    return "{" + ",".join(str(value) for value in values) + "}"


def _array_type(field: Any) -> str:
    for kind, name in _ARRAY_TYPES.items():
        if isinstance(field, kind):
            return name
    raise TypeError(f"any_of does not support {type(field).__name__}")


@UUIDField.register_lookup
@IntegerField.register_lookup
class AnyOf(In[Any]):
    """`field__any_of=[...]`: membership in a list of UUIDs or integers."""

    lookup_name = "any_of"

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        listed = isinstance(self.rhs, (list, tuple, set, frozenset))
        if not listed or not fast_path(connection):
            sql, params = super().as_sql(compiler, connection)
            return sql, list(params)
        values = [value for value in self.rhs if value is not None]
        lhs, lhs_params = self.process_lhs(compiler, connection)
        kind = _array_type(self.lhs.output_field)
        return f"{lhs} = ANY(%s::{kind}[])", [*lhs_params, array_literal(values)]


# Without waiting for the commit to reach the disk: a crash of the database
# server may lose the last fraction of a second of such commits, never
# anything else, and never their order. Only for writes the sync recovers
# from when lost: call-slot leases, and the links of added records, whose
# adds were marked by a commit that did wait.
_RELAXED = "SET LOCAL synchronous_commit TO OFF; "


def execute_relaxed(cursor: Any, sql: str, params: list[Any]) -> int:
    """Run one statement in its own transaction, committed without waiting
    for the disk on PostgreSQL; return the number of rows it changed.

    Inside a transaction the statement is just run: the commit, and how it
    waits, belong to whoever opened the transaction.
    """
    if cursor.db.vendor != "postgresql" or cursor.db.in_atomic_block:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
    # One round trip: the two statements form one implicit transaction,
    # and the answer of the second follows the first's.
    cursor.execute(_RELAXED + sql, params)
    cursor.cursor.nextset()
    return int(cursor.cursor.rowcount)


def relax_commit() -> None:
    """Let the transaction just opened commit without waiting for the disk.

    Only an outermost `atomic` block is relaxed: inside someone else's
    transaction, its commit is theirs.
    """
    connection = default_connection
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return
    if connection.savepoint_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_RELAXED.rstrip("; "))
