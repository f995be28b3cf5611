"""The web page for people: ``GET /`` for a browser, and its static files under ``/static/``.

The page is plain HTML, CSS and JavaScript modules from ``app/static/`` (no build step, nothing
from another origin). It talks to the same API as every other client, with the token a person
types in; the page itself and its files need no token (they hold no data).

Safety: every response carries a Content-Security-Policy that allows scripts, styles and
requests from this origin only and no inline script or style; images may also be ``data:``
(the report's base64 crops) and ``blob:`` (the picture being uploaded, event images fetched
with the token).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import tornado.web

from app.push.event import SOURCES
from app.push.inbox import VERDICTS
from handlers.base import DEFAULT_CODES, BaseHandler, error_body
from models.pipeline import OVERRIDE_BOUNDS, Policy

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "app" / "static"
TEMPLATE_DIR = ROOT / "app" / "templates"
PAGE_TEMPLATE = "index.html"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

# Labels and units of the gates the page offers as controls; a gate added to
# ``OVERRIDE_BOUNDS`` without an entry here still gets a control, named by its parameter.
GATE_LABELS: dict[str, tuple[str, str]] = {
    "face_threshold": ("Face confidence at least", ""),
    "blur_threshold": ("Sharpness (Laplacian variance) at least", ""),
    "max_yaw": ("Largest |yaw|", "degrees"),
    "max_pitch": ("Largest |pitch|", "degrees"),
    "max_roll": ("Largest |roll|", "degrees"),
    "min_face_px": ("Smallest face side (0: off)", "pixels"),
    "pose_min_confidence": ("Pose measured from confidence", ""),
    "min_sharpness": ("Sharpness score at least", ""),
    "min_inter_eye_px": ("Distance between the eyes at least", "pixels"),
    "max_under_exposure": ("Under-exposed share at most", ""),
    "max_over_exposure": ("Over-exposed share at most", ""),
    "min_face_in_frame": ("Share of the face inside the image at least", ""),
}
_TEXT_TYPES = {
    ".js": "text/javascript; charset=UTF-8",
    ".css": "text/css; charset=UTF-8",
    ".html": "text/html; charset=UTF-8",
    ".svg": "image/svg+xml",
}


def wants_html(accept: str | None) -> bool:
    """Whether an ``Accept`` header prefers HTML to JSON (a browser's does; curl's ``*/*`` not).

    HTML must be named and weigh at least as much as JSON; wildcards alone mean an API client.
    """
    html = json_q = 0.0
    for part in (accept or "").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media in ("text/html", "application/xhtml+xml"):
            html = max(html, q)
        elif media == "application/json":
            json_q = max(json_q, q)
    return html > 0 and html >= json_q


def set_page_headers(handler: tornado.web.RequestHandler) -> None:
    """The headers every page response and static file carries."""
    handler.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")
    handler.set_header("X-Frame-Options", "DENY")


def gate_controls(policy: Policy) -> list[dict[str, Any]]:
    """One control per per-request gate: parameter name, label, bounds and the default."""
    defaults = dataclasses.asdict(policy)
    controls = []
    for name, (lo, hi) in OVERRIDE_BOUNDS.items():
        label, unit = GATE_LABELS.get(name, (name.replace("_", " "), ""))
        default = defaults.get(name)
        integer = isinstance(default, int) and not isinstance(default, bool)
        controls.append(
            {
                "name": name,
                "label": label,
                "unit": unit,
                "min": lo,
                "max": hi,
                "default": default,
                "step": 1 if integer else "any",
            }
        )
    return controls


def page_config(handler: BaseHandler) -> dict[str, Any]:
    """What the page needs to know about this service, embedded in the HTML as data."""
    return {
        "version": handler.services.version,
        "gates": gate_controls(handler.services.policy),
        "sources": list(SOURCES),
        "verdicts": list(VERDICTS),
    }


def render_page(handler: BaseHandler) -> None:
    """Answer the web page (HTML, no token needed: it holds no data)."""
    set_page_headers(handler)
    handler.set_header("Content-Type", "text/html; charset=UTF-8")
    handler.set_header("Cache-Control", "no-cache")
    config = json.dumps(page_config(handler), separators=(",", ":"))
    handler.render(PAGE_TEMPLATE, config=config)


class StaticHandler(tornado.web.StaticFileHandler):
    """The page's files: the CSP and nosniff headers, JSON errors, revalidation when unversioned.

    A URL made by ``static_url`` carries ``?v=<hash>`` and is cached for a long time (Tornado's
    rule); the module files the scripts import by plain relative URL are answered with
    ``Cache-Control: no-cache``, so a browser revalidates them (ETag, 304) and never runs a
    stale mix after an upgrade.
    """

    def set_default_headers(self) -> None:
        set_page_headers(self)

    def set_extra_headers(self, path: str) -> None:
        if not self.get_query_argument("v", None):
            self.set_header("Cache-Control", "no-cache")

    def get_content_type(self) -> str:
        suffix = Path(self.absolute_path or "").suffix.lower()
        return _TEXT_TYPES.get(suffix) or super().get_content_type()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        code = DEFAULT_CODES.get(status_code, "error")
        messages = {404: "no such file", 403: "not a file of the page"}
        message = messages.get(status_code, self._reason)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(error_body(code, message)))


def application_settings() -> dict[str, Any]:
    """The ``tornado.web.Application`` settings that serve the page and its files."""
    return {
        "static_path": str(STATIC_DIR),
        "static_url_prefix": "/static/",
        "static_handler_class": StaticHandler,
        "template_path": str(TEMPLATE_DIR),
    }
