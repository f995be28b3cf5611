"""Camera and AI-box intake wired into the running service.

``install(services)`` creates one ``CameraService`` per application and registers it in
``services.extras``: ``camera`` (what the handlers use), the ``on_start`` / ``on_stop`` /
``on_ready`` hooks, and ``readiness_details`` (``camera``, plus ``sophon_ws`` when boxes are
configured). It owns:

- the durable ``Inbox``: SQLite under ``settings.data_dir``, or the shared database of
  ``settings.database_url`` (PostgreSQL: every replica's one queue and store);
- a small intake thread pool for parsing bodies and every inbox call, so the IOLoop never
  blocks on parsing, fsync or the database, and intake never waits for the models. Every
  database call runs on it, so the connection pool has one connection per intake thread
  (``intake_threads``, at least ``inbox_workers`` + 3: the workers' claims, the forwarder and
  the stats loop never starve intake) and no call waits for a connection;
- ``settings.inbox_workers`` worker tasks: claim an event (with a lease), run every image
  through the pipeline on the *model executor's* thread (``executor.run_blocking``: no
  admission limit, but never beside an /upload model call), store the reports and the
  accepted faces' aligned crops, mark the event done. 0 workers: store, never process;
- the SE-box WebSocket subscriber, the forwarder, and retention (at start, then every
  ``retention_every_s``).

Crash safety: a worker id is ``<host>/<instance>/<n>``. With SQLite (one process per data dir)
every lease held by an earlier process on this host is ended at start (``Inbox.expire_leases``),
so its half-done events re-run at once. On a shared database a lease ends by expiry only, after
``settings.lease_seconds`` (another live replica may share the host name): the events of a
killed replica, or of a restarted one, are taken over then. A worker renews its lease every
third of that while it runs.

The database: the first connection is tried in ``start``; a schema that is behind stops
start-up (``SchemaBehind``, one line). A database that cannot be reached does not: ``/readyz``
answers 503 with the reason (``/livez`` stays 200), and the connection is retried with backoff
(1 s doubling to 30 s); workers, forwarder, retention and the SE-box subscriber start once it
answers. Lost while running: pushes are answered 503 (the device keeps the event and retries)
and ``/readyz`` turns 503 until the stats loop reaches the database again. Reasons shown or
logged never carry the password.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from app.push import eventinfo, hikvision, sniff, sophon
from app.push.access import PushAccess
from app.push.assess import ImageOutcome, assess_pushed
from app.push.event import CameraEvent
from app.push.forward import Forwarder
from app.push.inbox import ClaimedEvent, Inbox
from app.push.schema import SchemaBehind
from app.push.sophon_ws import SophonWsSubscriber, SophonWsTarget
from app.push.store import describe_error
from app.services import Services
from app.settings import redact_url

log = logging.getLogger(__name__)

T = TypeVar("T")

PARSERS: dict[str, Callable[[bytes, str | None], list[CameraEvent]]] = {
    "eventinfo": eventinfo.parse,
    "hikvision": hikvision.parse,
    "sophon_http": sophon.parse,
}


@dataclass
class CameraTuning:
    """Timing knobs that are not settings; tests shorten them through ``start_server(setup)``."""

    intake_threads: int = 4
    # Idle workers look for work this often even without a wake-up: how soon a replica takes
    # events pushed to another one (short polling of the shared queue).
    poll_s: float = 1.0
    lease_s: float | None = None  # None: settings.lease_seconds
    retention_every_s: float = 600.0
    stats_every_s: float = 2.0
    reconnect_first_s: float = 1.0
    reconnect_max_s: float = 30.0


@dataclass(frozen=True)
class IntakeResult:
    """What one push body became: the parser used, new and duplicate event ids, counted ones."""

    kind: str | None
    stored: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()
    counted: int = 0  # heartbeats and ignored events

    @property
    def parsed(self) -> bool:
        return bool(self.stored or self.duplicates or self.counted)


def parse_push(
    route_kind: str | None, body: bytes, content_type: str | None
) -> tuple[str | None, list[CameraEvent]]:
    """Parse a push body with the route's parser, else with the one the body looks like.

    Returns:
        The parser name that produced the events (or the route's, or None), and the events.
    """
    if route_kind is not None:
        events = PARSERS[route_kind](body, content_type)
        if events:
            return route_kind, events
    try:
        detected = sniff.detect_kind(body, content_type)
    except Exception:  # sniffing must never cost the device its 200
        log.exception("push format detection failed on a %d-byte body", len(body))
        detected = None
    if detected is None or detected == route_kind:
        return route_kind, []
    return detected, PARSERS[detected](body, content_type)


class CameraService:
    """The inbox, intake pool, workers, subscriber, forwarder and retention of one app."""

    def __init__(self, services: Services, tuning: CameraTuning | None = None) -> None:
        settings = services.settings
        self.services = services
        self.settings = settings
        self.tuning = tuning or CameraTuning()
        threads = max(self.tuning.intake_threads, settings.inbox_workers + 3)
        self.inbox = Inbox(
            settings.data_dir,
            database_url=settings.database_url,
            pool_size=threads,
            prepare=False,  # start() connects, and keeps trying while the database is down
        )
        self.lease_s = self.tuning.lease_s or settings.lease_seconds
        self.access = PushAccess(services.tokens, settings.push_allow)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="push-intake"
        )
        targets = [SophonWsTarget.from_mapping(t) for t in settings.sophon_ws]
        self.subscriber = SophonWsSubscriber(targets, self._on_ws_event) if targets else None
        self.forwarder = (
            Forwarder(
                self.inbox,
                settings.forward_url,
                self.run_db,
                accepted_only=settings.forward_accepted_only,
            )
            if settings.forward_url
            else None
        )
        self.host = socket.gethostname()[:40] or "localhost"
        self.instance = f"{self.host}/{uuid.uuid4().hex[:8]}"
        self._wakers: list[asyncio.Event] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._running = False  # workers & co. started: the database answered once
        self.db_error: str | None = "not connected yet"
        self.schema_revision: str | None = None
        self.backlog = 0
        self.forward_backlog = 0
        self.processed = 0
        self.unparsed = 0
        self.truncated = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (raising ``SchemaBehind`` for a schema that is behind), then resume
        unfinished work and start workers, subscriber, forwarder and retention; if the database
        cannot be reached, keep trying in the background meanwhile."""
        self._stopping = False
        try:
            connected = await self._connect()
        except SchemaBehind:
            self._pool.shutdown(wait=False)
            self.inbox.close()
            raise
        if connected:
            await self._begin()
        else:
            self._spawn(self._connect_loop())

    async def _connect(self, *, first: bool = True) -> bool:
        """One attempt to reach the database and check (SQLite: upgrade) its schema."""
        try:
            self.schema_revision = await self.run_db(self.inbox.prepare)
        except SchemaBehind as exc:
            self.db_error = str(exc)
            log.error("database: %s", exc)
            if first:
                raise
            return False
        except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
            self.db_error = f"database unavailable: {self.describe(exc)}"
            log.warning("%s (retrying)", self.db_error)
            return False
        self.db_error = None
        log.info(
            "database %s at schema revision %s (%s)",
            self.inbox.backend,
            self.schema_revision,
            redact_url(self.settings.database_url) or "SQLite in the data folder",
        )
        return True

    async def _connect_loop(self) -> None:
        delay = self.tuning.reconnect_first_s
        while not self._stopping:
            await asyncio.sleep(delay)
            if await self._connect(first=False):
                await self._begin()
                return
            delay = min(delay * 2, self.tuning.reconnect_max_s)

    def describe(self, exc: BaseException) -> str:
        """One line about a database error, without the password."""
        return describe_error(exc, self.settings.database_url)

    def _database_lost(self, exc: BaseException) -> None:
        if self.db_error is None:
            log.error("database lost: %s", self.describe(exc))
        self.db_error = f"database unavailable: {self.describe(exc)}"

    def database_problem(self) -> str | None:
        """Why the database keeps this replica from being ready, or None (a readiness gate)."""
        return self.db_error

    def database_details(self) -> dict[str, Any]:
        """The ``database`` entry of ``/readyz`` (no I/O)."""
        return {
            "backend": self.inbox.backend,
            "ready": self.db_error is None,
            "schema_revision": self.schema_revision,
            "error": self.db_error,
        }

    async def _begin(self) -> None:
        self._running = True
        if self.inbox.backend == "sqlite":
            # One process per SQLite file: leases of this host's workers are an earlier run's.
            # On a shared database another live replica may run on this host (same name):
            # there leases end by expiry only.
            released = await self.run_db(self.inbox.expire_leases, self.host + "/")
            if released:
                log.warning("re-running %d events left unfinished by an earlier run", released)
        self._spawn(self._retention_loop())
        self._spawn(self._stats_loop())
        for n in range(self.settings.inbox_workers):
            waker = asyncio.Event()
            self._wakers.append(waker)
            self._spawn(self._worker(n, waker))
        if self.forwarder is not None:
            self._spawn(self.forwarder.run())
        if self.subscriber is not None:
            await self.subscriber.start()
        log.info(
            "camera intake ready: %d workers (ids %s/<n>), %d SE boxes, forwarding %s",
            self.settings.inbox_workers,
            self.instance,
            len(self.settings.sophon_ws),
            "on" if self.forwarder else "off",
        )

    async def stop(self) -> None:
        """Stop every loop; a half-processed event keeps its lease and re-runs next start."""
        self._stopping = True
        self._running = False
        self.wake()
        if self.subscriber is not None:
            await self.subscriber.stop()
        if self.forwarder is not None:
            self.forwarder.stop()
        if self._background:  # salvage of cut-short pushes: let it reach the inbox
            await asyncio.wait(list(self._background), timeout=10)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pool.shutdown(wait=False)
        self.inbox.close()

    def wake(self) -> None:
        """Tell idle workers that there may be work (new event, models ready)."""
        for waker in self._wakers:
            waker.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._tasks.append(asyncio.create_task(coro))

    async def run_db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking inbox call (or parse) on the intake pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    # -- intake ---------------------------------------------------------------------------

    async def intake(
        self, route_kind: str | None, body: bytes, content_type: str | None
    ) -> IntakeResult:
        """Parse and durably store a push body (off the IOLoop); return what it became."""
        try:
            result = await self.run_db(self._intake, route_kind, body, content_type)
        except sa.exc.DBAPIError as exc:
            # Not ready until the stats loop reaches the database again; the device gets a 503.
            self._database_lost(exc)
            raise
        if result.stored:
            self.wake()
        if not result.parsed:
            self.unparsed += 1
            log.warning(
                "a %d-byte push to the %s receiver matched no format (Content-Type %.60r)",
                len(body),
                route_kind or "generic",
                content_type,
            )
        return result

    def _intake(
        self, route_kind: str | None, body: bytes, content_type: str | None
    ) -> IntakeResult:
        kind, events = parse_push(route_kind, body, content_type)
        stored: list[str] = []
        duplicates: list[str] = []
        counted = 0
        for event in events:
            put = self.inbox.put(event)
            if put.event_id is None:
                counted += 1
            elif put.duplicate:
                duplicates.append(put.event_id)
            else:
                stored.append(put.event_id)
        return IntakeResult(kind, tuple(stored), tuple(duplicates), counted)

    def intake_cut_short(
        self, route_kind: str | None, body: bytes, content_type: str | None
    ) -> None:
        """Store the complete parts of a body whose device closed mid-way (no answer possible)."""
        self.truncated += 1

        async def salvage() -> None:
            try:
                result = await self.intake(route_kind, body, content_type)
            except Exception:
                log.exception("could not store a push cut short after %d bytes", len(body))
                return
            log.info(
                "push cut short after %d bytes: %d events stored, %d duplicates",
                len(body),
                len(result.stored),
                len(result.duplicates),
            )

        task = asyncio.get_running_loop().create_task(salvage())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _on_ws_event(self, event: CameraEvent) -> None:
        put = await self.run_db(self.inbox.put, event)
        if put.event_id is not None and not put.duplicate:
            self.wake()

    # -- processing -----------------------------------------------------------------------

    async def _worker(self, n: int, waker: asyncio.Event) -> None:
        worker_id = f"{self.instance}/{n}"
        while not self._stopping:
            claimed = None
            pipeline = self.services.models.pipeline
            if pipeline is not None:
                waker.clear()  # before claiming: a put after this wakes the wait below
                try:
                    claimed = await self.run_db(self.inbox.claim, worker_id, self.lease_s)
                except sa.exc.DBAPIError as exc:
                    log.warning("claiming a camera event failed: %s", self.describe(exc))
                except Exception:
                    log.exception("claiming a camera event failed")
            if claimed is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waker.wait(), self.tuning.poll_s)
                continue
            await self._process(claimed, pipeline, worker_id)

    async def _keep_lease(self, event_id: str, worker_id: str) -> None:
        """Renew the lease every third of its length while the event runs: a long event
        behind busy uploads must not be handed to a second worker, and a killed replica's
        lease must still run out soon."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                held = await self.run_db(self.inbox.extend_lease, event_id, worker_id, self.lease_s)
            except Exception as exc:  # noqa: BLE001 - try again next time; the lease may hold
                log.warning("renewing the lease on event %s failed: %s", event_id, exc)
                continue
            if not held:
                log.warning(
                    "lost the lease on event %s; the first to finish completes it", event_id
                )
                return

    async def _process(self, event: ClaimedEvent, pipeline: Any, worker_id: str) -> None:
        start = time.perf_counter()
        settings = self.settings
        forward = False
        outcomes: list[ImageOutcome] = []
        renewer = asyncio.create_task(self._keep_lease(event.event_id, worker_id))
        try:
            for index, image in enumerate(event.images):
                future = self.services.executor.run_blocking(
                    assess_pushed,
                    pipeline,
                    image,
                    index,
                    self.services.policy,
                    settings.max_image_bytes,
                )
                outcomes.append(await asyncio.wrap_future(future))
            accepted = sum(len(o.crops) for o in outcomes)
            forward = self.forwarder is not None and (
                accepted > 0 or not settings.forward_accepted_only
            )
            completed = await self.run_db(self._finish, event.event_id, outcomes, forward)
        except Exception as exc:
            log.exception("event %s failed (attempt %d)", event.event_id, event.attempts)
            with contextlib.suppress(Exception):
                await self.run_db(self.inbox.fail, event.event_id, type(exc).__name__, True)
            return
        finally:
            renewer.cancel()
        if not completed:
            return  # another worker (its lease had expired under this one) completed it first
        self.processed += 1
        self._record_metrics(event.source, outcomes)
        if forward and self.forwarder is not None:
            self.forwarder.wake()
        log.info(
            "processed %s event %s: %d images, %d accepted faces in %.0f ms",
            event.source,
            event.event_id,
            len(outcomes),
            accepted,
            (time.perf_counter() - start) * 1000.0,
        )

    def _finish(self, event_id: str, outcomes: list[ImageOutcome], forward: bool) -> bool:
        """Store reports and crops in one completion (a done event always has its crops)."""
        return self.inbox.complete(
            event_id,
            [o.report for o in outcomes],
            forward=forward,
            crops=[crop for o in outcomes for crop in o.crops],
        )

    def _record_metrics(self, source: str, outcomes: list[ImageOutcome]) -> None:
        record = self.services.metrics.record_image
        for outcome in outcomes:
            if outcome.assessed:
                record(source, outcome.report["timing_ms"], outcome.reasons)

    # -- housekeeping ---------------------------------------------------------------------

    async def _retention_loop(self) -> None:
        days = self.settings.retention_days
        max_age = days * 86400.0 if days > 0 else None
        while not self._stopping:
            try:
                await self.run_db(self.inbox.prune, max_age, self.settings.retention_max_events)
            except Exception:
                log.exception("retention run failed")
            await asyncio.sleep(self.tuning.retention_every_s)

    async def _stats_loop(self) -> None:
        """Refresh the cached figures; also how a lost database is noticed, and its return."""
        while not self._stopping:
            try:
                self.backlog = await self.run_db(self.inbox.backlog)
                self.forward_backlog = await self.run_db(self.inbox.forward_backlog)
            except sa.exc.DBAPIError as exc:
                self._database_lost(exc)
            except Exception:
                log.exception("reading the inbox backlog failed")
            else:
                if self.db_error is not None:
                    log.info("database reachable again")
                self.db_error = None
            await asyncio.sleep(self.tuning.stats_every_s)

    def details(self) -> dict[str, Any]:
        """The ``camera`` entry of ``/readyz`` (cached figures: no I/O on the IOLoop)."""
        out: dict[str, Any] = {
            "workers": self.settings.inbox_workers,
            "backlog": self.backlog,
            "processed": self.processed,
            "unparsed_pushes": self.unparsed,
            "cut_short_pushes": self.truncated,
        }
        if self.forwarder is not None:
            forward = self.forwarder.state()
            out["forward"] = {"backlog": self.forward_backlog, **forward}
        return out

    def sophon_ws_state(self) -> list[dict[str, Any]]:
        return self.subscriber.state() if self.subscriber is not None else []


def install(services: Services, tuning: CameraTuning | None = None) -> CameraService:
    """Create the camera service of ``services`` and register its hooks and details."""
    camera = CameraService(services, tuning)
    extras = services.extras
    extras["camera"] = camera
    extras.setdefault("on_start", []).append(camera.start)
    extras.setdefault("on_stop", []).append(camera.stop)
    extras.setdefault("on_ready", []).append(camera.wake)
    details = extras.setdefault("readiness_details", {})
    details["camera"] = camera.details
    details["database"] = camera.database_details
    extras.setdefault("readiness_gates", []).append(camera.database_problem)
    if camera.subscriber is not None:
        details["sophon_ws"] = camera.sophon_ws_state
    services.metrics.track_inbox_backlog(lambda: camera.backlog)
    if camera.subscriber is not None:
        _track_sophon_ws(services.metrics.registry, camera.subscriber)
    return camera


def _track_sophon_ws(registry: Any, subscriber: SophonWsSubscriber) -> None:
    """Export each configured box's connection state (labels: the configured boxes only)."""
    from prometheus_client import Gauge

    connected = Gauge(
        "faceq_sophon_ws_connected",
        "1 while the WebSocket to the SE box is open.",
        ("box",),
        registry=registry,
    )
    for index, state in enumerate(subscriber.state()):

        def read(i: int = index) -> float:
            return 1.0 if subscriber.state()[i]["connected"] else 0.0

        connected.labels(state["url"]).set_function(read)


def camera_of(services: Services) -> CameraService | None:
    """The camera service installed in ``services``, or None."""
    camera = services.extras.get("camera")
    return camera if isinstance(camera, CameraService) else None
