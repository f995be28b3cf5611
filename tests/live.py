"""A real service on a loopback port, in a background thread, for HTTP-level tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tornado.testing

from app.application import make_app
from app.server import build_services, make_http_server
from app.services import Services
from app.settings import Settings
from models.pipeline import Pipeline

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": TOKEN}


@dataclass
class LiveServer:
    url: str
    port: int
    services: Services
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    _stop: Callable[[], None]

    def stop(self) -> None:
        self._stop()
        self.thread.join(timeout=10)


def start_server(
    settings: Settings,
    pipeline: Pipeline | None = None,
    extra_modules: list[Any] | None = None,
    setup: Callable[[Services], None] | None = None,
) -> LiveServer:
    """Start the application on 127.0.0.1 with ``pipeline`` already loaded (or none)."""
    services, _ = build_services(settings)
    if pipeline is not None:
        services.models.pipeline = pipeline
    if setup is not None:
        setup(services)
    sock, port = tornado.testing.bind_unused_port()
    started = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        box["loop"] = loop

        async def main() -> None:
            app = make_app(services, extra_modules)
            server = make_http_server(app, settings)
            server.add_sockets([sock])
            box["stop_event"] = asyncio.Event()
            for hook in services.extras.get("on_start", []):
                await hook()
            started.set()
            await box["stop_event"].wait()
            server.stop()
            for hook in services.extras.get("on_stop", []):
                await hook()
            await server.close_all_connections()

        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=run, name="live-server", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("test server did not start")
    loop = box["loop"]
    return LiveServer(
        url=f"http://127.0.0.1:{port}",
        port=port,
        services=services,
        loop=loop,
        thread=thread,
        _stop=lambda: loop.call_soon_threadsafe(box["stop_event"].set),
    )


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: a fixed token and a temporary data folder passed by the caller."""
    values: dict[str, Any] = {"tokens": (TOKEN,)}
    values.update(overrides)
    return Settings(**values)
