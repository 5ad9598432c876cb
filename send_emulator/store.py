"""The emulator's data, kept in one SQLite file.

Accounts, userdbs, their fields and subscription systems live in small
metadata tables. The subscribers of each userdb live in a table of their
own (`u<id>`) with one typed column per field and an index on every column
that is not free text, so lookups by any field stay fast on large userdbs.
Column names are generated (`f<n>`), never taken from field names, so a
field name never reaches SQL text.

Writes are serialised by a process-wide lock and run inside
`BEGIN IMMEDIATE`; reads run concurrently on pooled connections (WAL).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import queue
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence

from . import errors, values

ID_FIELD = "id"
MODIFIED_FIELD = "lastModified"
SYSTEM_FIELDS = (ID_FIELD, MODIFIED_FIELD)
MATCHING_MODES = (
    "EQUALS",
    "NOT_EQUALS",
    "GREATER",
    "GREATER_EQUALS",
    "LESS",
    "LESS_EQUALS",
    "IN",
    "LIKE",
)
_OPERATORS = {
    "EQUALS": "IS",
    "NOT_EQUALS": "IS NOT",
    "GREATER": ">",
    "GREATER_EQUALS": ">=",
    "LESS": "<",
    "LESS_EQUALS": "<=",
}
_LIKE_TYPES = {"CHAR", "STRING", "TEXT", "DATE", "TIME"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    api_key TEXT PRIMARY KEY,
    user_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS userdbs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    api_key TEXT NOT NULL REFERENCES accounts (api_key),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    charset TEXT NOT NULL DEFAULT 'UTF-8',
    locked INTEGER NOT NULL DEFAULT 0,
    read_only INTEGER NOT NULL DEFAULT 0,
    next_column INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS userdbs_api_key ON userdbs (api_key);
CREATE TABLE IF NOT EXISTS fields (
    userdb_id INTEGER NOT NULL REFERENCES userdbs (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    email_field INTEGER NOT NULL DEFAULT 0,
    column_name TEXT NOT NULL,
    PRIMARY KEY (userdb_id, name)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    userdb_id INTEGER NOT NULL REFERENCES userdbs (id),
    name TEXT NOT NULL,
    registration_field TEXT NOT NULL,
    webform_code TEXT NOT NULL UNIQUE
);
"""


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    type: str
    email_field: bool
    column: str


@dataclasses.dataclass(frozen=True)
class UserDbInfo:
    id: int
    api_key: str
    name: str
    description: str
    charset: str
    locked: bool
    read_only: bool
    fields: tuple[Field, ...]

    @property
    def table(self) -> str:
        return f"u{self.id}"

    @functools.cached_property
    def _by_name(self) -> dict[str, Field]:
        return {field.name: field for field in self.fields}

    def field(self, name: str) -> Field:
        found = self._by_name.get(name)
        if found is None:
            raise errors.invalid_data(name, "no such field in this userdb")
        return found


@dataclasses.dataclass(frozen=True)
class SubscriptionInfo:
    id: int
    userdb_id: int
    name: str
    registration_field: str
    webform_code: str


@dataclasses.dataclass(frozen=True)
class Record:
    identifier: int
    attributes: dict[str, str | None]


@dataclasses.dataclass(frozen=True)
class Filter:
    name: str
    value: str | None
    mode: str = "EQUALS"


Attributes = Mapping[str, str | None]


class Store:
    """Everything the emulator keeps, behind methods that check their input."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._write_lock = threading.Lock()
        self._last_stamp = 0
        # executescript() commits on its own, so it runs outside _write().
        with self._write_lock, self._connection() as conn:
            conn.executescript(_SCHEMA)

    # Connections and transactions.

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            self._pool.put(conn)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _next_stamp(self) -> int:
        # Strictly increasing, so that polling on lastModified never sees
        # two writes collapse into one instant, even if the clock steps back.
        self._last_stamp = max(values.stamp_now(), self._last_stamp + 1)
        return self._last_stamp

    def reset(self) -> None:
        """Drop every account, userdb and subscriber."""
        with self._write() as conn:
            for (userdb_id,) in conn.execute("SELECT id FROM userdbs").fetchall():
                conn.execute(f"DROP TABLE IF EXISTS u{int(userdb_id)}")
            for table in ("subscriptions", "fields", "userdbs", "accounts"):
                conn.execute(f"DELETE FROM {table}")  # noqa: S608
            conn.execute("DELETE FROM sqlite_sequence")

    # Accounts.

    def create_account(self, api_key: str, user_key: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO accounts (api_key, user_key) VALUES (?, ?)"
                " ON CONFLICT (api_key) DO UPDATE SET user_key = excluded.user_key",
                (api_key, user_key),
            )

    def account_matches(self, api_key: str, user_key: str) -> bool:
        with self._read() as conn:
            row = conn.execute(
                "SELECT user_key FROM accounts WHERE api_key = ?", (api_key,)
            ).fetchone()
        return row is not None and secrets.compare_digest(row[0], user_key)

    # Userdbs and their metadata.

    def create_userdb(
        self,
        api_key: str,
        name: str,
        fields: Sequence[tuple[str, str, bool]],
        description: str = "",
    ) -> int:
        """Create a userdb with `fields` (name, type, emailField) plus id and
        lastModified, and return its identifier."""
        with self._write() as conn:
            if not conn.execute(
                "SELECT 1 FROM accounts WHERE api_key = ?", (api_key,)
            ).fetchone():
                raise ValueError("unknown apiKey")
            cursor = conn.execute(
                "INSERT INTO userdbs (api_key, name, description) VALUES (?, ?, ?)",
                (api_key, name, description),
            )
            userdb_id = int(cursor.lastrowid or 0)
            conn.execute(
                f"CREATE TABLE u{userdb_id} (id INTEGER PRIMARY KEY AUTOINCREMENT)"
            )
            conn.execute(
                "INSERT INTO fields VALUES (?, 0, ?, 'INTEGER', 0, 'id')",
                (userdb_id, ID_FIELD),
            )
            all_fields = [(MODIFIED_FIELD, "TIMESTAMP", False), *fields]
            for field_name, field_type, email_field in all_fields:
                self._add_field(conn, userdb_id, field_name, field_type, email_field)
        return userdb_id

    def _add_field(
        self,
        conn: sqlite3.Connection,
        userdb_id: int,
        name: str,
        field_type: str,
        email_field: bool,
    ) -> None:
        (position,) = conn.execute(
            "UPDATE userdbs SET next_column = next_column + 1 WHERE id = ?"
            " RETURNING next_column - 1",
            (userdb_id,),
        ).fetchone()
        column = f"f{int(position)}"
        conn.execute(
            "INSERT INTO fields VALUES (?, ?, ?, ?, ?, ?)",
            (userdb_id, position, name, field_type, int(email_field), column),
        )
        sql_type = values.COLUMN_TYPES[field_type]
        conn.execute(f"ALTER TABLE u{userdb_id} ADD COLUMN {column} {sql_type}")
        if field_type != "TEXT":
            conn.execute(
                f"CREATE INDEX u{userdb_id}_{column} ON u{userdb_id} ({column})"
            )

    def userdb(self, userdb_id: int, api_key: str | None = None) -> UserDbInfo:
        """Return a userdb, if it exists and (given `api_key`) belongs to it."""
        with self._read() as conn:
            info = self._userdb(conn, userdb_id)
        if info is None or (api_key is not None and info.api_key != api_key):
            raise errors.userdb_not_found(userdb_id)
        return info

    def _userdb(self, conn: sqlite3.Connection, userdb_id: int) -> UserDbInfo | None:
        row = conn.execute(
            "SELECT id, api_key, name, description, charset, locked, read_only"
            " FROM userdbs WHERE id = ?",
            (userdb_id,),
        ).fetchone()
        if row is None:
            return None
        fields = tuple(
            Field(name, field_type, bool(email), column)
            for name, field_type, email, column in conn.execute(
                "SELECT name, type, email_field, column_name FROM fields"
                " WHERE userdb_id = ? ORDER BY position",
                (userdb_id,),
            )
        )
        return UserDbInfo(
            row[0], row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]), fields
        )

    def userdbs(self, api_key: str | None = None) -> list[UserDbInfo]:
        """Return the userdbs of one account, or of all accounts."""
        with self._read() as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM userdbs WHERE ? IS NULL OR api_key = ? ORDER BY id",
                    (api_key, api_key),
                )
            ]
            found = [self._userdb(conn, userdb_id) for userdb_id in ids]
        return [info for info in found if info is not None]

    def set_userdb_flags(
        self, userdb_id: int, *, locked: bool | None, read_only: bool | None
    ) -> None:
        self.userdb(userdb_id)
        with self._write() as conn:
            conn.execute(
                "UPDATE userdbs SET locked = coalesce(?, locked),"
                " read_only = coalesce(?, read_only) WHERE id = ?",
                (locked, read_only, userdb_id),
            )

    # Subscription systems.

    def add_subscription(
        self,
        userdb_id: int,
        name: str,
        registration_field: str,
        webform_code: str | None = None,
    ) -> SubscriptionInfo:
        """Add a subscription system, creating its registration field (an
        INTEGER) when the userdb lacks it."""
        code = webform_code or f"wf-{secrets.token_hex(6)}"
        info = self.userdb(userdb_id)
        with self._write() as conn:
            existing = {field.name: field for field in info.fields}
            field = existing.get(registration_field)
            if field is None:
                self._add_field(conn, userdb_id, registration_field, "INTEGER", False)
            elif field.type not in ("INTEGER", "LONG"):
                raise ValueError(f"{registration_field} is not an INTEGER field")
            try:
                cursor = conn.execute(
                    "INSERT INTO subscriptions"
                    " (userdb_id, name, registration_field, webform_code)"
                    " VALUES (?, ?, ?, ?)",
                    (userdb_id, name, registration_field, code),
                )
            except sqlite3.IntegrityError as error:
                raise ValueError(f"webform code {code} is already used") from error
        return SubscriptionInfo(
            int(cursor.lastrowid or 0), userdb_id, name, registration_field, code
        )

    def subscriptions(
        self, api_key: str | None, userdb_id: int | None = None
    ) -> list[SubscriptionInfo]:
        """Return the subscription systems of an account, maybe of one userdb."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT s.id, s.userdb_id, s.name, s.registration_field,"
                " s.webform_code FROM subscriptions s"
                " JOIN userdbs u ON u.id = s.userdb_id"
                " WHERE (? IS NULL OR u.api_key = ?) AND (? IS NULL OR u.id = ?)"
                " ORDER BY s.id",
                (api_key, api_key, userdb_id, userdb_id),
            ).fetchall()
        return [SubscriptionInfo(*row) for row in rows]

    def set_subscription_status(
        self, api_key: str, webform_code: str, identifier: int, status: int
    ) -> None:
        """Set the registration field of the webform's subscription system."""
        found = [
            item
            for item in self.subscriptions(api_key)
            if item.webform_code == webform_code
        ]
        if not found:
            raise errors.ServiceFault(
                errors.WEBFORM_NOT_FOUND, f"webform {webform_code} does not exist"
            )
        system = found[0]
        info = self.userdb(system.userdb_id)
        self.update(info, identifier, {system.registration_field: str(status)})

    # Subscribers.

    def count(self, info: UserDbInfo) -> int:
        with self._read() as conn:
            (total,) = conn.execute(f"SELECT count(*) FROM {info.table}").fetchone()  # noqa: S608
        return int(total)

    def get(self, info: UserDbInfo, identifier: int) -> Record | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {self._columns(info)} FROM {info.table} WHERE id = ?",  # noqa: S608
                (identifier,),
            ).fetchone()
        return None if row is None else self._record(info, row)

    def find(
        self,
        info: UserDbInfo,
        filters: Sequence[Filter],
        *,
        sort_field: str | None = None,
        descending: bool = False,
        page: int = 1,
        page_size: int = 100,
        only: Sequence[str] | None = None,
    ) -> tuple[int, list[Record]]:
        """Return the number of matches and one page of them, with only the
        fields named in `only` (and the identifier) when it is given."""
        where, params = self._where(info, filters)
        fields = info.fields
        if only is not None:
            fields = (fields[0], *(info.field(n) for n in only if n != fields[0].name))
        order = "id"
        if sort_field is not None:
            direction = "DESC" if descending else "ASC"
            order = f"{info.field(sort_field).column} {direction}, id {direction}"
        offset = (page - 1) * page_size
        with self._read() as conn:
            (total,) = conn.execute(
                f"SELECT count(*) FROM {info.table} WHERE {where}",  # noqa: S608
                params,
            ).fetchone()
            columns = ", ".join(field.column for field in fields)
            rows = conn.execute(
                f"SELECT {columns} FROM {info.table} WHERE {where}"  # noqa: S608
                f" ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, page_size, offset],
            ).fetchall()
        return int(total), [self._record(info, row, fields) for row in rows]

    def _where(
        self, info: UserDbInfo, filters: Sequence[Filter]
    ) -> tuple[str, list[values.Stored]]:
        clauses = ["1"]
        params: list[values.Stored] = []
        for item in filters:
            field = info.field(item.name)
            if item.mode not in MATCHING_MODES:
                raise errors.invalid_data(item.name, f"unknown mode {item.mode}")
            if item.mode == "IN":
                parts = [] if item.value is None else item.value.split(",")
                parsed = [self._parse(field, part.strip()) for part in parts]
                marks = ", ".join("?" for _ in parsed)
                clauses.append(f"{field.column} IN ({marks})")
                params.extend(parsed)
            elif item.mode == "LIKE":
                if field.type not in _LIKE_TYPES:
                    raise errors.invalid_data(item.name, "LIKE needs a text field")
                clauses.append(f"{field.column} LIKE ?")
                params.append(item.value)
            else:
                clauses.append(f"{field.column} {_OPERATORS[item.mode]} ?")
                params.append(self._parse(field, item.value))
        return " AND ".join(clauses), params

    def add(
        self, info: UserDbInfo, records: Sequence[Attributes], *, as_owner: bool = False
    ) -> list[Record]:
        """Add subscribers, all or none, and return them as stored.

        `as_owner` is an edit made in Send itself, which no lock refuses."""
        if not as_owner:
            self._check_writable(info)
        prepared = [self._prepare(info, attributes) for attributes in records]
        identifiers = []
        with self._write() as conn:
            for columns in prepared:
                columns[self._modified_column(info)] = self._next_stamp()
                names = ", ".join(columns)
                marks = ", ".join("?" for _ in columns)
                cursor = conn.execute(
                    f"INSERT INTO {info.table} ({names}) VALUES ({marks})",  # noqa: S608
                    list(columns.values()),
                )
                identifiers.append(int(cursor.lastrowid or 0))
            rows = self._rows(conn, info, identifiers)
        return [self._record(info, row) for row in rows]

    def update(
        self,
        info: UserDbInfo,
        identifier: int,
        attributes: Attributes,
        *,
        as_owner: bool = False,
    ) -> Record:
        """Change the given attributes of one subscriber (others are kept)."""
        if not as_owner:
            self._check_writable(info)
        columns = self._prepare(info, attributes)
        columns[self._modified_column(info)] = self._next_stamp()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE {info.table} SET {assignments} WHERE id = ?",  # noqa: S608
                [*columns.values(), identifier],
            )
            if cursor.rowcount == 0:
                raise _subscriber_not_found(info, identifier)
            rows = self._rows(conn, info, [identifier])
        return self._record(info, rows[0])

    def remove(
        self, info: UserDbInfo, identifier: int, *, as_owner: bool = False
    ) -> None:
        if not as_owner:
            self._check_writable(info)
        with self._write() as conn:
            cursor = conn.execute(
                f"DELETE FROM {info.table} WHERE id = ?",  # noqa: S608
                (identifier,),
            )
            if cursor.rowcount == 0:
                raise _subscriber_not_found(info, identifier)

    # Helpers.

    def _check_writable(self, info: UserDbInfo) -> None:
        fresh = self.userdb(info.id)
        if fresh.locked:
            raise errors.ServiceFault(
                errors.USERDB_LOCKED,
                f"userdb {info.id} is locked, retry later",
                http_status=500,
            )
        if fresh.read_only:
            raise errors.ServiceFault(
                errors.USERDB_READ_ONLY, f"userdb {info.id} is read-only"
            )

    def _prepare(self, info: UserDbInfo, attributes: Attributes) -> dict[str, object]:
        # The identifier and the modification time belong to the service: a
        # client echoing them back (a read-modify-write) is not an error.
        columns: dict[str, object] = {}
        for name, text in attributes.items():
            if name in SYSTEM_FIELDS:
                continue
            field = info.field(name)
            columns[field.column] = self._parse(field, text)
        return columns

    @staticmethod
    def _parse(field: Field, text: str | None) -> values.Stored:
        try:
            return values.parse(field.type, text)
        except values.BadValue as error:
            raise errors.invalid_data(field.name, str(error)) from error

    @staticmethod
    def _modified_column(info: UserDbInfo) -> str:
        return info.field(MODIFIED_FIELD).column

    @staticmethod
    def _columns(info: UserDbInfo) -> str:
        return ", ".join(field.column for field in info.fields)

    def _rows(
        self, conn: sqlite3.Connection, info: UserDbInfo, identifiers: list[int]
    ) -> list[tuple[values.Stored, ...]]:
        by_id = {}
        for start in range(0, len(identifiers), 500):
            chunk = identifiers[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in conn.execute(
                f"SELECT {self._columns(info)} FROM {info.table}"  # noqa: S608
                f" WHERE id IN ({marks})",
                chunk,
            ):
                by_id[row[0]] = row
        return [by_id[identifier] for identifier in identifiers]

    @staticmethod
    def _record(
        info: UserDbInfo,
        row: Sequence[values.Stored],
        fields: Sequence[Field] | None = None,
    ) -> Record:
        attributes = {
            field.name: values.render(field.type, value)
            for field, value in zip(fields or info.fields, row, strict=True)
        }
        return Record(int(row[0] or 0), attributes)


def _subscriber_not_found(info: UserDbInfo, identifier: int) -> errors.ServiceFault:
    return errors.ServiceFault(
        errors.SUBSCRIBER_NOT_FOUND,
        f"subscriber {identifier} does not exist in userdb {info.id}",
    )
