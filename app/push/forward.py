"""Forward each finished camera event's JSON to ``forward_url``, at least once, with backoff.

The inbox queues the event in the same transaction that marks it done (``Inbox.complete(...,
forward=True)``), so a crash never loses a forward. This loop claims due items, POSTs them
(``Content-Type: application/json``, header ``X-Faceq-Event-Id`` so that the receiver can drop
a repeat), and marks each sent (any 2xx) or failed; a failed item is retried with capped
exponential backoff and stays visible (``/readyz`` details, ``GET /events/<id>`` ``forward``)
until it goes through or runs out of attempts (status ``dead``). Nothing here touches intake.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from app.push.inbox import ForwardItem, Inbox

log = logging.getLogger(__name__)

RunDb = Callable[..., Awaitable[Any]]


@dataclass
class ForwardTuning:
    """Timing of deliveries; tests shorten it."""

    poll_s: float = 1.0
    connect_timeout_s: float = 3.0
    request_timeout_s: float = 10.0
    base_s: float = 5.0
    cap_s: float = 3600.0
    max_attempts: int = 100  # ~4 days at the 1 h cap: longer than anyone waits unnoticed
    batch: int = 10


def shape_payload(event: dict[str, Any], accepted_only: bool) -> dict[str, Any]:
    """Return the JSON to POST: the event, without rejected faces when ``accepted_only``."""
    if not accepted_only:
        return event
    shaped = copy.deepcopy(event)
    for report in shaped.get("reports") or []:
        if isinstance(report, dict):
            report.pop("rejected", None)
    return shaped


class Forwarder:
    """Delivers queued forward items one after another; ``wake`` after a completion."""

    def __init__(
        self,
        inbox: Inbox,
        url: str,
        run_db: RunDb,
        *,
        accepted_only: bool,
        tuning: ForwardTuning | None = None,
    ) -> None:
        self._inbox = inbox
        self._url = url
        self._run_db = run_db
        self._accepted_only = accepted_only
        self.tuning = tuning or ForwardTuning()
        self._wake = asyncio.Event()
        self._stopping = False
        self._client: AsyncHTTPClient | None = None
        self.sent = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_sent_at: float | None = None

    def wake(self) -> None:
        """Look for due items now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def state(self) -> dict[str, Any]:
        """What ``/readyz`` shows about forwarding (the backlog is added by the caller)."""
        last = self.last_sent_at
        return {
            "sent": self.sent,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_sent_at": datetime.fromtimestamp(last, UTC).isoformat() if last else None,
        }

    async def run(self) -> None:
        """Deliver until stopped; an unexpected error is logged and the loop goes on."""
        self._client = AsyncHTTPClient(force_instance=True)
        try:
            while not self._stopping:
                try:
                    delivered = await self._round()
                except Exception:
                    log.exception("forwarding round failed")
                    delivered = 0
                if delivered == 0 and not self._stopping:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.tuning.poll_s)
        finally:
            self._client.close()

    async def _round(self) -> int:
        """Claim due items and try each once; return how many were claimed."""
        t = self.tuning
        lease = t.request_timeout_s + t.connect_timeout_s + 30.0
        items: list[ForwardItem] = await self._run_db(self._inbox.claim_forwards, t.batch, lease)
        for item in items:
            if self._stopping:
                break  # the lease runs out and the next start sends it
            error = await self._send(item)
            if error is None:
                await self._run_db(self._inbox.forward_sent, item.item_id)
                self.sent += 1
                self.last_sent_at = time.time()
                self.last_error = None
                log.info("forwarded event %s", item.event_id)
            else:
                await self._run_db(
                    self._inbox.forward_failed,
                    item.item_id,
                    error,
                    base_s=t.base_s,
                    cap_s=t.cap_s,
                    max_attempts=t.max_attempts,
                )
                self.failures += 1
                self.last_error = error
                log.warning(
                    "forwarding event %s failed (attempt %d): %s",
                    item.event_id,
                    item.attempts + 1,
                    error,
                )
        return len(items)

    async def _send(self, item: ForwardItem) -> str | None:
        """POST one item; return None on a 2xx, else a short error description."""
        assert self._client is not None
        body = json.dumps(
            shape_payload(item.payload, self._accepted_only),
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        request = HTTPRequest(
            self._url,
            method="POST",
            body=body,
            headers={"Content-Type": "application/json", "X-Faceq-Event-Id": item.event_id},
            connect_timeout=self.tuning.connect_timeout_s,
            request_timeout=self.tuning.request_timeout_s,
            follow_redirects=False,
        )
        try:
            response = await self._client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError, ValueError) as exc:  # DNS, refused, TLS, bad URL
            return f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= response.code < 300:
            return None
        if response.code == 599:  # Tornado's code for timeouts and connection errors
            return f"no answer: {response.error}"[:300]
        return f"HTTP {response.code}"
