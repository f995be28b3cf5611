"""The SE-box WebSocket subscriber against a fake box served by Tornado on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import tornado.web
import tornado.websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from app.push.event import CameraEvent
from app.push.sophon_ws import Backoff, SophonWsSubscriber, SophonWsTarget, config_frame
from tests.app.push import samples

DEVICE = "04f98265-1fad-47e5-9dda-66e191272055"
V2_KEYS = {"with_face_image", "with_register_image", "media_device_ids"}
V1_KEYS = {"need_face", "need_register", "event_list"}
FAST = Backoff(base_s=0.01, cap_s=0.05, jitter=0.5)


class FakeBox:
    """What the box does per connection: a script of frame lists, then drop or hold."""

    def __init__(self, scripts: list[list[str]], keys: set[str], hold_last: bool = True) -> None:
        self.scripts = scripts
        self.keys = keys
        self.hold_last = hold_last
        self.configs: list[dict[str, Any]] = []
        self.connections = 0
        self.bad_configs = 0


class BoxHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, box: FakeBox) -> None:
        self.box = box

    def open(self) -> None:
        self.box.connections += 1  # and send nothing until configured, like the box

    async def on_message(self, message: str | bytes) -> None:
        config = json.loads(message)
        if set(config) != self.box.keys:
            self.box.bad_configs += 1
            self.close(1008, "bad config")
            return
        self.box.configs.append(config)
        index = len(self.box.configs) - 1
        frames = self.box.scripts[index] if index < len(self.box.scripts) else []
        for frame in frames:
            await self.write_message(frame)
        if not (self.box.hold_last and index >= len(self.box.scripts) - 1):
            self.close()


async def serve(box: FakeBox) -> tuple[HTTPServer, int]:
    sockets = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server = HTTPServer(tornado.web.Application([(r"/", BoxHandler, {"box": box})]))
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]


def collector(
    count: int,
) -> tuple[list[CameraEvent], asyncio.Event, Callable[[CameraEvent], Awaitable[None]]]:
    received: list[CameraEvent] = []
    enough = asyncio.Event()

    async def on_event(event: CameraEvent) -> None:
        received.append(event)
        if len(received) >= count:
            enough.set()

    return received, enough, on_event


def frames(data_dir: Path, jpeg: bytes, *names: str) -> list[str]:
    return [samples.load(data_dir / "cameras" / n, jpeg).body.decode() for n in names]


def test_config_frames_match_the_documented_samples() -> None:
    target = SophonWsTarget("ws://box:5679", (DEVICE,), with_register_image=True)
    assert json.loads(config_frame(target)) == {
        "with_face_image": True,
        "with_register_image": True,
        "media_device_ids": [DEVICE],
    }
    legacy = SophonWsTarget("ws://box:5679", (DEVICE,), with_register_image=True, legacy=True)
    assert json.loads(config_frame(legacy)) == {
        "need_face": True,
        "need_register": True,
        "event_list": [DEVICE],
    }
    assert SophonWsTarget.from_mapping({"url": "ws://b:5679", "media_device_ids": "a, b"}) == (
        SophonWsTarget("ws://b:5679", ("a", "b"))
    )
    with pytest.raises(ValueError):
        SophonWsTarget.from_mapping({"url": "http://b"})


def test_backoff_is_capped_and_jittered() -> None:
    rng = random.Random(1)
    backoff = Backoff(base_s=1.0, cap_s=30.0, jitter=0.5)
    delays = [backoff.delay(n, rng) for n in range(10)]
    assert all(0.5 <= d <= 1.0 for d in delays[:1])
    assert all(15.0 <= d <= 30.0 for d in delays[5:])
    assert Backoff(jitter=0.0).delay(100, rng) == 30.0


@pytest.mark.shared_data
def test_subscribe_reconnect_and_resend_config(data_dir: Path) -> None:
    jpeg = samples.face_jpeg(data_dir)
    first = frames(data_dir, jpeg, "B_sophon_ws_event_v2.json")
    first += ["not json at all {", *frames(data_dir, jpeg, "B_sophon_ws_event_v2_doc_example.json")]
    second = frames(data_dir, jpeg, "B_sophon_ws_event_v1_legacy.json")
    box = FakeBox([first, second], V2_KEYS)

    async def main() -> None:
        server, port = await serve(box)
        received, enough, on_event = collector(3)
        target = SophonWsTarget(f"ws://127.0.0.1:{port}/", (DEVICE,))
        subscriber = SophonWsSubscriber([target], on_event, backoff=FAST, ping_interval=None)
        assert subscriber.state()[0]["connected"] is False
        await subscriber.start()
        await asyncio.wait_for(enough.wait(), timeout=10)
        assert [e.dedupe_key for e in received] == [
            "3b9f1f0e-6c2a-4a55-9c1e-0d7f2b1a9e11",
            f"666666|1566016554020|{DEVICE}",
            f"666666|1566016554020|{DEVICE}",
        ]
        assert all(e.source == "sophon_ws" for e in received)
        assert [i.data for i in received[0].images] == [jpeg, jpeg]
        assert [i.role for i in received[2].images] == ["face", "snapshot", "library"]
        assert box.connections == 2 and box.bad_configs == 0
        expected_config = {
            "with_face_image": True,
            "with_register_image": False,
            "media_device_ids": [DEVICE],
        }
        assert box.configs == [expected_config, expected_config]
        [state] = subscriber.state()
        assert state["url"] == f"ws://127.0.0.1:{port}/"
        assert state["connected"] is True
        assert state["reconnects"] == 1
        assert state["events"] == 3 and state["invalid_frames"] == 1
        assert state["last_event_at"] is not None
        assert state["last_error"] == "connection closed"
        started = time.monotonic()
        await subscriber.stop()
        assert time.monotonic() - started < 1.0
        assert subscriber.state()[0]["connected"] is False
        server.stop()

    asyncio.run(main())


@pytest.mark.shared_data
def test_legacy_config_and_failing_callback(data_dir: Path) -> None:
    jpeg = samples.face_jpeg(data_dir)
    event = frames(data_dir, jpeg, "B_sophon_ws_event_v1_legacy.json")
    box = FakeBox([event * 2], V1_KEYS)

    async def main() -> None:
        server, port = await serve(box)
        calls: list[CameraEvent] = []
        done = asyncio.Event()

        async def on_event(e: CameraEvent) -> None:
            calls.append(e)
            if len(calls) == 2:
                done.set()
            raise RuntimeError("inbox is full")  # must not kill the subscription

        target = SophonWsTarget(f"ws://127.0.0.1:{port}/", (DEVICE,), legacy=True)
        subscriber = SophonWsSubscriber([target], on_event, backoff=FAST, ping_interval=None)
        await subscriber.start()
        await asyncio.wait_for(done.wait(), timeout=10)
        assert box.configs == [{"need_face": True, "need_register": False, "event_list": [DEVICE]}]
        assert subscriber.state()[0]["connected"] is True
        await subscriber.stop()
        server.stop()

    asyncio.run(main())


def test_unreachable_box_retries_and_stops_promptly() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now

    async def main() -> None:
        _, _, on_event = collector(1)
        target = SophonWsTarget(f"ws://user:secret@127.0.0.1:{port}/", ())
        subscriber = SophonWsSubscriber(
            [target], on_event, backoff=FAST, connect_timeout=1.0, ping_interval=None
        )
        await subscriber.start()
        for _ in range(200):
            if subscriber.state()[0]["reconnects"] >= 3:
                break
            await asyncio.sleep(0.01)
        [state] = subscriber.state()
        assert state["reconnects"] >= 3 and state["connected"] is False
        assert state["last_error"] is not None
        assert state["url"] == f"ws://127.0.0.1:{port}/"
        assert "secret" not in json.dumps(state)
        started = time.monotonic()
        await subscriber.stop()
        assert time.monotonic() - started < 1.0

    asyncio.run(main())


def test_box_rejecting_the_config_is_retried() -> None:
    box = FakeBox([[]], V1_KEYS)  # expects legacy keys; the client sends v2

    async def main() -> None:
        server, port = await serve(box)
        _, _, on_event = collector(1)
        target = SophonWsTarget(f"ws://127.0.0.1:{port}/", (DEVICE,))
        subscriber = SophonWsSubscriber([target], on_event, backoff=FAST, ping_interval=None)
        await subscriber.start()
        for _ in range(300):
            if box.bad_configs >= 2:
                break
            await asyncio.sleep(0.01)
        assert box.bad_configs >= 2 and box.configs == []
        assert subscriber.state()[0]["last_error"] == "connection closed (code 1008)"
        await subscriber.stop()
        server.stop()

    asyncio.run(main())
