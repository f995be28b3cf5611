"""The base handler: dependency injection, token auth in ``prepare``, JSON errors everywhere."""

from __future__ import annotations

import json
import logging
from typing import Any

import tornado.web

from app.auth import token_from_header, token_matches
from app.services import Services

log = logging.getLogger(__name__)

DEFAULT_CODES = {
    400: "bad_request",
    401: "missing_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    411: "length_required",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(tornado.web.HTTPError):
    """An HTTP error with a stable machine-readable ``code``; the message is for humans."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status)
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code": ..., "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


class BaseHandler(tornado.web.RequestHandler):
    """Every handler derives from this; ``public = True`` opts out of the token check."""

    public = False

    def initialize(self, services: Services) -> None:
        self.services = services

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("X-Content-Type-Options", "nosniff")

    def prepare(self) -> None:
        if not self.public:
            self.require_token()

    def require_token(self) -> None:
        """401 when no token is sent, 403 when it is not one of ours (the original's rule)."""
        token = token_from_header(self.request.headers.get("Authorization"))
        if token is None:
            raise ApiError(401, "missing_token", "send the API token in the Authorization header")
        if not token_matches(token, self.services.tokens):
            raise ApiError(403, "invalid_token", "the API token is not valid")

    def fail(self, error: ApiError) -> None:
        """Answer ``error`` now, outside the normal raise path (e.g. from ``data_received``)."""
        self.send_error(error.status_code, exc_info=(type(error), error, None))

    def write_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            code, message = exc.code, exc.message
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            code = DEFAULT_CODES.get(status_code, "error")
            message = exc.log_message or self._reason
        elif status_code < 500:
            code, message = DEFAULT_CODES.get(status_code, "error"), self._reason
        else:
            # Never str(exc): internals stay in the log (written by log_exception).
            code, message = DEFAULT_CODES.get(status_code, "internal_error"), "internal error"
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(error_body(code, message)))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            # Client errors are expected; the request log line already records the status.
            log.debug("%s %s: %s", self.request.method, type(self).__name__, value)
            return
        log.error(
            "uncaught exception in %s %s",
            self.request.method,
            type(self).__name__,
            exc_info=(typ, value, tb),
        )


class StreamedBodyHandler(BaseHandler):
    """Base of ``@stream_request_body`` handlers: keeps the body in memory up to a limit.

    A declared ``Content-Length`` over the limit is refused with 413 before a byte is read; a
    chunked body is refused as soon as it passes the limit (Tornado then closes the connection
    instead of reading the rest). Subclasses call ``start_body(limit)`` in ``prepare`` and
    ``take_body()`` in the verb method, which returns early when ``self._finished``.
    """

    declared_length: int | None = None
    body_size = 0
    body_too_large = False

    def read_declared_length(self) -> int | None:
        """Parse ``Content-Length`` (None for a chunked body); 400 when it is not a number."""
        declared = self.request.headers.get("Content-Length")
        if declared is not None:
            try:
                self.declared_length = int(declared)
            except ValueError:
                raise ApiError(400, "bad_request", "Content-Length is not a number") from None
        return self.declared_length

    def start_body(self, limit: int) -> None:
        """Remember the limit; raise 400 for a malformed and 413 for a too-large length."""
        self._body_limit = limit
        self._body_chunks: list[bytes] = []
        if self.read_declared_length() is None:
            return
        if self.declared_length > limit:
            # Let Tornado accept the declared length so that our JSON 413 is the only answer;
            # finishing now closes the connection without reading the body.
            self.request.connection.set_max_body_size(self.declared_length)
            raise self.too_large_error()

    def too_large_error(self) -> ApiError:
        return ApiError(413, "body_too_large", f"the request body exceeds {self._body_limit} bytes")

    def keep_chunk(self, chunk: bytes) -> None:
        """Keep one streamed chunk, or answer 413 once the body passes the limit."""
        if self.body_too_large:
            return
        self.body_size += len(chunk)
        if self.body_size > self._body_limit:
            self.body_too_large = True
            self._body_chunks.clear()
            if not self._finished:
                self.fail(self.too_large_error())
            return
        self._body_chunks.append(chunk)

    def take_body(self) -> bytes:
        """Return the body received so far and release the chunks."""
        body = b"".join(getattr(self, "_body_chunks", ()))
        self._body_chunks = []
        return body

    def has_body_chunks(self) -> bool:
        return bool(getattr(self, "_body_chunks", None))


class NotFoundHandler(BaseHandler):
    """JSON 404 for every unknown path (``default_handler_class``)."""

    public = True

    def prepare(self) -> None:
        raise ApiError(404, "not_found", "no such endpoint")
