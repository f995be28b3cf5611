"""The application factory: gathers every handler module's ``routes`` and injects services."""

from __future__ import annotations

import logging
import re
from typing import Any

import tornado.web

from app.services import Services
from handlers import probes, upload
from handlers.base import NotFoundHandler

access_log = logging.getLogger("faceq.access")

# Camera receivers carry the token in the path; it must never reach a log line.
_PUSH_TOKEN = re.compile(r"^(/push/)[^/?]+")
_PROBES = ("LivezHandler", "ReadyzHandler")


def scrub_path(path: str) -> str:
    """Return the request path with any path-borne token replaced by ``***``."""
    return _PUSH_TOKEN.sub(r"\1***", path.split("?", 1)[0])


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One line per request: method, route, status, duration; probes at DEBUG."""
    status = handler.get_status()
    name = type(handler).__name__
    if name in _PROBES:
        level = logging.DEBUG  # probes every few seconds would drown the log
    elif status >= 500 and status != 503:
        level = logging.ERROR
    else:
        level = logging.INFO
    if not access_log.isEnabledFor(level):
        return
    access_log.log(
        level,
        "%s %s %s %d %.1fms",
        handler.request.method,
        scrub_path(handler.request.path),
        name,
        status,
        handler.request.request_time() * 1000.0,
    )


def handler_modules() -> list[Any]:
    """Every module whose ``routes`` the application serves, in matching order."""
    return [probes, upload]


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
        log_function=log_request,
        compress_response=False,
    )
