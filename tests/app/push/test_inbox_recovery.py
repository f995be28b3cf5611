"""Inbox additions used by the camera service: ending a dead process's leases, forward status."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.push.event import CameraEvent, PushedImage, sha256_hex
from app.push.inbox import Inbox

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) + b"\xff\xd9"


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def event(n: int) -> CameraEvent:
    return CameraEvent(
        source="hikvision",
        kind="face",
        device_id="dev",
        event_time=datetime(2026, 8, 7, tzinfo=UTC),
        dedupe_key=f"pid-{n}",
        payload_hash=sha256_hex(b"%d" % n),
        images=(PushedImage("face", JPEG + bytes([n]), "image/jpeg", "f"),),
    )


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(tmp_path, clock=Clock())


def test_expire_leases_ends_only_the_matching_owners(inbox: Inbox) -> None:
    ids = [inbox.put(event(n)).event_id for n in range(3)]
    assert inbox.claim("host-a/11111111/0", 3600).event_id == ids[0]
    assert inbox.claim("host-a_x/2222/0", 3600).event_id == ids[1]  # '_' is no LIKE wildcard
    assert inbox.claim("host-b/3333/0", 3600).event_id == ids[2]
    assert inbox.claim("host-a/new/0", 3600) is None
    assert inbox.expire_leases("host-a/") == 1
    again = inbox.claim("host-a/new/0", 3600)
    assert again is not None and (again.event_id, again.attempts) == (ids[0], 2)
    assert inbox.claim("host-a/new/0", 3600) is None
    with pytest.raises(ValueError):
        inbox.expire_leases("")


def test_forward_status_follows_the_queue(inbox: Inbox) -> None:
    event_id = inbox.put(event(1)).event_id
    assert inbox.forward_status(event_id) is None
    assert inbox.forward_status("not-an-id") is None
    inbox.claim("w", 60)
    inbox.complete(event_id, [{"face_total": 0, "resp": []}], forward=True)
    status = inbox.forward_status(event_id)
    assert status is not None
    assert (status["status"], status["attempts"], status["last_error"]) == ("pending", 0, None)
    [item] = inbox.claim_forwards()
    inbox.forward_failed(item.item_id, "HTTP 500", base_s=5.0)
    status = inbox.forward_status(event_id)
    assert (status["status"], status["attempts"], status["last_error"]) == (
        "pending",
        1,
        "HTTP 500",
    )
    assert status["next_attempt_at"] is not None
    inbox.forward_sent(item.item_id)
    status = inbox.forward_status(event_id)
    assert (status["status"], status["next_attempt_at"]) == ("sent", None)
    assert status["sent_at"] is not None


def test_extend_lease_only_for_the_holder(inbox: Inbox) -> None:
    clock = Clock()
    inbox = Inbox(inbox.data_dir, engine=inbox.engine, clock=clock)
    event_id = inbox.put(event(7)).event_id
    assert inbox.claim("host/a/0", 10).event_id == event_id
    clock.now += 8
    assert inbox.extend_lease(event_id, "host/a/0", 10)
    assert not inbox.extend_lease(event_id, "host/b/0", 10)
    clock.now += 8  # past the first lease, within the extended one
    assert inbox.claim("host/b/0", 10) is None
    clock.now += 3
    again = inbox.claim("host/b/0", 10)
    assert again is not None and again.event_id == event_id
    assert not inbox.extend_lease(event_id, "host/a/0", 10)
