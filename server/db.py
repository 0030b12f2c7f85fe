"""Database plumbing: the declarative base, column types both backends share, engines and sessions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, MetaData, Table, create_engine, event, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both backends (SQLite keeps no zone, so we store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must carry a time zone")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# JSONB on PostgreSQL (indexable), JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Base of every ORM model."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the per-backend settings Curbstop relies on."""
    # Register every feature's tables, so foreign keys resolve whichever models the caller imported.
    import server.models  # noqa: F401

    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite opens and commits transactions on its own, which breaks SAVEPOINT and
            # transactional DDL; take control and emit BEGIN ourselves (SQLAlchemy's documented recipe).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # SQLite ignores FKs unless asked
            cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front. A deferred transaction that reads and then
            # writes fails at once ("database is locked", no busy wait) when another connection
            # committed in between; taking the lock first makes concurrent writers queue instead.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def configure(url: str) -> Engine:
    """Point the process at a database (called once at start-up)."""
    global _engine, _session_factory
    if _engine is not None:
        _engine.dispose()
    _engine = make_engine(url)
    _session_factory = sessionmaker(bind=_engine, expire_on_commit=False)
    return _engine


def get_engine() -> Engine:
    """The configured engine, configuring from settings on first use."""
    if _engine is None:
        from server.config import get_settings

        configure(get_settings().resolved_database_url())
    assert _engine is not None
    return _engine


def session_factory() -> sessionmaker[Session]:
    """The process-wide session factory."""
    get_engine()
    assert _session_factory is not None
    return _session_factory


def get_db() -> Iterator[Session]:
    """FastAPI dependency: a session per request, committed by the service layer, closed at the end."""
    session = session_factory()()
    try:
        yield session
    finally:
        session.close()


def copy_rows(
    db_session: Session, table: Table, rows: Sequence[dict[str, Any]], *, into: str | None = None
) -> list[str]:
    """COPY `rows` into `table` (or the table named `into` with the same columns) on PostgreSQL, in the
    session's transaction; return the columns written.

    Columns missing from the rows get the column's Python-side default (what an ORM INSERT would fill);
    values go through the column types' bind processing (UTC timestamps), dicts and lists as JSONB.
    """
    from psycopg.types.json import Jsonb

    given = list(rows[0])
    defaults: dict[str, Any] = {}
    for col in table.columns:
        if col.name in given or col.primary_key or col.default is None:
            continue
        default = col.default
        defaults[col.name] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
    columns = given + list(defaults)
    dialect = db_session.get_bind().dialect
    processors = [table.c[name].type.bind_processor(dialect) for name in columns]
    quoted = ", ".join(f'"{c}"' for c in columns)
    raw = db_session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f'COPY "{into or table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            values = []
            for name, process in zip(columns, processors, strict=True):
                value = row[name] if name in row else defaults[name]
                if process is not None:
                    value = process(value)
                values.append(Jsonb(value) if isinstance(value, dict | list) else value)
            copy.write_row(values)
    return columns


def bulk_insert(
    db_session: Session, table: Table, rows: Sequence[dict[str, Any]], *, chunk: int = 5000
) -> None:
    """Insert many rows that need no ids back: COPY on PostgreSQL (several times faster than a pipelined
    executemany for thousands of rows), executemany in chunks elsewhere."""
    if not rows:
        return
    if db_session.get_bind().dialect.name == "postgresql":
        copy_rows(db_session, table, rows)
        return
    for i in range(0, len(rows), chunk):
        db_session.execute(insert(table), rows[i : i + chunk])
