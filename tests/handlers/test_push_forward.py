"""Forwarding finished events to ``forward_url``: retries with backoff, exactly one delivery,
and intake unaffected while the receiver is down."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import tornado.web

from app.camera import camera_of
from app.push.forward import ForwardTuning
from app.services import Services
from tests.app.push import samples
from tests.handlers.push_support import (
    ACCEPTED_FACE,
    HIKVISION_ACK,
    BackgroundServer,
    get_event,
    push,
    wait_until_processed,
)
from tests.live import make_settings, start_server

pytestmark = [pytest.mark.shared_data, pytest.mark.models]


class Receiver:
    """An HTTP endpoint on 127.0.0.1:``port`` that fails its first ``fail_first`` POSTs."""

    def __init__(self, port: int, fail_first: int) -> None:
        self.fail_first = fail_first
        self.calls = 0
        self.delivered: list[tuple[str, dict[str, Any]]] = []
        receiver = self

        class Hook(tornado.web.RequestHandler):
            def post(self) -> None:
                receiver.calls += 1
                if receiver.calls <= receiver.fail_first:
                    self.set_status(500)
                    self.finish("try later")
                    return
                event_id = self.request.headers["X-Faceq-Event-Id"]
                receiver.delivered.append((event_id, json.loads(self.request.body)))
                self.finish("ok")

        self.server = BackgroundServer(tornado.web.Application([(r"/hook", Hook)]), port)

    def stop(self) -> None:
        self.server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fast(services: Services) -> None:
    camera = camera_of(services)
    assert camera is not None and camera.forwarder is not None
    camera.tuning.stats_every_s = 0.2
    camera.forwarder.tuning = ForwardTuning(
        poll_s=0.1, connect_timeout_s=1.0, request_timeout_s=2.0, base_s=0.2, cap_s=0.5
    )


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_forward_retries_until_delivered_once(pipeline, data_dir: Path, tmp_path: Path) -> None:
    good = (data_dir / ACCEPTED_FACE).read_bytes()
    poor = (data_dir / samples.FACE_JPEG).read_bytes()  # its face fails the confidence gate
    folder = data_dir / "cameras"
    port = free_port()  # nothing listens there yet: the receiver is down
    settings = make_settings(data_dir=str(tmp_path), forward_url=f"http://127.0.0.1:{port}/hook")
    live = start_server(settings, pipeline, setup=fast)
    receiver = None
    try:
        capture = samples.load(folder / "D_hik_faceCapture_multipart.http", good)
        assert (push(live.url, "/hikvision", capture).status_code) == 200
        [first] = wait_until_processed(live.url, 1)
        assert first["faces_accepted"] == 2

        def forward_of(event_id: str) -> dict[str, Any] | None:
            return get_event(live.url, event_id)["forward"]

        wait_for(lambda: (forward_of(first["id"]) or {}).get("attempts", 0) >= 2)
        status = forward_of(first["id"])
        assert status is not None and status["status"] == "pending"
        assert "ConnectionRefused" in (status["last_error"] or "")
        wait_for(
            lambda: (
                requests.get(f"{live.url}/readyz", timeout=5).json()["camera"]["forward"]["backlog"]
                == 1
            )
        )

        # Intake does not wait for the forward queue.
        terminal = samples.load(folder / "D_hik_acs_AccessControllerEvent_Picture.http", good)
        rejected = samples.load(folder / "A_eventinfo_face_pct2B.http", poor)
        start = time.monotonic()
        resp = push(live.url, "/hikvision", terminal)
        assert (resp.status_code, resp.content) == (200, HIKVISION_ACK[1])
        assert push(live.url, "/eventinfo", rejected).status_code == 200
        assert time.monotonic() - start < 2.0
        events = wait_until_processed(live.url, 3)
        [unforwarded] = [e for e in events if e["source"] == "eventinfo"]
        assert unforwarded["faces_accepted"] == 0
        # forward_accepted_only: an event without an accepted face is not forwarded.
        assert forward_of(unforwarded["id"]) is None
        forwarded = {e["id"] for e in events if e["source"] == "hikvision"}
        assert first["id"] in forwarded and len(forwarded) == 2

        receiver = Receiver(port, fail_first=2)
        wait_for(lambda: {i for i, _ in receiver.delivered} == forwarded)
        wait_for(lambda: all(forward_of(i)["status"] == "sent" for i in forwarded))
        time.sleep(1.0)  # nothing more arrives: each event exactly once
        assert sorted(i for i, _ in receiver.delivered) == sorted(forwarded)
        assert receiver.calls == 2 + len(forwarded)
        for event_id, body in receiver.delivered:
            assert body["id"] == event_id
            assert body["status"] == "done"
            assert body["reports"] and all("rejected" not in r for r in body["reports"])
            assert sum(len(r["resp"]) for r in body["reports"]) == body["faces_accepted"] > 0
        wait_for(
            lambda: (
                requests.get(f"{live.url}/readyz", timeout=5).json()["camera"]["forward"]["backlog"]
                == 0
            )
        )
    finally:
        live.stop()
        if receiver is not None:
            receiver.stop()
