"""Camera and AI-box receivers: ``/push/<token>[/eventinfo|/hikvision|/sophon[/anything]]``.

The token rides in the path (devices cannot send headers and drop query strings); the request
log scrubs it (``app.application.scrub_path``) and nothing here logs the path. A device sees
only three answers: 403 (unknown token, or an address outside the token's allow-list), 413
(body over ``push_max_body_mb``) and 200 (the body was stored, counted as a heartbeat or
duplicate, or could not be parsed at all: a non-200 makes devices resend in a loop). A 503 is
answered only when the inbox itself cannot store the event, so that the device keeps it and
retries. The 200 goes out after ``Inbox.put`` returned; parsing and storing run on the intake
pool. A body cut short by the device is still parsed and its complete parts stored.

``GET`` on the same paths answers the device's usual 200 and stores nothing (some devices
test the URL before saving it).
"""

from __future__ import annotations

import json
import logging

import tornado.web

from app.camera import CameraService, camera_of
from handlers.base import ApiError, StreamedBodyHandler

log = logging.getLogger(__name__)

# Route segment -> parser name.
ROUTE_KINDS = {"eventinfo": "eventinfo", "hikvision": "hikvision", "sophon": "sophon_http"}
SOPHON_ACK = json.dumps({"message": "SUCCESS", "status": 0}, separators=(",", ":"))


@tornado.web.stream_request_body
class PushHandler(StreamedBodyHandler):
    """Store one device push in the inbox, then answer the device's expected 200."""

    public = True  # the token is in the path, checked in prepare
    route_kind: str | None = None
    camera: CameraService | None = None

    def prepare(self) -> None:
        self._answered = False
        camera = camera_of(self.services)
        if camera is None:
            raise ApiError(503, "unavailable", "camera intake is not enabled")
        self.camera = camera
        token = self.path_args[0] if self.path_args else ""
        if not camera.access.token_ok(token):
            raise ApiError(403, "invalid_token", "the push token is not valid")
        if not camera.access.address_ok(token, self.request.remote_ip):
            raise ApiError(403, "address_not_allowed", "this address may not push with this token")
        segment = self.path_args[1] if len(self.path_args) > 1 else None
        self.route_kind = ROUTE_KINDS.get(segment.lower()) if segment else None
        self.start_body(self.services.settings.push_max_body_bytes)

    def data_received(self, chunk: bytes) -> None:
        self.keep_chunk(chunk)

    async def post(self, token: str, kind: str | None = None) -> None:
        if self._finished:  # answered 413 while the body streamed in
            return
        self._answered = True
        body = self.take_body()
        content_type = self.request.headers.get("Content-Type")
        assert self.camera is not None  # set by prepare
        try:
            result = await self.camera.intake(self.route_kind, body, content_type)
        except Exception:
            log.exception("could not store a %d-byte push", len(body))
            raise ApiError(
                503,
                "inbox_unavailable",
                "the event could not be stored; retry later",
                headers={"Retry-After": "5"},
            ) from None
        self._acknowledge(self.route_kind or result.kind)

    def get(self, token: str, kind: str | None = None) -> None:
        self._acknowledge(self.route_kind)

    def _acknowledge(self, kind: str | None) -> None:
        """Answer what each device family expects (PROTOCOLS.md)."""
        if kind == "sophon_http":
            self.finish(SOPHON_ACK)
            return
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("Success" if kind == "hikvision" else "OK")

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self.camera is None or self._answered or self.body_too_large or self._finished:
            return
        if not self.has_body_chunks():
            return
        if self.declared_length is not None and self.body_size >= self.declared_length:
            return  # the whole body arrived: post() stores it
        self._answered = True
        body = self.take_body()
        self.camera.intake_cut_short(
            self.route_kind, body, self.request.headers.get("Content-Type")
        )


routes = [
    (r"/push/([^/]+)/?", PushHandler),
    (r"/push/([^/]+)/((?i:eventinfo|hikvision|sophon))(?:/.*)?", PushHandler),
]
