"""The durable inbox between camera receivers and the quality workers.

Life of an event: ``put`` (receiver; images fsynced, row committed, then the device gets its
200) -> ``claim`` (worker; takes a lease) -> ``complete`` with one report per image, or ``fail``.
A worker that dies mid-event simply lets its lease expire; the next ``claim`` re-runs the event.
An event whose leases expired ``max_attempts`` times is marked failed instead of being handed
out again, so one poisonous image cannot crash-loop the service.

Duplicates: an event with the same ``source`` + ``dedupe_key`` as a stored one, or the same
``payload_hash``, is not stored again; ``put`` returns the stored id with ``duplicate=True``.
Heartbeats and ``ignored`` events are only counted (per source and kind, with the time of the
last one), as are duplicates and stored face events.

Every method is synchronous and thread-safe: run them in an executor, never on the IOLoop.
On SQLite, writes are serialised by a lock (SQLite has one writer anyway); reads run
concurrently (WAL). Create one ``Inbox`` per process and pass its engine nowhere else.

Several processes on one PostgreSQL database (replicas) share one queue: ``claim`` takes the
oldest due event with ``FOR UPDATE SKIP LOCKED`` (claimers skip each other's rows instead of
queueing behind them), a lease that is not renewed expires and the event goes to the next
claimer (the replica that held it was killed), and ``complete`` writes the reports only by
moving the event to ``done`` in the same transaction: when two workers race on an event whose
lease expired under the first, exactly one writes its reports, crops and forward item; the
other's completion is a no-op. Images and crops live in the rows there (``app.push.blobs``).
The schema is managed by migrations (``app.push.schema``).

``list_events`` reports ``status`` as ``pending`` (queued or being processed), ``done`` or
``failed``; ``faces_accepted``/``faces_rejected`` are None until the event is done. Verdict
filters: ``accepted`` (at least one accepted face), ``rejected`` (faces, none accepted),
``no_face`` (done, no face found). Retention (``prune``) removes finished events only: pending
ones are the backlog, never dropped silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row

from app.push import schema, store
from app.push.blobs import Blobs, FileBlobs, RowBlobs
from app.push.event import CameraEvent, PushedImage, iso_utc

log = logging.getLogger(__name__)

VERDICTS = ("accepted", "rejected", "no_face")
_EVENT_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_FACE_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_ORPHAN_AGE_S = 3600.0
_CHUNK = 500


@dataclass(frozen=True)
class PutResult:
    """Outcome of ``Inbox.put``: the stored event's id (None for heartbeats/ignored)."""

    event_id: str | None
    duplicate: bool


@dataclass(frozen=True)
class ClaimedEvent:
    """An event handed to one worker under a lease, with its images read back from disk."""

    event_id: str
    source: str
    kind: str
    device_id: str | None
    event_time: datetime | None
    dedupe_key: str | None
    received_at: datetime
    attempts: int
    metadata: dict[str, Any] = field(hash=False)
    images: tuple[PushedImage, ...] = ()


@dataclass(frozen=True)
class ForwardItem:
    """One finished event waiting to be POSTed to ``forward_url``."""

    item_id: int
    event_id: str
    attempts: int
    payload: dict[str, Any] = field(hash=False)


class Inbox:
    """Durable event inbox over SQLAlchemy: SQLite (WAL) and files, or PostgreSQL alone."""

    def __init__(
        self,
        data_dir: str | Path = "var",
        *,
        engine: Engine | None = None,
        database_url: str | None = None,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 5,
        retry_base_s: float = 2.0,
        retry_cap_s: float = 300.0,
        pool_size: int = 5,
        prepare: bool = True,
    ) -> None:
        """Args:
        data_dir: the SQLite database and image files (unused with a server database).
        engine / database_url: the database; default SQLite under ``data_dir``.
        pool_size: connections kept to a server database (one per thread that calls in).
        prepare: make sure of the schema now (``prepare``); False leaves it to the caller,
            e.g. to retry while the database is down, and nothing connects here.
        """
        self._dir = Path(data_dir)
        self._own_engine = engine is None
        self._engine = engine or store.create_engine(self._dir, database_url, pool_size=pool_size)
        self._sqlite = store.is_sqlite(self._engine)
        self._blobs: Blobs = FileBlobs(self._dir) if self._sqlite else RowBlobs()
        self._clock = clock
        self._max_attempts = max(1, max_attempts)
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        # SQLite has one writer: queue this process's writers here rather than on busy errors.
        # A server database takes concurrent writers; its row locks order what must be ordered.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self._sqlite else contextlib.nullcontext()
        )
        if prepare:
            self.prepare()

    def prepare(self, *, upgrade: bool | None = None) -> str:
        """Make sure the schema fits this code; return its revision.

        Upgrades it by default on SQLite (the embedded store, one process per file), only
        checks it on a server database, whose upgrades are a deployment step
        (``python -m app db upgrade``). Raises ``schema.SchemaBehind``, or the driver's error
        when the database cannot be reached.
        """
        if self._sqlite if upgrade is None else upgrade:
            return schema.upgrade(self._engine)[1]
        return schema.check(self._engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self._engine.dialect.name)

    @property
    def data_dir(self) -> Path:
        return self._dir

    def close(self) -> None:
        """Release the engine's connections if this inbox created the engine."""
        if self._own_engine:
            self._engine.dispose()

    # -- receiving -------------------------------------------------------------------------

    def put(self, event: CameraEvent) -> PutResult:
        """Store a face event durably (or count a heartbeat/ignored one) before returning."""
        if event.kind != "face":
            self._count(event.source, event.kind)
            return PutResult(None, False)
        existing = self._find_duplicate(event)
        if existing is not None:
            self._count(event.source, "duplicate")
            return PutResult(existing, True)
        # Files first (if any), outside the lock, in a fresh folder per event; the unique
        # constraints catch a concurrent put of the same event, whose files are then removed.
        event_id = uuid.uuid4().hex
        try:
            image_rows = self._blobs.image_rows(event_id, event.images)
            with self._lock, self._engine.begin() as conn:
                now = self._clock()
                conn.execute(sa.insert(store.events).values(self._event_row(event_id, event, now)))
                if image_rows:
                    conn.execute(sa.insert(store.images), image_rows)
                self._bump(conn, event.source, "face", now)
        except sa.exc.IntegrityError:
            self._blobs.discard_event(event_id)
            existing = self._find_duplicate(event)
            if existing is None:
                raise
            self._count(event.source, "duplicate")
            return PutResult(existing, True)
        except BaseException:
            self._blobs.discard_event(event_id)
            raise
        log.debug("stored %s event %s with %d images", event.source, event_id, len(event.images))
        return PutResult(event_id, False)

    def _event_row(self, event_id: str, event: CameraEvent, now: float) -> dict[str, Any]:
        return {
            "id": event_id,
            "source": event.source,
            "kind": event.kind,
            "device_id": (event.device_id or None) and event.device_id[:255],
            "event_time": event.event_time.isoformat() if event.event_time else None,
            "dedupe_key": (event.dedupe_key or None) and event.dedupe_key[:255],
            "payload_hash": event.payload_hash,
            "metadata_json": _dumps(event.metadata),
            "status": "pending",
            "attempts": 0,
            "available_at": now,
            "received_at": now,
            "image_count": len(event.images),
        }

    def _find_duplicate(self, event: CameraEvent) -> str | None:
        conditions = [store.events.c.payload_hash == event.payload_hash]
        if event.dedupe_key:
            conditions.append(
                sa.and_(
                    store.events.c.source == event.source,
                    store.events.c.dedupe_key == event.dedupe_key[:255],
                )
            )
        query = sa.select(store.events.c.id).where(sa.or_(*conditions)).limit(1)
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def _count(self, source: str, kind: str) -> None:
        with self._lock, self._engine.begin() as conn:
            self._bump(conn, source, kind, self._clock())

    def _bump(self, conn: Connection, source: str, kind: str, now: float) -> None:
        # One upsert: replicas counting the first event of a kind at once must not collide.
        table = store.counters
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            dialect_insert(table)
            .values(source=source, kind=kind, count=1, last_at=now)
            .on_conflict_do_update(
                index_elements=[table.c.source, table.c.kind],
                set_={"count": table.c.count + 1, "last_at": now},
            )
        )

    def counters(self) -> dict[str, dict[str, int]]:
        """Return ``{source: {kind: count}}`` (kinds: face, heartbeat, ignored, duplicate)."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(store.counters)).all()
        result: dict[str, dict[str, int]] = {}
        for row in rows:
            result.setdefault(row.source, {})[row.kind] = int(row.count)
        return result

    # -- processing ------------------------------------------------------------------------

    def claim(self, worker_id: str, lease_seconds: float) -> ClaimedEvent | None:
        """Lease the oldest pending event (or one whose lease expired); None when idle."""
        table = store.events
        with self._lock:
            while True:
                now = self._clock()
                due = sa.or_(
                    sa.and_(table.c.status == "pending", table.c.available_at <= now),
                    sa.and_(table.c.status == "processing", table.c.lease_expires <= now),
                )
                with self._engine.begin() as conn:
                    # SKIP LOCKED (PostgreSQL; nothing on SQLite): a replica claiming at the
                    # same moment takes the next event instead of waiting for this one.
                    row = conn.execute(
                        sa.select(table)
                        .where(due)
                        .order_by(table.c.seq)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    ).first()
                    if row is None:
                        return None
                    if row.status == "processing" and row.attempts >= self._max_attempts:
                        self._give_up(conn, row, now)
                        continue
                    taken = conn.execute(
                        sa.update(table)
                        .where(table.c.id == row.id, due)
                        .values(
                            status="processing",
                            lease_owner=worker_id[:64],
                            lease_expires=now + lease_seconds,
                            attempts=table.c.attempts + 1,
                        )
                    )
                    if taken.rowcount != 1:
                        continue  # another process took it between select and update
                    image_rows = conn.execute(
                        sa.select(store.images)
                        .where(store.images.c.event_id == row.id)
                        .order_by(store.images.c.idx)
                    ).all()
                if row.status == "processing":
                    log.warning("re-running event %s after an expired lease", row.id)
                return self._claimed(row, image_rows)

    def _give_up(self, conn: Connection, row: Row[Any], now: float) -> None:
        log.error("event %s failed: lease expired %d times", row.id, row.attempts)
        conn.execute(
            sa.update(store.events)
            .where(store.events.c.id == row.id)
            .values(
                status="failed",
                finished_at=now,
                lease_owner=None,
                lease_expires=None,
                error=f"gave up after {row.attempts} attempts whose leases expired",
            )
        )

    def _claimed(self, row: Row[Any], image_rows: Iterable[Row[Any]]) -> ClaimedEvent:
        metadata = json.loads(row.metadata_json)
        loaded = []
        for image in image_rows:
            data = self._blobs.load(image)
            if data is None:
                log.error("event %s: image %d (%s) is missing", row.id, image.idx, image.path)
                metadata.setdefault("problems", []).append(f"missing_file:{image.idx}")
                continue
            loaded.append(PushedImage(image.role, data, image.content_type, image.name))
        return ClaimedEvent(
            event_id=row.id,
            source=row.source,
            kind=row.kind,
            device_id=row.device_id,
            event_time=datetime.fromisoformat(row.event_time) if row.event_time else None,
            dedupe_key=row.dedupe_key,
            received_at=datetime.fromtimestamp(row.received_at, UTC),
            attempts=int(row.attempts) + 1,
            metadata=metadata,
            images=tuple(loaded),
        )

    def complete(
        self,
        event_id: str,
        reports: Sequence[dict[str, Any]],
        *,
        forward: bool = False,
        crops: Sequence[tuple[str, bytes]] = (),
    ) -> bool:
        """Store one report per image (in image order) and the aligned ``crops``
        ``(face_id, PNG)``, mark the event done; return whether this call completed it.

        With ``forward=True`` the finished event (as ``get_event`` returns it) is queued for
        ``forward_url`` in the same transaction. Completing a done event is a no-op (False),
        also when another process completes it concurrently: the first ``UPDATE`` to ``done``
        wins, and the loser's transaction writes nothing. ``KeyError`` for an unknown event.
        """
        for face_id, _ in crops:
            _check_ids(event_id, face_id)
        table = store.events
        with self._engine.connect() as conn:
            if _event_value(conn, table.c.status, event_id) == "done":
                log.info("event %s was already completed", event_id)
                return False
        crop_rows = self._blobs.crop_rows(event_id, crops)  # files outside the lock, if any
        won = False
        try:
            with self._lock, self._engine.begin() as conn:
                now = self._clock()
                finished = conn.execute(
                    sa.update(table)
                    .where(table.c.id == event_id, table.c.status != "done")
                    .values(
                        status="done",
                        finished_at=now,
                        lease_owner=None,
                        lease_expires=None,
                        error=None,
                        faces_accepted=sum(_accepted(r) for r in reports),
                        faces_rejected=sum(_rejected(r) for r in reports),
                    )
                )
                if finished.rowcount != 1:
                    log.info("event %s was completed by another worker", event_id)
                    return False
                reports_table = store.reports
                conn.execute(sa.delete(reports_table).where(reports_table.c.event_id == event_id))
                if reports:
                    conn.execute(
                        sa.insert(reports_table),
                        [
                            {"event_id": event_id, "idx": i, "report_json": _dumps(report)}
                            for i, report in enumerate(reports)
                        ],
                    )
                self._replace_crops(conn, event_id, crop_rows)
                if forward:
                    payload = self._event_dict(conn, event_id)
                    if payload is not None:
                        self._enqueue(conn, event_id, payload, now)
                won = True
        finally:
            if not won:
                self._blobs.discard_crops(event_id, (face_id for face_id, _ in crops))
        return True

    def fail(self, event_id: str, error: str, retry: bool) -> None:
        """Record a processing error; retry later with backoff, or mark the event failed.

        A retry is refused (the event fails) once ``max_attempts`` claims were spent on it.
        """
        table = store.events
        with self._lock, self._engine.begin() as conn:
            attempts = _event_value(conn, table.c.attempts, event_id)
            now = self._clock()
            values: dict[str, Any] = {"lease_owner": None, "lease_expires": None}
            values["error"] = error[:2000]
            if retry and attempts < self._max_attempts:
                delay = min(self._retry_cap_s, self._retry_base_s * 2 ** max(attempts - 1, 0))
                values.update(status="pending", available_at=now + delay)
            else:
                values.update(status="failed", finished_at=now)
            conn.execute(sa.update(table).where(table.c.id == event_id).values(**values))

    def extend_lease(self, event_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Push back the lease ``worker_id`` holds on ``event_id``; False when it lost it."""
        table = store.events
        with self._lock, self._engine.begin() as conn:
            result = conn.execute(
                sa.update(table)
                .where(
                    table.c.id == event_id,
                    table.c.status == "processing",
                    table.c.lease_owner == worker_id[:64],
                )
                .values(lease_expires=self._clock() + lease_seconds)
            )
        return result.rowcount == 1

    def expire_leases(self, owner_prefix: str) -> int:
        """End the leases held by workers whose id starts with ``owner_prefix``; return how many.

        A restarted process calls this with its host's prefix: the workers that held those
        leases died with the old process, so their events are re-claimable at once (as an
        expired lease, so that ``max_attempts`` still stops a crash loop).
        """
        if not owner_prefix:
            raise ValueError("owner_prefix must not be empty")
        table = store.events
        escaped = owner_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._lock, self._engine.begin() as conn:
            now = self._clock()
            result = conn.execute(
                sa.update(table)
                .where(
                    table.c.status == "processing",
                    table.c.lease_owner.like(escaped + "%", escape="\\"),
                    table.c.lease_expires > now,
                )
                .values(lease_expires=now)
            )
        return int(result.rowcount or 0)

    def backlog(self) -> int:
        """Return how many events wait for or are in processing."""
        table = store.events
        query = sa.select(sa.func.count()).where(table.c.status.in_(("pending", "processing")))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- results API -----------------------------------------------------------------------

    def list_events(
        self,
        limit: int = 50,
        since_cursor: str | None = None,
        source: str | None = None,
        verdict: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return a page of events, newest first, and the cursor of the next page (or None).

        ``since_cursor`` is a ``next_cursor`` from a previous call: the page then continues
        with older events. Raises ValueError for a malformed cursor or an unknown verdict.
        """
        table = store.events
        limit = max(1, min(int(limit), 500))
        query = sa.select(table).order_by(table.c.seq.desc()).limit(limit + 1)
        if since_cursor:
            if not since_cursor.isdigit():
                raise ValueError("cursor must be the value of a previous next_cursor")
            query = query.where(table.c.seq < int(since_cursor))
        if source:
            query = query.where(table.c.source == source)
        if verdict:
            query = query.where(_verdict_condition(verdict))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
        return [_summary(row) for row in rows[:limit]], next_cursor

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """Return one event with metadata, image descriptions and reports, or None."""
        if not _EVENT_ID_RE.match(event_id):
            return None
        with self._engine.connect() as conn:
            return self._event_dict(conn, event_id)

    def _event_dict(self, conn: Connection, event_id: str) -> dict[str, Any] | None:
        row = conn.execute(sa.select(store.events).where(store.events.c.id == event_id)).first()
        if row is None:
            return None
        image_rows = conn.execute(
            sa.select(store.images)
            .where(store.images.c.event_id == event_id)
            .order_by(store.images.c.idx)
        ).all()
        report_rows = conn.execute(
            sa.select(store.reports.c.report_json)
            .where(store.reports.c.event_id == event_id)
            .order_by(store.reports.c.idx)
        ).all()
        result = _summary(row)
        result.update(
            {
                "kind": row.kind,
                "dedupe_key": row.dedupe_key,
                "attempts": int(row.attempts),
                "finished_at": iso_utc(row.finished_at),
                "error": row.error,
                "metadata": json.loads(row.metadata_json),
                "image_files": [
                    {
                        "index": image.idx,
                        "role": image.role,
                        "name": image.name,
                        "content_type": image.content_type,
                        "size": image.size,
                    }
                    for image in image_rows
                ],
                "reports": [json.loads(r.report_json) for r in report_rows],
            }
        )
        return result

    def put_crops(self, event_id: str, crops: Sequence[tuple[str, bytes]]) -> None:
        """Store (or replace) aligned crops ``(face_id, PNG bytes)`` of a stored event.

        Files, if any, are written (and fsynced) outside the lock, as ``put`` writes its
        images, so that pushes are not held up meanwhile; the rows then go in one transaction.
        A worker stores its crops with ``complete`` instead, so that only the completing
        worker's crops are kept.
        """
        for face_id, _ in crops:
            _check_ids(event_id, face_id)
        if not crops:
            return
        with self._engine.connect() as conn:
            _event_value(conn, store.events.c.seq, event_id)  # KeyError when there is none
        rows = self._blobs.crop_rows(event_id, crops)
        with self._lock, self._engine.begin() as conn:
            self._replace_crops(conn, event_id, rows)

    def _replace_crops(self, conn: Connection, event_id: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        table = store.crops
        face_ids = [row["face_id"] for row in rows]
        conn.execute(
            sa.delete(table).where(table.c.event_id == event_id, table.c.face_id.in_(face_ids))
        )
        conn.execute(sa.insert(table), rows)

    def get_crop(self, event_id: str, face_id: str) -> bytes | None:
        """Return a stored aligned crop's PNG bytes, or None."""
        if not _EVENT_ID_RE.match(event_id) or not _FACE_ID_RE.match(face_id):
            return None
        table = store.crops
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(table.c.path, table.c.data).where(
                    table.c.event_id == event_id, table.c.face_id == face_id
                )
            ).first()
        return None if row is None else self._blobs.load(row)

    def get_image(self, event_id: str, index: int) -> tuple[str, bytes] | None:
        """Return a stored pushed image's content type and bytes, or None."""
        if not _EVENT_ID_RE.match(event_id) or index < 0:
            return None
        table = store.images
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(table.c.content_type, table.c.path, table.c.data).where(
                    table.c.event_id == event_id, table.c.idx == index
                )
            ).first()
        data = None if row is None else self._blobs.load(row)
        return None if data is None else (row.content_type, data)

    # -- retention -------------------------------------------------------------------------

    def prune(self, max_age_seconds: float | None = None, max_events: int | None = None) -> int:
        """Delete finished events older than ``max_age_seconds`` and beyond the newest
        ``max_events``, with their files; also sweep old orphaned image folders.

        Returns the number of events removed.
        """
        table = store.events
        finished = table.c.status.in_(("done", "failed"))
        with self._lock:
            now = self._clock()
            doomed: set[str] = set()
            with self._engine.connect() as conn:
                if max_age_seconds is not None:
                    cutoff = now - max_age_seconds
                    doomed.update(
                        conn.execute(
                            sa.select(table.c.id).where(finished, table.c.received_at < cutoff)
                        ).scalars()
                    )
                if max_events is not None:
                    total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                    excess = int(total) - max(0, max_events)
                    if excess > 0:
                        doomed.update(
                            conn.execute(
                                sa.select(table.c.id)
                                .where(finished)
                                .order_by(table.c.seq)
                                .limit(excess)
                            ).scalars()
                        )
            ordered = sorted(doomed)
            for start in range(0, len(ordered), _CHUNK):
                chunk = ordered[start : start + _CHUNK]
                with self._engine.begin() as conn:
                    for child in (store.images, store.reports, store.crops, store.forwards):
                        conn.execute(sa.delete(child).where(child.c.event_id.in_(chunk)))
                    conn.execute(sa.delete(table).where(table.c.id.in_(chunk)))
                for event_id in chunk:
                    self._blobs.discard_event(event_id)
            self._sweep_orphans(now)
        if ordered:
            log.info("pruned %d finished events", len(ordered))
        return len(ordered)

    def _sweep_orphans(self, now: float) -> None:
        """Remove image folders whose event row never committed (a crash inside ``put``)."""
        candidates = self._blobs.orphan_candidates(now - _ORPHAN_AGE_S)
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start : start + _CHUNK]
            with self._engine.connect() as conn:
                known = set(
                    conn.execute(
                        sa.select(store.events.c.id).where(store.events.c.id.in_(chunk))
                    ).scalars()
                )
            for event_id in chunk:
                if event_id not in known:
                    log.warning("removing orphaned image folder %s", event_id)
                    self._blobs.discard_event(event_id)

    # -- forward queue ---------------------------------------------------------------------

    def enqueue_forward(self, event_id: str, payload: dict[str, Any]) -> int:
        """Queue ``payload`` (a finished event's JSON) for ``forward_url``; return the item id."""
        with self._lock, self._engine.begin() as conn:
            return self._enqueue(conn, event_id, payload, self._clock())

    def _enqueue(self, conn: Connection, event_id: str, payload: dict[str, Any], now: float) -> int:
        result = conn.execute(
            sa.insert(store.forwards).values(
                event_id=event_id,
                payload_json=_dumps(payload),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        return int(result.inserted_primary_key[0])

    def claim_forwards(self, limit: int = 10, lease_seconds: float = 60.0) -> list[ForwardItem]:
        """Return due items, oldest first, each hidden from other claims for ``lease_seconds``."""
        table = store.forwards
        with self._lock, self._engine.begin() as conn:
            now = self._clock()
            rows = conn.execute(
                sa.select(table)
                .where(table.c.status == "pending", table.c.next_attempt_at <= now)
                .order_by(table.c.seq)
                .limit(max(1, limit))
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                conn.execute(
                    sa.update(table)
                    .where(table.c.seq.in_([r.seq for r in rows]))
                    .values(next_attempt_at=now + lease_seconds)
                )
        return [
            ForwardItem(int(r.seq), r.event_id, int(r.attempts), json.loads(r.payload_json))
            for r in rows
        ]

    def forward_sent(self, item_id: int) -> None:
        """Mark a forward item delivered."""
        table = store.forwards
        with self._lock, self._engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.seq == item_id)
                .values(status="sent", sent_at=self._clock(), last_error=None)
            )

    def forward_failed(
        self,
        item_id: int,
        error: str,
        *,
        base_s: float = 5.0,
        cap_s: float = 3600.0,
        max_attempts: int = 20,
    ) -> None:
        """Reschedule a failed delivery with capped exponential backoff, or give it up."""
        table = store.forwards
        with self._lock, self._engine.begin() as conn:
            attempts = conn.execute(
                sa.select(table.c.attempts).where(table.c.seq == item_id)
            ).scalar_one_or_none()
            if attempts is None:
                return
            attempts = int(attempts) + 1
            values: dict[str, Any] = {"attempts": attempts, "last_error": error[:2000]}
            if attempts >= max_attempts:
                values["status"] = "dead"
                log.error("forward item %d given up after %d attempts", item_id, attempts)
            else:
                delay = min(cap_s, base_s * 2 ** (attempts - 1))
                values["next_attempt_at"] = self._clock() + delay
            conn.execute(sa.update(table).where(table.c.seq == item_id).values(**values))

    def forward_status(self, event_id: str) -> dict[str, Any] | None:
        """Return the latest forward item of an event (status, attempts, times), or None."""
        if not _EVENT_ID_RE.match(event_id):
            return None
        table = store.forwards
        query = (
            sa.select(table)
            .where(table.c.event_id == event_id)
            .order_by(table.c.seq.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return {
            "status": row.status,
            "attempts": int(row.attempts),
            "last_error": row.last_error,
            "next_attempt_at": iso_utc(row.next_attempt_at) if row.status == "pending" else None,
            "sent_at": iso_utc(row.sent_at),
        }

    def forward_backlog(self) -> int:
        """Return how many forward items are still to be delivered."""
        table = store.forwards
        with self._engine.connect() as conn:
            query = sa.select(sa.func.count()).where(table.c.status == "pending")
            return int(conn.execute(query).scalar_one())


def _event_value(conn: Connection, column: sa.Column[Any], event_id: str) -> Any:
    """One column of one event; ``KeyError`` when there is no such event."""
    value = conn.execute(
        sa.select(column).where(store.events.c.id == event_id)
    ).scalar_one_or_none()
    if value is None:
        raise KeyError(event_id)
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _summary(row: Row[Any]) -> dict[str, Any]:
    done = row.status == "done"
    return {
        "id": row.id,
        "source": row.source,
        "received_at": iso_utc(row.received_at),
        "status": "pending" if row.status in ("pending", "processing") else row.status,
        "images": int(row.image_count),
        "faces_accepted": row.faces_accepted if done else None,
        "faces_rejected": row.faces_rejected if done else None,
        "device_id": row.device_id,
        "event_time": row.event_time,
    }


def _verdict_condition(verdict: str) -> sa.ColumnElement[bool]:
    table = store.events
    done = table.c.status == "done"
    if verdict == "accepted":
        return sa.and_(done, table.c.faces_accepted > 0)
    if verdict == "rejected":
        return sa.and_(done, table.c.faces_accepted == 0, table.c.faces_rejected > 0)
    if verdict == "no_face":
        return sa.and_(done, table.c.faces_accepted == 0, table.c.faces_rejected == 0)
    raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")


def _count_value(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(value, 0)
    return None


def _accepted(report: dict[str, Any]) -> int:
    counted = _count_value(report.get("face_efficient_total_resp"))
    if counted is not None:
        return counted
    resp = report.get("resp")
    return len(resp) if isinstance(resp, list) else 0


def _rejected(report: dict[str, Any]) -> int:
    rejected = report.get("rejected")
    if isinstance(rejected, list):
        return len(rejected)
    total = _count_value(report.get("face_total"))
    if total is not None:
        return max(total - _accepted(report), 0)
    return 0


def _check_ids(event_id: str, face_id: str) -> None:
    if not _EVENT_ID_RE.match(event_id):
        raise ValueError("event_id must be 32 lower-case hex digits")
    if not _FACE_ID_RE.match(face_id):
        raise ValueError("face_id must be 1-64 characters of [0-9A-Za-z_-]")
