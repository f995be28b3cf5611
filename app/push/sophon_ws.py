"""Real-time WebSocket subscriber for Sophgo SE boxes (``ws://box:5679``, PROTOCOLS.md B).

The box sends nothing until the client sends one JSON text frame with its configuration, then
one JSON event per text frame. There is no acknowledgement and no replay: events are lost while
disconnected, so the client reconnects at once-ish (capped exponential backoff with jitter,
1 s -> 30 s by default), re-sends the configuration every time, and reports per-box state for
``/readyz`` and metrics. Each event frame becomes a ``CameraEvent`` (``source="sophon_ws"``)
handed to the injected ``on_event`` coroutine (the app stores it with ``Inbox.put`` in an
executor). Frames that are not JSON event objects are logged by size and a short prefix, and
skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection, WebSocketError, websocket_connect

from app.push import sophon
from app.push.event import CameraEvent, iso_utc

log = logging.getLogger(__name__)

OnEvent = Callable[[CameraEvent], Awaitable[None]]
# Connection refused/reset, DNS, handshake refused, timeouts, writes on a closed socket.
NETWORK_ERRORS = (OSError, HTTPClientError, WebSocketError, TimeoutError)


@dataclass(frozen=True)
class SophonWsTarget:
    """One box to subscribe to, and what to ask it for."""

    url: str
    media_device_ids: tuple[str, ...] = ()
    with_face_image: bool = True
    with_register_image: bool = False
    legacy: bool = False  # firmware before V6: need_face / need_register / event_list keys

    @classmethod
    def from_mapping(cls, value: Mapping[str, Any]) -> SophonWsTarget:
        """Build a target from a settings mapping; raise ValueError when it is unusable."""
        url = str(value.get("url") or "").strip()
        if urlsplit(url).scheme not in ("ws", "wss"):
            raise ValueError("sophon_ws target url must start with ws:// or wss://")
        ids = value.get("media_device_ids") or ()
        if isinstance(ids, str):
            ids = [i for i in ids.split(",") if i.strip()]
        return cls(
            url=url,
            media_device_ids=tuple(str(i).strip() for i in ids),
            with_face_image=bool(value.get("with_face_image", True)),
            with_register_image=bool(value.get("with_register_image", False)),
            legacy=bool(value.get("legacy", False)),
        )


def config_frame(target: SophonWsTarget) -> str:
    """Return the JSON configuration frame the box waits for after the handshake."""
    if target.legacy:
        config: dict[str, Any] = {
            "need_face": target.with_face_image,
            "need_register": target.with_register_image,
            "event_list": list(target.media_device_ids),
        }
    else:
        config = {
            "with_face_image": target.with_face_image,
            "with_register_image": target.with_register_image,
            "media_device_ids": list(target.media_device_ids),
        }
    return json.dumps(config)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff; ``jitter`` is the fraction of each delay drawn at random."""

    base_s: float = 1.0
    cap_s: float = 30.0
    jitter: float = 0.5

    def delay(self, failures: int, rng: random.Random) -> float:
        """Return the pause before reconnect number ``failures + 1`` since the last event."""
        raw = min(self.cap_s, self.base_s * 2 ** min(max(failures, 0), 32))
        return raw * (1.0 - self.jitter * rng.random())


@dataclass
class _Link:
    """Mutable connection state of one target (owned by its task)."""

    target: SophonWsTarget
    connected: bool = False
    last_event_at: float | None = None
    reconnects: int = 0
    last_error: str | None = None
    events: int = 0
    invalid_frames: int = 0
    connection: WebSocketClientConnection | None = field(default=None, repr=False)


class SophonWsSubscriber:
    """Keeps one WebSocket per SE box open and feeds its events to ``on_event``."""

    def __init__(
        self,
        targets: Sequence[SophonWsTarget],
        on_event: OnEvent,
        *,
        backoff: Backoff | None = None,
        connect_timeout: float = 10.0,
        ping_interval: float | None = 30.0,
        max_message_size: int = 32 * 1024 * 1024,
        stop_grace_s: float = 2.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._links = [_Link(target) for target in targets]
        self._on_event = on_event
        self._backoff = backoff or Backoff()
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self._max_message_size = max_message_size
        self._stop_grace_s = stop_grace_s
        self._rng = rng or random.Random()
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._stop_event: asyncio.Event | None = None

    async def start(self) -> None:
        """Start one connection task per target (returns at once)."""
        if self._tasks:
            return
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run(link)) for link in self._links]

    async def stop(self) -> None:
        """Close every connection and wait (briefly) for the tasks to end."""
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        for link in self._links:
            if link.connection is not None:
                link.connection.close()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._stop_grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def state(self) -> list[dict[str, Any]]:
        """Return per-target connection state for readiness details and metrics."""
        return [
            {
                "url": _scrub_url(link.target.url),
                "connected": link.connected,
                "last_event_at": iso_utc(link.last_event_at),
                "reconnects": link.reconnects,
                "last_error": link.last_error,
                "events": link.events,
                "invalid_frames": link.invalid_frames,
            }
            for link in self._links
        ]

    async def _run(self, link: _Link) -> None:
        failures = 0
        url = _scrub_url(link.target.url)
        while not self._stopping:
            got_events = await self._session(link, url)
            if self._stopping:
                break
            failures = 0 if got_events else failures + 1
            delay = self._backoff.delay(failures, self._rng)
            log.info("sophon ws %s: reconnecting in %.1f s (%s)", url, delay, link.last_error)
            if await self._wait_stop(delay):
                break
            link.reconnects += 1

    async def _session(self, link: _Link, url: str) -> bool:
        """Connect, configure and read until the connection ends; True when events arrived."""
        events_before = link.events
        try:
            connection = await websocket_connect(
                link.target.url,
                connect_timeout=self._connect_timeout,
                ping_interval=self._ping_interval,
                max_message_size=self._max_message_size,
            )
        except NETWORK_ERRORS as exc:
            link.last_error = _describe(exc)
            return False
        except Exception as exc:  # unexpected, but the subscription must live on
            log.exception("sophon ws %s: connect failed", url)
            link.last_error = _describe(exc)
            return False
        link.connection = connection
        link.connected = True
        log.info("sophon ws %s: connected", url)
        try:
            await connection.write_message(config_frame(link.target))
            await self._read(link, connection, url)
            if not self._stopping:
                code = connection.close_code
                link.last_error = "connection closed" + (f" (code {code})" if code else "")
        except NETWORK_ERRORS as exc:
            link.last_error = _describe(exc)
        except Exception as exc:  # unexpected, but the subscription must live on
            log.exception("sophon ws %s: connection failed", url)
            link.last_error = _describe(exc)
        finally:
            link.connected = False
            link.connection = None
            connection.close()
        return link.events > events_before

    async def _read(self, link: _Link, connection: WebSocketClientConnection, url: str) -> None:
        while True:
            message = await connection.read_message()
            if message is None:
                return
            event = sophon.parse_ws_frame(message)
            if event is None:
                link.invalid_frames += 1
                log.warning(
                    "sophon ws %s: skipped a %d-byte frame that is not a JSON event: %r",
                    url,
                    len(message),
                    message[:32],
                )
                continue
            link.events += 1
            link.last_event_at = self._clock()
            try:
                await self._on_event(event)
            except Exception:  # the next event must still be delivered
                log.exception("sophon ws %s: on_event failed", url)

    async def _wait_stop(self, delay: float) -> bool:
        """Sleep ``delay`` seconds unless stopped first; return True when stopping."""
        if self._stop_event is None:
            await asyncio.sleep(delay)
            return self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), timeout=delay)
        return self._stopping


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _scrub_url(url: str) -> str:
    """Return the URL without user info (credentials never reach logs or /readyz)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
