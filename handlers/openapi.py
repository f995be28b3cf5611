"""``GET /openapi.json``: the OpenAPI 3.1 description of this service."""

from __future__ import annotations

from app.openapi import openapi_document
from handlers.base import BaseHandler


class OpenAPIHandler(BaseHandler):
    """Answer the OpenAPI document (public, like the welcome page)."""

    public = True

    def get(self) -> None:
        self.write_json(
            openapi_document(
                self.services.version, metrics_public=self.services.settings.metrics_public
            )
        )


routes = [
    (r"/openapi\.json", OpenAPIHandler),
]
