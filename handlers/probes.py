"""Welcome page and Kubernetes probes; none needs a token."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.web import render_page, wants_html


class RootHandler(BaseHandler):
    """Name the service, its version and where to start; a browser gets the web page."""

    public = True

    def get(self) -> None:
        self.set_header("Vary", "Accept")
        if wants_html(self.request.headers.get("Accept")):
            render_page(self)
            return
        self.write_json(
            {
                "service": "faceq",
                "version": self.services.version,
                "message": "Face-quality service: POST an image to /upload "
                "(multipart field 'image', header 'Authorization: <token>').",
                "endpoints": ["/", "/livez", "/readyz", "/metrics", "/upload", "/uploads"],
            }
        )


class LivezHandler(BaseHandler):
    """200 while the process runs; touches nothing else."""

    public = True

    def get(self) -> None:
        self.write_json({"status": "ok"})


class ReadyzHandler(BaseHandler):
    """503 until every model is loaded and warmed and the store answers, then 200."""

    public = True

    def get(self) -> None:
        state = self.services.models
        body = {"status": "ready" if state.ready else "loading", "models": state.details()}
        if state.error:
            body["status"] = "failed"
        for name, probe in self.services.extras.get("readiness_details", {}).items():
            body[name] = probe()
        # Gates: what else must hold (the database reachable, its schema current), as reasons.
        reasons = [r for gate in self.services.extras.get("readiness_gates", []) if (r := gate())]
        ready = state.ready and not reasons
        if reasons:
            body["reasons"] = reasons
            if state.ready:
                body["status"] = "unavailable"
        if not ready:
            self.set_header("Retry-After", "5")
        self.write_json(body, 200 if ready else 503)


routes = [
    (r"/", RootHandler),
    (r"/livez", LivezHandler),
    (r"/readyz", ReadyzHandler),
]
