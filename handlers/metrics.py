"""``GET /metrics``: the Prometheus text format; needs a token when ``metrics_public`` is off."""

from __future__ import annotations

from app.metrics import CONTENT_TYPE_LATEST
from handlers.base import BaseHandler


class MetricsHandler(BaseHandler):
    """Expose this application's metrics registry."""

    public = True  # decided per settings in prepare()

    def prepare(self) -> None:
        if not self.services.settings.metrics_public:
            self.require_token()

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(self.services.metrics.exposition())


routes = [
    (r"/metrics", MetricsHandler),
]
