"""The application factory: gathers every handler module's ``routes`` and injects services."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import tornado.web

from app.metrics import Metrics
from app.services import Services
from handlers import events, openapi, probes, push, upload, web
from handlers import metrics as metrics_handlers
from handlers.base import NotFoundHandler

access_log = logging.getLogger("faceq.access")

# Camera receivers carry the token in the path; it must never reach a log line.
# Matched case-insensitively and after repeated slashes: a 404 for a mistyped path must not log
# the token either.
_PUSH_TOKEN = re.compile(r"^(/+push/+)[^/?]+", re.IGNORECASE)
_PROBES = ("LivezHandler", "ReadyzHandler", "MetricsHandler")


def scrub_path(path: str) -> str:
    """Return the request path with any path-borne token replaced by ``***``."""
    return _PUSH_TOKEN.sub(r"\1***", path.split("?", 1)[0])


def log_request(handler: tornado.web.RequestHandler, metrics: Metrics) -> None:
    """One line per request: method, route, handler, status, duration, image id; probes at DEBUG.

    The same fields ride on the record as ``extra`` attributes for structured formatters. The
    request duration is observed in ``metrics`` here, so handlers stay free of metrics code.
    """
    status = handler.get_status()
    name = type(handler).__name__
    seconds = handler.request.request_time()
    method = handler.request.method or "-"
    # Clients choose the method string; keep the label set bounded.
    known = method if method in handler.SUPPORTED_METHODS else "other"
    metrics.observe_request(known, name, status, seconds)
    if name in _PROBES:
        level = logging.DEBUG  # probes every few seconds would drown the log
    elif status >= 500 and status != 503:
        level = logging.ERROR
    else:
        level = logging.INFO
    if not access_log.isEnabledFor(level):
        return
    fields = {
        "method": method,
        "route": scrub_path(handler.request.path),
        "handler": name,
        "status": status,
        "duration_ms": round(seconds * 1000.0, 1),
        "image_id": getattr(handler, "image_id", None),
    }
    fmt = "method=%s route=%s handler=%s status=%d duration_ms=%.1f"
    args: list[Any] = [method, fields["route"], name, status, fields["duration_ms"]]
    if fields["image_id"]:
        fmt += " image_id=%s"
        args.append(fields["image_id"])
    access_log.log(level, fmt, *args, extra=fields)


def handler_modules() -> list[Any]:
    """Every module whose ``routes`` the application serves, in matching order."""
    return [probes, upload, metrics_handlers, openapi, push, events]


def make_app(services: Services, extra_modules: list[Any] | None = None) -> tornado.web.Application:
    """Build the Tornado application with every route bound to ``services``."""
    deps = {"services": services}
    rules = []
    for module in handler_modules() + list(extra_modules or []):
        for pattern, handler in module.routes:
            rules.append((pattern, handler, deps))
    return tornado.web.Application(
        rules,
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        log_function=functools.partial(log_request, metrics=services.metrics),
        compress_response=False,
        **web.application_settings(),
    )
