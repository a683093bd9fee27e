"""The schema check ``SqlSessionStore`` makes on first use: the tables created when missing, a
version 1 table migrated in place, the recorded version checked.

Version 1 kept ``metadata`` as ``JSONB`` on PostgreSQL and ``JSON`` on MySQL/MariaDB, which
refuse some of what ``dumps`` writes (``\\u0000`` and lone surrogate escapes in ``JSONB``, a
lone surrogate in MariaDB's ``JSON``). Version 2 keeps it as the text written (see
``_sql_schema``). The migration changes the column's type in place, each row keeping the JSON
the old column held (written out as that column does: the same values, keys perhaps in
another order), and records version 2: in the check's own transaction on PostgreSQL and
SQLite; on MySQL/MariaDB, whose ``ALTER TABLE`` commits by itself, the column first, then the
version, so a migration cut short between them runs again (the second ``ALTER`` finds the type
already changed). Only a store allowed to ``create`` migrates: it is the one that makes DDL.

Stores opening one table take turns through the check, under a lock taken before anything
else touches the tables (so no opener waits for it while holding a lock on them): PostgreSQL's
``pg_advisory_xact_lock`` for the transaction, MySQL's ``GET_LOCK`` held by the connection
until the transaction is committed. SQLite runs one writer at a time. The first opener of a
version 1 table migrates it; the others find version 2.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from ..errors import StoreError
from ._sql_schema import SCHEMA_NAME, SCHEMA_VERSION, Schema

__all__ = ["check_schema"]

_LOCK_WAIT = 600  # seconds an opener waits for MySQL's schema lock: a migration may copy the table


def check_schema(connection: sa.Connection, schema: Schema, dialect: str, create: bool) -> None:
    """Create (with ``create``) and migrate (with ``create``) the tables, then check the
    recorded version: ``StoreError`` unless it is this release's.

    ``connection`` must be outside any transaction: the check is one of its own, under the
    table's schema lock.
    """
    name = f"simulacra:{schema.sessions.name}"  # within MySQL's 64 characters
    if dialect in ("mysql", "mariadb"):
        granted = connection.execute(sa.select(sa.func.get_lock(name, _LOCK_WAIT))).scalar()
        connection.commit()
        if granted != 1:
            raise StoreError(f"schema lock {name!r} not granted within {_LOCK_WAIT} s")
        try:
            with connection.begin():
                found = _create_and_migrate(connection, schema, dialect, create)
        finally:
            connection.execute(sa.select(sa.func.release_lock(name)))
            connection.commit()
    else:
        with connection.begin():
            if dialect == "postgresql":
                digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
                key = sa.literal(int.from_bytes(digest, "big", signed=True), sa.BigInteger)
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
            found = _create_and_migrate(connection, schema, dialect, create)
    if found != SCHEMA_VERSION:
        hint = ""
        if not create and found is None:
            hint = " (create=False: create the tables first)"
        elif not create and found == 1:
            hint = " (create=False: open it once with create=True to migrate it)"
        raise StoreError(
            f"table {schema.version.name!r} records schema version {found}; this release reads "
            f"version {SCHEMA_VERSION}{hint}"
        )


def _recorded(connection: sa.Connection, schema: Schema) -> int | None:
    version = schema.version
    found = connection.execute(sa.select(version.c.version).where(version.c.name == SCHEMA_NAME)).scalar()
    return None if found is None else int(found)


def _create_and_migrate(connection: sa.Connection, schema: Schema, dialect: str, create: bool) -> int | None:
    """The version recorded once the tables are created and migrated (when ``create``)."""
    if create:
        schema.create(connection, dialect)
        connection.execute(schema.record_version(dialect))
    found = _recorded(connection, schema)
    if create and found == 1:
        _migrate_from_1(connection, schema, dialect)
        return SCHEMA_VERSION
    return found


def _migrate_from_1(connection: sa.Connection, schema: Schema, dialect: str) -> None:
    """``metadata`` to this release's text column type, then version 2 recorded."""
    preparer = connection.dialect.identifier_preparer
    table = preparer.format_table(schema.sessions)
    column = preparer.format_column(schema.sessions.c.metadata)
    kind = schema.sessions.c.metadata.type.compile(dialect=connection.dialect)
    if dialect == "postgresql":
        using = f"{column}::text::{kind}"
        connection.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind} USING {using}")
    elif dialect != "sqlite":  # SQLite's column was TEXT already
        connection.exec_driver_sql(f"ALTER TABLE {table} MODIFY COLUMN {column} {kind} NOT NULL")
    version = schema.version
    recorded = sa.and_(version.c.name == SCHEMA_NAME, version.c.version == 1)
    connection.execute(sa.update(version).where(recorded).values(version=SCHEMA_VERSION))
