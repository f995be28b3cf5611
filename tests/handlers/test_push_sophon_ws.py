"""SE-box real-time WebSocket, end to end: fake boxes on 127.0.0.1 -> stored, processed events.

The boxes check that the subscriber's configuration frame is exactly the sample one
(``B_sophon_ws_client_config_*``), then send the ``B_sophon_ws_event_*`` samples with a real
face JPEG inside, a frame that is not JSON, and a re-sent event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import tornado.web
import tornado.websocket

from app.camera import camera_of
from tests.app.push import samples
from tests.handlers.push_support import BackgroundServer, get_event, wait_until_processed
from tests.live import make_settings, start_server

pytestmark = [pytest.mark.shared_data, pytest.mark.models]

DEVICE = "04f98265-1fad-47e5-9dda-66e191272055"


class BoxHandler(tornado.websocket.WebSocketHandler):
    """Like the box: silent until configured, then one JSON event per text frame, then holds."""

    def initialize(self, box: FakeBox) -> None:
        self.box = box

    async def on_message(self, message: str | bytes) -> None:
        self.box.configs.append(json.loads(message))
        if self.box.configs[-1] != self.box.expected_config:
            self.close(1008, "bad config")
            return
        for frame in self.box.frames:
            await self.write_message(frame)


class FakeBox:
    """A Tornado WebSocket server on its own thread and loop, like a box on the network."""

    def __init__(self, expected_config: dict[str, Any], frames: list[str]) -> None:
        self.expected_config = expected_config
        self.frames = frames
        self.configs: list[dict[str, Any]] = []
        app = tornado.web.Application([(r"/", BoxHandler, {"box": self})])
        self.server = BackgroundServer(app)
        self.port = self.server.port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.server.stop()


def frame(data_dir: Path, name: str) -> str:
    jpeg = (data_dir / samples.FACE_JPEG).read_bytes()
    return samples.load(data_dir / "cameras" / name, jpeg).body.decode("utf-8")


@pytest.fixture
def boxes(data_dir: Path) -> Iterator[tuple[FakeBox, FakeBox]]:
    folder = data_dir / "cameras"
    doc_example = frame(data_dir, "B_sophon_ws_event_v2_doc_example.json")
    # Same identity, time and device as the doc example (so a duplicate of it) unless moved.
    legacy = frame(data_dir, "B_sophon_ws_event_v1_legacy.json")
    moved = legacy.replace("1566016554020", "1566016555020")
    assert moved != legacy
    current = FakeBox(
        json.loads((folder / "B_sophon_ws_client_config_v2.json").read_text()),
        [frame(data_dir, "B_sophon_ws_event_v2.json"), doc_example, "<html>not an event</html>"],
    )
    old = FakeBox(
        json.loads((folder / "B_sophon_ws_client_config_v1_legacy.json").read_text()),
        [moved, doc_example],
    )
    yield current, old
    current.stop()
    old.stop()


def test_box_frames_become_processed_events(boxes, pipeline, tmp_path: Path) -> None:
    current, old = boxes
    targets = (
        {"url": current.url, "media_device_ids": [DEVICE], "with_register_image": True},
        {"url": old.url, "media_device_ids": [DEVICE], "with_register_image": True, "legacy": True},
    )
    live = start_server(make_settings(data_dir=str(tmp_path), sophon_ws=targets), pipeline)
    try:
        events = wait_until_processed(live.url, 3)
        assert len(events) == 3
        assert current.configs == [current.expected_config]
        assert old.configs == [old.expected_config]
        by_images = sorted(events, key=lambda e: e["images"])
        assert [(e["source"], e["status"], e["images"]) for e in by_images] == [
            ("sophon_ws", "done", 1),  # doc example: recognize_face_image only
            ("sophon_ws", "done", 2),  # v2: face + register image
            ("sophon_ws", "done", 3),  # v1: recognize_face, spot_pic, reg_pic
        ]
        for summary in events:
            event = get_event(live.url, summary["id"])
            assert event["device_id"] == DEVICE
            assert [r["face_total"] for r in event["reports"]] == [1] * summary["images"]
        counters = camera_of(live.services).inbox.counters()["sophon_ws"]
        assert counters == {"face": 3, "duplicate": 1}

        ready = requests.get(f"{live.url}/readyz", timeout=10)
        assert ready.status_code == 200
        state = {s["url"]: s for s in ready.json()["sophon_ws"]}
        assert set(state) == {current.url, old.url}
        assert state[current.url]["connected"] is True
        assert (state[current.url]["events"], state[current.url]["invalid_frames"]) == (2, 1)
        assert (state[old.url]["events"], state[old.url]["invalid_frames"]) == (2, 0)
        assert state[old.url]["last_event_at"] is not None

        metrics = requests.get(f"{live.url}/metrics", timeout=10).text
        assert f'faceq_sophon_ws_connected{{box="{current.url}"}} 1.0' in metrics
        assert 'faceq_images_total{source="sophon_ws"} 6.0' in metrics
    finally:
        live.stop()
    # Stopping the service closes the subscriptions.
    state = camera_of(live.services).sophon_ws_state()
    assert [s["connected"] for s in state] == [False, False]
