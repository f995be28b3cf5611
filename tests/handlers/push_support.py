"""Helpers for the live camera-push tests: device answers, waiting for processing."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import requests
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from tests.app.push import samples
from tests.live import AUTH, TOKEN

HIKVISION_ACK = ("text/plain; charset=UTF-8", b"Success")
EVENTINFO_ACK = ("text/plain; charset=UTF-8", b"OK")
SOPHON_ACK = ("application/json; charset=UTF-8", b'{"message":"SUCCESS","status":0}')
ACCEPTED_FACE = Path("faces/deepface/img11.jpg")  # one face the default gates accept


def push(
    url: str, path: str, sample: samples.Sample, token: str = TOKEN, timeout: float = 30
) -> requests.Response:
    """POST a sample's body as the device would, to ``/push/<token><path>``."""
    headers = {"Content-Type": sample.content_type} if sample.content_type else {}
    return requests.post(
        f"{url}/push/{token}{path}", data=sample.body, headers=headers, timeout=timeout
    )


def list_events(url: str, **params: Any) -> list[dict[str, Any]]:
    resp = requests.get(f"{url}/events", params={"limit": 500, **params}, headers=AUTH, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["events"]


def get_event(url: str, event_id: str) -> dict[str, Any]:
    resp = requests.get(f"{url}/events/{event_id}", headers=AUTH, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_until_processed(url: str, count: int, timeout: float = 180.0) -> list[dict[str, Any]]:
    """Wait until ``count`` events are stored and none is pending; return the list."""
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = list_events(url)
        if len(events) >= count and all(e["status"] != "pending" for e in events):
            return events
        time.sleep(0.2)
    raise AssertionError(f"events not processed in {timeout} s: {events}")


class BackgroundServer:
    """A Tornado application on its own thread and event loop, bound to 127.0.0.1:``port``
    (0 = any free port): the device or receiver at the other end of a test."""

    def __init__(self, app: tornado.web.Application, port: int = 0) -> None:
        sockets = bind_sockets(port, "127.0.0.1", family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = HTTPServer(app)
            server.add_sockets(sockets)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()
            server.stop()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
