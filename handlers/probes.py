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
    """503 until every model is loaded and warmed, then 200 with the model names."""

    public = True

    def get(self) -> None:
        state = self.services.models
        body = {"status": "ready" if state.ready else "loading", "models": state.details()}
        if state.error:
            body["status"] = "failed"
        for name, probe in self.services.extras.get("readiness_details", {}).items():
            body[name] = probe()
        if not state.ready:
            self.set_header("Retry-After", "5")
        self.write_json(body, 200 if state.ready else 503)


routes = [
    (r"/", RootHandler),
    (r"/livez", LivezHandler),
    (r"/readyz", ReadyzHandler),
]
