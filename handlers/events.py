"""Stored camera events and their results: ``/events``, ``/events/<id>``, the aligned crops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from app.camera import CameraService, camera_of
from app.push.event import SOURCES
from app.push.inbox import VERDICTS
from handlers.base import ApiError, BaseHandler

MAX_LIMIT = 500
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# A cursor is an event sequence number; longer ones cannot be one and would overflow SQLite.
_MAX_CURSOR_DIGITS = 18
T = TypeVar("T")


class EventsBase(BaseHandler):
    """Token-protected; every inbox read runs on the intake pool, never on the IOLoop."""

    def camera(self) -> CameraService:
        camera = camera_of(self.services)
        if camera is None:
            raise ApiError(503, "unavailable", "camera intake is not enabled")
        return camera

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run an inbox read on the intake pool; a database that is down is a 503."""
        try:
            return await self.camera().run_db(fn, *args)
        except sa.exc.DBAPIError:
            raise ApiError(
                503,
                "database_unavailable",
                "the event store cannot be reached; retry later",
                headers={"Retry-After": "5"},
            ) from None


class EventsHandler(EventsBase):
    """List stored events, newest first: ``?limit=&since=&source=&verdict=``."""

    async def get(self) -> None:
        limit = self._limit()
        since = self.get_query_argument("since", None)
        if since is not None and not (since.isdigit() and len(since) <= _MAX_CURSOR_DIGITS):
            raise ApiError(400, "bad_parameter", "since must be the 'next' of a previous page")
        source = self.get_query_argument("source", None) or None
        if source is not None and source not in SOURCES:
            raise ApiError(400, "bad_parameter", f"source must be one of {', '.join(SOURCES)}")
        verdict = self.get_query_argument("verdict", None) or None
        if verdict is not None and verdict not in VERDICTS:
            raise ApiError(400, "bad_parameter", f"verdict must be one of {', '.join(VERDICTS)}")
        camera = self.camera()
        events, cursor = await self.read(camera.inbox.list_events, limit, since, source, verdict)
        self.write_json({"events": events, "next": cursor})

    def _limit(self) -> int:
        raw = self.get_query_argument("limit", "50").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise ApiError(400, "bad_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}")
        return int(raw)


class EventHandler(EventsBase):
    """One event: metadata, image files, one report per image, forward status."""

    async def get(self, event_id: str) -> None:
        camera = self.camera()
        event = await self.read(_event_with_forward, camera, event_id)
        if event is None:
            raise ApiError(404, "not_found", "no such event")
        self.write_json(event)


def _event_with_forward(camera: CameraService, event_id: str) -> dict[str, Any] | None:
    event = camera.inbox.get_event(event_id)
    if event is not None and camera.forwarder is not None:
        event["forward"] = camera.inbox.forward_status(event_id)
    return event


class FaceCropHandler(EventsBase):
    """The aligned 112x112 PNG of one accepted face of an event."""

    async def get(self, event_id: str, face_id: str) -> None:
        camera = self.camera()
        png = await self.read(camera.inbox.get_crop, event_id, face_id)
        if png is None:
            raise ApiError(404, "not_found", "no such event or face")
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "private, max-age=86400")
        self.finish(png)


class EventImageHandler(EventsBase):
    """One pushed image of an event, as the device sent it (``image_files[].index``)."""

    async def get(self, event_id: str, index: str) -> None:
        camera = self.camera()
        found = None
        # ASCII digits only (int() reads other scripts' digits too); an event has a few images.
        if index.isascii() and index.isdigit() and len(index) <= 4:
            found = await camera.run_db(camera.inbox.get_image, event_id, int(index))
        if found is None:
            raise ApiError(404, "not_found", "no such event or image")
        content_type, data = found
        # Only the image types the receivers store are named as such; anything else is bytes.
        if content_type not in IMAGE_TYPES:
            content_type = "application/octet-stream"
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "private, max-age=86400")
        self.finish(data)


routes = [
    (r"/events", EventsHandler),
    (r"/events/([^/]+)", EventHandler),
    (r"/events/([^/]+)/faces/([^/]+)\.png", FaceCropHandler),
    (r"/events/([^/]+)/images/([^/]+)", EventImageHandler),
]
