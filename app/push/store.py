"""Storage for the push inbox: SQLAlchemy Core tables, engine set-up and durable image files.

The schema uses portable types only (times are Unix seconds as floats, JSON is text, image
bytes ``LargeBinary``), so the same tables and the same migrations (``app.push.migrations``,
applied by ``app.push.schema``) serve SQLite and PostgreSQL; dialect settings live in
``create_engine`` alone. ``metadata`` below is what the migrations build, tested so.

SQLite runs in WAL mode with ``synchronous=FULL``: a committed event survives power loss, which
is what lets the receiver answer 200 right after ``Inbox.put`` returns. Image files are written
and fsynced (file and directory) before the row that names them is committed. With PostgreSQL
the bytes are in the row itself (``data``; see ``app.push.blobs``) and the commit is durable
when it returns (``synchronous_commit`` on, the server's default).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

DB_FILENAME = "faceq.db"

metadata = sa.MetaData()

events = sa.Table(
    "push_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("device_id", sa.String(255)),
    sa.Column("event_time", sa.String(40)),  # ISO-8601 with the device's own UTC offset
    sa.Column("dedupe_key", sa.String(255)),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    sa.Column("metadata_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending|processing|done|failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("available_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires", sa.Float),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("image_count", sa.Integer, nullable=False),
    sa.Column("faces_accepted", sa.Integer),
    sa.Column("faces_rejected", sa.Integer),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("source", "dedupe_key", name="uq_push_events_source_key"),
    sa.Index("ix_push_events_payload_hash", "payload_hash", unique=True),
    sa.Index("ix_push_events_status_seq", "status", "seq"),
    sa.Index("ix_push_events_received_at", "received_at"),
)

images = sa.Table(
    "push_images",
    metadata,
    sa.Column("event_id", sa.String(32), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("path", sa.String(255)),  # relative to the data dir (file storage)
    sa.Column("data", sa.LargeBinary),  # the bytes themselves (row storage)
)

reports = sa.Table(
    "push_reports",
    metadata,
    sa.Column("event_id", sa.String(32), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("report_json", sa.Text, nullable=False),
)

crops = sa.Table(
    "push_crops",
    metadata,
    sa.Column("event_id", sa.String(32), primary_key=True),
    sa.Column("face_id", sa.String(64), primary_key=True),
    sa.Column("path", sa.String(255)),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary),
)

counters = sa.Table(
    "push_counters",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # face|heartbeat|ignored|duplicate
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
)

forwards = sa.Table(
    "push_forwards",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(32), nullable=False, index=True),
    sa.Column("payload_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending|sent|dead
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("sent_at", sa.Float),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_push_forwards_status_next", "status", "next_attempt_at"),
)


def database_url(data_dir: Path) -> str:
    """Return the embedded SQLite URL for ``data_dir``."""
    return f"sqlite:///{(data_dir / DB_FILENAME).resolve()}"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(
    data_dir: Path, url: str | None = None, *, pool_size: int = 5, connect_timeout_s: int = 5
) -> Engine:
    """Create the process's one Engine; SQLite gets WAL, full sync and a busy timeout.

    With a server database the pool holds ``pool_size`` connections (the caller sizes it from
    the threads that use it, so none waits for a connection), each checked before use, and a
    connection attempt gives up after ``connect_timeout_s`` so that a database that is down
    turns into an error quickly rather than a hung push. Nothing connects here.
    """
    url = url or database_url(data_dir)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        url,
        pool_size=max(1, pool_size),
        max_overflow=2,
        pool_timeout=30,
        pool_pre_ping=True,
        pool_recycle=1800,
        hide_parameters=True,  # parameters carry image bytes and device metadata
        connect_args={"connect_timeout": connect_timeout_s, "application_name": "faceq"},
    )


def describe_error(exc: BaseException, url: str | None) -> str:
    """One line about a database error, without the password of ``url`` (whatever the driver
    put in its message)."""
    inner = getattr(exc, "orig", None) or exc
    text = " ".join(str(inner).split()) or type(inner).__name__
    if url:
        try:
            password = sa.engine.make_url(url).password
        except (sa.exc.ArgumentError, ValueError):
            password = None
        if password:
            text = text.replace(str(password), "***")
    return text[:300]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the file itself is synced
    finally:
        os.close(fd)


def make_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make the new entry durable in its parent."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    fsync_dir(path.parent)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync it, rename it, fsync the folder."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """Remove a directory tree, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)
