"""The inbox schema's version: Alembic migrations, the same revisions on SQLite and PostgreSQL.

``upgrade`` brings a database to the newest revision (``python -m app db upgrade``; the
embedded SQLite store does it itself when it opens). ``check`` is what a replica does at
start-up against a shared database: it refuses a schema that is behind (``SchemaBehind``, whose
message is the one line to show) instead of failing later on a missing column.

Concurrent upgrades (every pod's init container at once) are serialised by a PostgreSQL
advisory lock held for the migration's transaction; PostgreSQL's DDL is transactional, so a
failed upgrade leaves the previous revision in place.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema of the versions that predate migrations
_LOCK_KEY = 0x66616365_71  # "faceq": one advisory lock for every upgrade of this schema


class SchemaBehind(RuntimeError):
    """The database's schema is older than this version of the code needs (one-line message)."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """Return the newest revision the code knows."""
    heads = ScriptDirectory.from_config(_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads; merge them")
    return heads[0]


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions())


def current(connection: Connection) -> str | None:
    """Return the database's revision (None: no migrations applied)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Apply the pending migrations up to ``target`` in one transaction; return the revision
    before and after."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        before = current(conn)
        config = _config(conn)
        if before is None and sa.inspect(conn).has_table("push_events"):
            log.info("database predates migrations: stamping it at revision %s", BASELINE)
            command.stamp(config, BASELINE)
        command.upgrade(config, target)
        after = current(conn)
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "nothing", after)
    return before, after or head()


def check(engine: Engine) -> str:
    """Return the database's revision if the code can run on it; raise ``SchemaBehind`` if not.

    A revision this code does not know is newer (a later version migrated first, as in a
    rolling update): allowed, with a warning, since migrations only add.
    """
    with engine.connect() as conn:
        revision = current(conn)
    wanted = head()
    if revision == wanted:
        return revision
    if revision is None:
        raise SchemaBehind(
            f"the database has no faceq schema (this version needs revision {wanted}): "
            "run `python -m app db upgrade`"
        )
    if revision in _known():
        raise SchemaBehind(
            f"the database schema is at revision {revision}, this version needs {wanted}: "
            "run `python -m app db upgrade`"
        )
    log.warning("database schema revision %s is newer than this version's %s", revision, wanted)
    return revision
