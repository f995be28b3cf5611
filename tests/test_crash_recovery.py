"""Nothing pushed is lost, nothing is processed twice: the real service as a subprocess,
killed with SIGKILL before and during processing, then restarted.

1. First run with ``FACEQ_INBOX_WORKERS=0``: a push is answered 200 and only stored. SIGKILL.
2. Second run with a worker: the stored event is processed; a long event is killed mid-way
   (SIGKILL as soon as the database shows it ``processing``).
3. Third run: the half-done event is re-run; an event claimed by a worker of another host,
   whose lease expired, is re-run too; a re-delivery of the first push is a duplicate.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from app.push import eventinfo, hikvision
from app.push.inbox import Inbox
from tests.app.push import samples
from tests.handlers.push_support import AUTH, EVENTINFO_ACK, get_event, list_events, push
from tests.serve_process import ServeProcess

pytestmark = [pytest.mark.shared_data, pytest.mark.models]

BIG_IMAGES = 8
BIG_FACE = Path("faces/deepface/img4.jpg")  # ~1 s each on a small CPU: a wide kill window


def start_service(tmp: Path, workers: int, run: int) -> ServeProcess:
    """A service on ``tmp``'s data folder (shared by the runs) with ``workers`` inbox workers."""
    env = {
        "FACEQ_DATA_DIR": str(tmp / "var"),
        "FACEQ_TOKEN_FILE": str(tmp / "token"),
        "FACEQ_INBOX_WORKERS": str(workers),
    }
    return ServeProcess(tmp / f"run{run}.log", env)


def big_push(data_dir: Path) -> samples.Sample:
    """An eventinfo push with many face thumbnails (processing takes seconds)."""
    jpeg = (data_dir / BIG_FACE).read_bytes()
    parts = [
        (
            b'Content-Disposition: form-data; name="eventinfo"',
            b"usn=BIG0000001&productid=PRD-FD-01&isotime=2026-11-21T10:00:00%2B0000",
        )
    ]
    for n in range(1, BIG_IMAGES + 1):
        header = f'Content-Disposition: form-data; name="image_{n}"; filename="image_{n}.jpg"'
        parts.append((header.encode() + b"\r\nContent-Type: image/jpeg", jpeg))
    body = samples.build(parts, boundary=b"bigBoundary")
    headers = {"content-type": "multipart/form-data; boundary=bigBoundary"}
    return samples.Sample("big", "POST", "/", headers, body)


def status_in_db(data_dir: Path, event_id: str) -> str | None:
    with sqlite3.connect(data_dir / "faceq.db", timeout=5) as db:
        row = db.execute("SELECT status FROM push_events WHERE id = ?", (event_id,)).fetchone()
    return row[0] if row else None


def wait_done(service: ServeProcess, count: int, timeout: float = 180.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = list_events(service.url)
        if len(events) == count and all(e["status"] == "done" for e in events):
            return events
        time.sleep(0.3)
    raise AssertionError(f"not all done: {events}\n{service.tail()}")


def test_pushes_survive_sigkill_and_run_exactly_once(data_dir: Path, tmp_path: Path) -> None:
    var = tmp_path / "var"
    jpeg = samples.face_jpeg(data_dir)
    first = samples.load(data_dir / "cameras" / "A_eventinfo_face_pct2B.http", jpeg)
    big = big_push(data_dir)

    # An event a worker on another host claimed and never finished; its lease ends at once.
    inbox = Inbox(var)
    terminal = samples.load(
        data_dir / "cameras" / "D_hik_acs_AccessControllerEvent_Picture.http", jpeg
    )
    [abandoned_event] = hikvision.parse(terminal.body, terminal.content_type)
    abandoned = inbox.put(abandoned_event).event_id
    claimed = inbox.claim("other-host/0badf00d/0", lease_seconds=1.0)
    assert claimed is not None and claimed.event_id == abandoned
    inbox.close()
    assert eventinfo.parse(big.body, big.content_type)[0].images  # the big push parses

    services: list[ServeProcess] = []
    try:
        # 1. Store only, then die without warning.
        one = start_service(tmp_path, workers=0, run=1)
        services.append(one)
        one.wait("/livez")
        resp = push(one.url, "/eventinfo", first, timeout=60)
        assert (resp.status_code, resp.headers["Content-Type"], resp.content) == (
            200,
            *EVENTINFO_ACK,
        )
        assert push(one.url, "/eventinfo", big, timeout=60).status_code == 200
        stored = {e["images"]: e["id"] for e in list_events(one.url)}
        first_id, big_id = stored[3], stored[BIG_IMAGES]
        assert {e["status"] for e in list_events(one.url)} == {"pending"}
        one.kill()

        # 2. Process; die in the middle of the big event.
        two = start_service(tmp_path, workers=1, run=2)
        services.append(two)
        deadline = time.monotonic() + 180
        while status_in_db(var, big_id) != "processing":
            assert time.monotonic() < deadline, two.tail()
            assert two.proc.poll() is None, two.tail()
            time.sleep(0.02)
        two.kill()
        assert status_in_db(var, big_id) == "processing"
        assert status_in_db(var, first_id) == "done"  # older events went first

        # 3. Resume: the half-done event re-runs; nothing is done twice.
        three = start_service(tmp_path, workers=1, run=3)
        services.append(three)
        three.wait("/livez")
        assert push(three.url, "/eventinfo", first, timeout=60).status_code == 200  # a re-delivery
        events = wait_done(three, 3)
        assert sorted(e["id"] for e in events) == sorted([first_id, big_id, abandoned])
        attempts = {e["id"]: get_event(three.url, e["id"])["attempts"] for e in events}
        assert attempts == {first_id: 1, big_id: 2, abandoned: 2}
        for event_id, images in ((first_id, 3), (big_id, BIG_IMAGES), (abandoned, 1)):
            event = get_event(three.url, event_id)
            assert len(event["reports"]) == images
            assert [r["index"] for r in event["reports"]] == list(range(images))
            assert all(r["face_total"] == 1 for r in event["reports"])
        resp = requests.get(f"{three.url}/events", params={"source": "eventinfo"}, headers=AUTH)
        assert len(resp.json()["events"]) == 2
        three.stop()
        assert three.proc.returncode == 0, three.tail()
    finally:
        for service in services:
            service.stop()
