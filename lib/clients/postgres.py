"""PostgreSQL, through psycopg 3: the only code of the product that speaks SQL.

The server is the one ``KNACK_POSTGRES_URL`` names (a libpq URL: a secret, never printed;
errors are redacted). A container's table holds ``id`` (text, the primary key), ``record``
(jsonb: the stored JSON), one typed column per bound field, ``_digest`` (what the row was
made from: the MD5 of its stored object and of the columns' definitions, so a rerun skips
rows that cannot have changed) and ``_published_at`` (when the row last changed).

:func:`load` does one publish's writes in **one transaction**: it creates the table (first
run) and the columns of new fields, COPYs the rows into a temporary table, upserts only
those that differ (``IS DISTINCT FROM``) and, on a full run, deletes the rows whose records
are gone. A reader sees the table before or after, never between; a failure or a killed
run leaves it as it was. A lock per table (an advisory lock) keeps two publishes of one
table one after the other. A table made by the run itself has nothing to compare with: the
rows are COPYed straight into it and its primary key is added after them (one sorted index
build, still in the transaction). The rows come in chunks: a thread sends one to the server
while the next is made.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from lib import config
from lib.errors import KnackNbError

logger = logging.getLogger(__name__)

URL_VARIABLE = "KNACK_POSTGRES_URL"
ID, RECORD, DIGEST, PUBLISHED_AT = "id", "record", "_digest", "_published_at"
META_COLUMNS = (ID, RECORD, DIGEST, PUBLISHED_AT)  # every table's; never a field's
CONNECT_TIMEOUT = 30  # seconds
COPY_CHUNK_ROWS = 5_000  # rows made, written as CSV and sent to COPY at once
APPLICATION = "knack-notebooks"  # the sessions' application_name (pg_stat_activity)


class PostgresError(KnackNbError):
    """The PostgreSQL server refused a statement, or could not be reached; nothing of the
    run was written (its transaction rolled back)."""


class MassDeleteRefused(PostgresError):
    """The mass-delete guard refused a full run's deletions (the transaction rolls back)."""


@dataclass(frozen=True)
class TableName:
    schema: str
    table: str

    @classmethod
    def parse(cls, qualified: str) -> TableName:
        schema, _, table = qualified.partition(".")
        return cls(schema, table)

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.table)


@dataclass
class Loaded:
    """What one :func:`load` did."""

    created_table: bool = False
    added_columns: dict[str, str] = field(default_factory=dict)  # name -> type
    sent: int = 0  # rows COPYed (those whose digest differs)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0  # rows sent whose values were the table's already
    deleted: list[str] = field(default_factory=list)
    # full runs only (an incremental run leaves no mark to compare with): the rows in the
    # table after the run and the fingerprint of their digests (:func:`fingerprint`)
    rows: int = 0
    fingerprint: str = ""


@contextmanager
def connect(*, purpose: str = "publish") -> Iterator[psycopg.Connection]:
    """A connection to ``KNACK_POSTGRES_URL``, closed after; a failure to
    connect raises PostgresError with the server's reason, never the URL."""
    url = config.require_env(URL_VARIABLE, purpose=f"the PostgreSQL destination ({purpose})")[
        URL_VARIABLE
    ]
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,  # reads alone; the writes in load()'s one transaction block
            connect_timeout=CONNECT_TIMEOUT,
            application_name=f"{APPLICATION} {purpose}",
        )
    except psycopg.Error as e:
        raise PostgresError(
            f"cannot connect to the PostgreSQL server of {URL_VARIABLE}: {_reason(e)}. Check "
            "the variable (host, port, database, user, password) and that the server is up"
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    url = os.environ.get(URL_VARIABLE) or ""
    return text.replace(url, "***") if url else text  # redacted again by KnackNbError


def read_columns(qualified: str) -> dict[str, str] | None:
    """The typed columns (name → type) of table ``schema.table``, without the columns every
    table has; None when there is no such table."""
    with connect(purpose="read columns") as conn:
        try:
            return table_columns(conn, TableName.parse(qualified))
        except psycopg.Error as e:
            raise PostgresError(f"reading the columns of {qualified}: {_reason(e)}") from None


def table_columns(conn: psycopg.Connection, name: TableName) -> dict[str, str] | None:
    """The table's columns but ``META_COLUMNS`` (name → ``format_type``), in their order;
    None when there is no such table. A table without the columns every table of ours has
    is someone else's: PostgresError."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (name.schema, name.table),
    ).fetchall()
    if not rows:
        return None
    columns = dict(rows)
    lacks = [c for c in META_COLUMNS if c not in columns]
    if lacks:
        raise PostgresError(
            f"table {name} exists but is not a table this project made (no "
            f"{', '.join(lacks)}): choose another table (postgres.table in params) or drop it"
        )
    return {n: t for n, t in columns.items() if n not in META_COLUMNS}


@dataclass
class Load:
    """One publish's writes (see :func:`load`)."""

    name: TableName
    columns: dict[str, str]  # the typed columns the rows fill (name -> type), table order
    add: dict[str, str]  # of those, the ones to add to the table (new fields)
    full: bool  # delete the rows whose ids are not in ``ids``
    ids: set[str]  # every id the store holds (full) or the rows' ids (incremental)
    # (gone, in the table, in the store) → why a full run must not delete them, or None
    guard: Callable[[int, int, int], str | None] = lambda *_: None
    expected: dict[str, str] | None = None  # the columns the plan saw; None: no table


def load(
    conn: psycopg.Connection, job: Load, rows: Callable[[dict[str, str]], Iterable[pa.Table]]
) -> Loaded:
    """Make the table equal to the rows, in one transaction (see the module). ``rows``
    answers the rows whose digest differs from the table's (id → digest given), in chunks
    made as they are asked for (each COPYed while the next is made): tables of ``id``,
    ``record`` (JSON text), the typed columns and ``_digest``. Refused deletions or a table
    changed since it was planned raise PostgresError (rolled back)."""
    done = Loaded()
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (str(job.name),))
            found = table_columns(conn, job.name)
            if found != job.expected:
                raise PostgresError(
                    f"table {job.name} changed while this run read S3 (another publish, or "
                    "an edit): nothing was written; rerun"
                )
            done.created_table = found is None
            _ensure_table(conn, job, found, done)
            digests = _digests(conn, job)
            if done.created_table:  # nothing to compare with: straight in, the key after
                done.sent = done.inserted = _copy(conn, job, rows(digests), job.name.ident)
                conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(job.name.ident))
            else:
                done.sent = _copy(conn, job, rows(digests))
                if done.sent:
                    done.inserted, done.updated = _upsert(conn, job)
                    done.unchanged = done.sent - done.inserted - done.updated
            if job.full:
                done.deleted = _delete_gone(conn, job, digests)
            if job.full:  # what the next full run compares with (lib.publish.postgres)
                done.rows, done.fingerprint = fingerprint(conn, job.name)
    except psycopg.Error as e:
        raise PostgresError(
            f"PostgreSQL refused the publish to {job.name}: {_reason(e)}. Nothing was written "
            "(one transaction)"
        ) from None
    return done


def fingerprint(conn: psycopg.Connection, name: TableName) -> tuple[int, str]:
    """The table's row count and the MD5 of its rows' digests in id order: equal to a
    run's, the table holds the rows that run left (one statement: one consistent view)."""
    query = sql.SQL(
        "SELECT count(*), coalesce(md5(string_agg(id || ':' || _digest, ',' ORDER BY id)), '') "
        "FROM {}"
    ).format(name.ident)
    rows, digest = conn.execute(query).fetchone()
    return int(rows), str(digest)


def _ensure_table(
    conn: psycopg.Connection, job: Load, found: dict[str, str] | None, done: Loaded
) -> None:
    """The table (first run: its typed columns between ``record`` and ``_digest``; its
    primary key is added by :func:`load` after the rows) and the columns of new fields."""
    typed = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in job.add.items()]
    if found is None:
        schema = sql.Identifier(job.name.schema)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        columns = [sql.SQL("id text NOT NULL, record jsonb NOT NULL"), *typed]
        columns.append(
            sql.SQL("_digest text NOT NULL, _published_at timestamptz NOT NULL DEFAULT now()")
        )
        conn.execute(
            sql.SQL("CREATE TABLE {} ({})").format(job.name.ident, sql.SQL(", ").join(columns))
        )
    else:
        for column in typed:
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(job.name.ident, column))
    done.added_columns.update(job.add)


def _digests(conn: psycopg.Connection, job: Load) -> dict[str, str]:
    """The table's digest of each row (incremental: of the rows' ids only)."""
    query = sql.SQL("SELECT id, _digest FROM {}").format(job.name.ident)
    if not job.full:
        query += sql.SQL(" WHERE id = ANY(%s)")
        return dict(conn.execute(query, (sorted(job.ids),)).fetchall())
    return dict(conn.execute(query).fetchall())


def _names(columns: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


def _copy(
    conn: psycopg.Connection,
    job: Load,
    chunks: Iterable[pa.Table],
    target: sql.Composable | None = None,
) -> int:
    """The rows into ``target`` (a table this transaction made, so nothing to compare
    with), else into the temporary table ``_knack_load`` (dropped at commit; made only when
    there is a row), by COPY of CSV that pyarrow writes (nulls unquoted and empty, text
    quoted). A thread sends each piece while the next chunk is made and written (the
    server parses one while the client makes the next). Returns the rows sent."""
    pending = (chunk for chunk in chunks if chunk.num_rows)
    first = next(pending, None)
    if first is None:
        return 0
    if target is None:
        defs = [sql.SQL("id text, record jsonb, _digest text")] + [
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in job.columns.items()
        ]
        conn.execute(
            sql.SQL("CREATE TEMPORARY TABLE _knack_load ({}) ON COMMIT DROP").format(
                sql.SQL(", ").join(defs)
            )
        )
        target = sql.Identifier("_knack_load")
    order = [ID, RECORD, DIGEST, *job.columns]
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, _names(order))
    options = pacsv.WriteOptions(include_header=False)
    sent = 0
    with conn.cursor() as cur, cur.copy(copy_sql, writer=QueuedLibpqWriter(cur)) as copy:
        for chunk in itertools.chain([first], pending):
            table = chunk.select(order)
            for start in range(0, table.num_rows, COPY_CHUNK_ROWS):
                buffer = io.BytesIO()
                pacsv.write_csv(table.slice(start, COPY_CHUNK_ROWS), buffer, options)
                copy.write(buffer.getbuffer())
            sent += table.num_rows
    return sent


def _upsert(conn: psycopg.Connection, job: Load) -> tuple[int, int]:
    """Insert the new rows, update those whose values differ; (inserted, updated). A row
    whose values are the table's keeps them and its ``_published_at`` (only its digest is
    brought up to date)."""
    content = [RECORD, *job.columns]
    mine = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in content)
    theirs = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in content)
    changed = sql.SQL("ROW({}) IS DISTINCT FROM ROW({})").format(mine, theirs)
    sets = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in [*content, DIGEST]]
    sets.append(
        sql.SQL(
            "_published_at = CASE WHEN {} THEN EXCLUDED._published_at ELSE t._published_at END"
        ).format(changed)
    )
    every = [ID, *content, DIGEST]
    query = sql.SQL(
        "WITH up AS (INSERT INTO {table} AS t ({cols}, _published_at) "
        "SELECT {cols}, now() FROM _knack_load "
        "ON CONFLICT (id) DO UPDATE SET {sets} WHERE {changed} OR t._digest IS DISTINCT FROM "
        "EXCLUDED._digest RETURNING (xmax = 0) AS inserted, _published_at = now() AS changed) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE changed AND NOT "
        "inserted) FROM up"
    ).format(
        table=job.name.ident, cols=_names(every), sets=sql.SQL(", ").join(sets), changed=changed
    )
    inserted, updated = conn.execute(query).fetchone()
    return int(inserted), int(updated)


def _delete_gone(conn: psycopg.Connection, job: Load, digests: dict[str, str]) -> list[str]:
    gone = sorted(set(digests) - job.ids)
    if not gone:
        return []
    refusal = job.guard(len(gone), len(digests), len(job.ids))
    if refusal:
        raise MassDeleteRefused(refusal)
    conn.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(job.name.ident), (gone,))
    return gone
