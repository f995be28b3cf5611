"""``python -m app serve``: listen at once, load the models in the background, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass

import tornado.httpserver
import tornado.web

from app.application import make_app
from app.auth import resolve_tokens
from app.camera import install as install_camera
from app.executor import ModelExecutor
from app.metrics import MODELS
from app.models_state import ModelState, default_policy
from app.push.schema import SchemaBehind
from app.runtime import configure_logging, configure_threads
from app.services import Services
from app.settings import Settings, SettingsError, load_settings, settings_summary_json

log = logging.getLogger(__name__)


def build_services(settings: Settings) -> tuple[Services, str | None]:
    """Create the services of one application; also returns a token generated now, if any."""
    tokens, generated = resolve_tokens(settings)
    services = Services(
        settings=settings,
        tokens=tokens,
        executor=ModelExecutor(settings.executor_workers, settings.queue_size),
        models=ModelState(),
        policy=default_policy(settings),
    )
    services.metrics.track_queue_depth(lambda: services.executor.in_flight)
    for model in MODELS:  # loaded and warmed together by ModelState.load
        services.metrics.track_model_ready(model, lambda: services.models.ready)
    install_camera(services)  # inbox, workers, SE subscriber, forwarder: hooks in extras
    return services, generated


def banner(settings: Settings, token: str | None) -> str:
    """What ``make run`` prints: where the service is and how to try it."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}"
    lines = [f"faceq listening on {url} (models loading; {url}/readyz turns 200 when ready)"]
    if token is not None:
        lines += [
            f"API token (saved in {settings.token_file}): {token}",
            "try:",
            f"  curl -s -H 'Authorization: {token}' -F image=@photo.jpg '{url}/upload?images=none'",
        ]
    else:
        lines.append(f"API token: as configured (FACEQ_TOKENS or {settings.token_file})")
    return "\n".join(lines)


@dataclass
class Outcome:
    exit_code: int = 0


def make_http_server(
    app: tornado.web.Application, settings: Settings
) -> tornado.httpserver.HTTPServer:
    """The HTTP server for ``app``: its body cap leaves room for the larger of the two limits
    (uploads, device pushes), which the handlers enforce per route with a JSON 413."""
    limit = max(settings.max_body_bytes, settings.push_max_body_bytes) + 1024 * 1024
    return tornado.httpserver.HTTPServer(
        app, max_body_size=limit, idle_connection_timeout=75, body_timeout=120, xheaders=False
    )


async def run_server(settings: Settings, services: Services, announce: str) -> int:
    """Serve until SIGTERM/SIGINT, or until the models fail to load (exit code 2)."""
    app = make_app(services)
    server = make_http_server(app, settings)
    server.listen(settings.port, settings.host)
    print(announce, flush=True)
    log.info("settings %s", settings_summary_json(settings))

    stop = asyncio.Event()
    outcome = Outcome()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def load() -> None:
        try:
            services.models.load(settings)
        except Exception:  # noqa: BLE001 - any failure to load ends start-up with its reason
            log.error("model loading failed: %s", services.models.error)
            outcome.exit_code = 2
            loop.call_soon_threadsafe(stop.set)
            return
        for hook in services.extras.get("on_ready", []):
            loop.call_soon_threadsafe(hook)

    try:
        for hook in services.extras.get("on_start", []):
            await hook()
    except SchemaBehind as exc:
        # Refuse to run on a database this version cannot use; the models are not loaded.
        log.error("cannot start: %s", exc)
        print(f"faceq: {exc}", file=sys.stderr, flush=True)
        server.stop()
        services.executor.shutdown()
        return 3
    threading.Thread(target=load, name="model-loader", daemon=True).start()
    await stop.wait()
    log.info("stopping")
    server.stop()
    for hook in services.extras.get("on_stop", []):
        await hook()
    await server.close_all_connections()
    services.executor.shutdown()
    return outcome.exit_code


def serve() -> int:
    """Entry point of ``python -m app serve`` / ``make run``."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"faceq: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    configure_threads(settings.torch_threads)
    try:
        services, generated = build_services(settings)
    except OSError as exc:
        where = exc.filename or settings.token_file  # the token file or the data folder
        print(f"faceq: cannot prepare {where}: {exc.strerror}", file=sys.stderr)
        return 2
    shown = generated
    if shown is None and not settings.tokens:
        shown = services.tokens[0]  # read back from the token file this service generated
    code = asyncio.run(run_server(settings, services, banner(settings, shown)))
    if code == 3:  # refused before loading anything (the reason is printed)
        return 2
    if code != 0:
        print(f"faceq: cannot start: {services.models.error}", file=sys.stderr, flush=True)
        logging.shutdown()
        # The model-loading thread may still hold framework thread pools whose C++ destructors
        # abort at interpreter exit; leave without running them.
        os._exit(code)
    return code
