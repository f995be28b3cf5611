"""The durable inbox: restart safety, leases, duplicates, results API, retention, forwarding.

Every test that takes ``make_inbox`` or ``inbox`` runs twice: on the embedded SQLite store
(files under the data folder) and on a real PostgreSQL server (``tests/pg.py``; bytes in the
rows, nothing on local disk). Two ``Inbox`` objects on one database stand for two processes:
a restart, or two replicas.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.push import store
from app.push.event import CameraEvent, PushedImage, sha256_hex
from app.push.inbox import Inbox

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def face_event(
    n: int = 0, *, key: str | None = None, source: str = "hikvision", images: int = 2
) -> CameraEvent:
    pictures = tuple(
        PushedImage("face" if i == 0 else "background", JPEG + bytes([n, i]), "image/jpeg", f"p{i}")
        for i in range(images)
    )
    return CameraEvent(
        source=source,
        kind="face",
        device_id=f"dev-{n}",
        event_time=datetime(2026, 8, 7, 10, 0, n, tzinfo=UTC),
        dedupe_key=key if key is not None else f"pid-{n}",
        payload_hash=sha256_hex(b"body %d" % n),
        metadata={"n": n, "name": "门禁"},
        images=pictures,
    )


def report(accepted: int, rejected: int) -> dict:
    return {
        "image_id": "x",
        "face_total": accepted + rejected,
        "face_efficient_total_resp": accepted,
        "resp": [{"face_id": f"a{i}"} for i in range(accepted)],
        "rejected": [{"face_id": f"r{i}", "reasons": ["blurry"]} for i in range(rejected)],
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeInbox = Callable[..., Inbox]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_inbox(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, clock: FakeClock
) -> Iterator[MakeInbox]:
    """Open an inbox (a process) on this test's database; every one is closed afterwards."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    opened: list[Inbox] = []

    def make(**kwargs: object) -> Inbox:
        kwargs.setdefault("clock", clock)
        box = Inbox(tmp_path, database_url=url, prepare=False, **kwargs)  # type: ignore[arg-type]
        box.prepare(upgrade=True)
        opened.append(box)
        return box

    yield make
    for box in opened:
        box.close()


@pytest.fixture
def inbox(make_inbox: MakeInbox) -> Inbox:
    return make_inbox()


def image_rows(box: Inbox) -> int:
    with box.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(store.images)).scalar_one())


def test_put_is_durable_across_a_new_inbox(
    make_inbox: MakeInbox, backend: str, tmp_path: Path
) -> None:
    first = make_inbox()
    result = first.put(face_event(1))
    assert result.duplicate is False and result.event_id
    first.close()

    if backend == "sqlite":
        mode = sqlite3.connect(tmp_path / "faceq.db").execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        files = sorted(p.name for p in (tmp_path / "images" / result.event_id).iterdir())
        assert files == ["00-face.jpg", "01-background.jpg"]
    else:  # everything in the database, nothing on this "replica's" disk
        assert list(tmp_path.iterdir()) == []
        with first.engine.connect() as conn:
            stored = conn.execute(
                sa.select(store.images.c.path, store.images.c.data).order_by(store.images.c.idx)
            ).all()
        assert stored == [(None, JPEG + b"\x01\x00"), (None, JPEG + b"\x01\x01")]

    second = make_inbox()
    assert second.backlog() == 1
    [summary], cursor = second.list_events()
    assert cursor is None
    assert summary == {
        "id": result.event_id,
        "source": "hikvision",
        "received_at": "2027-01-15T08:00:00.000+00:00",
        "status": "pending",
        "images": 2,
        "faces_accepted": None,
        "faces_rejected": None,
        "device_id": "dev-1",
        "event_time": "2026-08-07T10:00:01+00:00",
    }
    claimed = second.claim("w1", lease_seconds=30)
    assert claimed is not None and claimed.event_id == result.event_id
    assert [i.data for i in claimed.images] == [JPEG + b"\x01\x00", JPEG + b"\x01\x01"]
    assert [(i.role, i.name, i.content_type) for i in claimed.images] == [
        ("face", "p0", "image/jpeg"),
        ("background", "p1", "image/jpeg"),
    ]
    assert claimed.metadata == {"n": 1, "name": "门禁"}
    assert claimed.event_time == datetime(2026, 8, 7, 10, 0, 1, tzinfo=UTC)
    assert claimed.attempts == 1
    second.close()


def test_crash_mid_event_is_reclaimed_after_the_lease(
    make_inbox: MakeInbox, clock: FakeClock
) -> None:
    first = make_inbox()
    event_id = first.put(face_event(1)).event_id
    claimed = first.claim("worker-a", lease_seconds=60)
    assert claimed is not None and claimed.event_id == event_id
    assert first.claim("worker-b", lease_seconds=60) is None  # leased
    first.close()  # the process dies without complete()

    second = make_inbox()
    assert second.claim("worker-b", lease_seconds=60) is None
    assert second.backlog() == 1
    clock.now += 61
    again = second.claim("worker-b", lease_seconds=60)
    assert again is not None and again.event_id == event_id and again.attempts == 2
    second.complete(event_id, [report(1, 0), report(0, 1)])
    assert second.backlog() == 0
    assert second.claim("worker-b", lease_seconds=60) is None
    second.close()


def test_poison_event_fails_after_max_attempts(make_inbox: MakeInbox, clock: FakeClock) -> None:
    box = make_inbox(max_attempts=2)
    event_id = box.put(face_event(1)).event_id
    for _ in range(2):
        assert box.claim("w", lease_seconds=10) is not None
        clock.now += 11
    assert box.claim("w", lease_seconds=10) is None
    event = box.get_event(event_id or "")
    assert event is not None and event["status"] == "failed"
    assert event["error"] == "gave up after 2 attempts whose leases expired"
    box.close()


def test_claim_takes_the_oldest_first(inbox: Inbox, clock: FakeClock) -> None:
    ids = []
    for n in range(3):
        ids.append(inbox.put(face_event(n)).event_id)
        clock.now += 1
    taken = [inbox.claim("w", 30) for _ in range(4)]
    assert [c.event_id if c else None for c in taken] == ids + [None]


def test_complete_then_list_and_get(inbox: Inbox, clock: FakeClock) -> None:
    event_id = inbox.put(face_event(1)).event_id or ""
    assert inbox.claim("w", 30) is not None
    clock.now += 2
    inbox.complete(event_id, [report(2, 1), {"error": {"code": "not_an_image", "message": "x"}}])
    [summary], _ = inbox.list_events()
    assert summary["status"] == "done"
    assert (summary["faces_accepted"], summary["faces_rejected"]) == (2, 1)
    event = inbox.get_event(event_id)
    assert event is not None
    assert event["reports"] == [report(2, 1), {"error": {"code": "not_an_image", "message": "x"}}]
    assert event["metadata"] == {"n": 1, "name": "门禁"}
    assert event["dedupe_key"] == "pid-1"
    assert event["finished_at"] == "2027-01-15T08:00:02.000+00:00"
    assert event["image_files"] == [
        {
            "index": 0,
            "role": "face",
            "name": "p0",
            "content_type": "image/jpeg",
            "size": len(JPEG) + 2,
        },
        {
            "index": 1,
            "role": "background",
            "name": "p1",
            "content_type": "image/jpeg",
            "size": len(JPEG) + 2,
        },
    ]
    inbox.complete(event_id, [])  # completing twice is a no-op
    assert inbox.get_event(event_id)["faces_accepted"] == 2  # type: ignore[index]
    assert inbox.get_event("0" * 32) is None
    assert inbox.get_event("../../etc/passwd") is None
    with pytest.raises(KeyError):
        inbox.complete("f" * 32, [])


def test_duplicates_by_key_and_by_payload_hash(inbox: Inbox, backend: str) -> None:
    first = inbox.put(face_event(1))
    by_key = inbox.put(
        CameraEvent(
            source="hikvision",
            kind="face",
            device_id=None,
            event_time=None,
            dedupe_key="pid-1",
            payload_hash="other",
        )
    )
    assert by_key.duplicate and by_key.event_id == first.event_id
    same_key_other_source = inbox.put(face_event(1, source="sophon_http"))
    assert same_key_other_source.duplicate  # same payload hash
    keyless = face_event(2, key="")
    a, b = inbox.put(keyless), inbox.put(keyless)
    assert not a.duplicate and b.duplicate and a.event_id == b.event_id
    assert inbox.backlog() == 2
    assert inbox.counters()["hikvision"] == {"face": 2, "duplicate": 2}
    assert image_rows(inbox) == 4
    if backend == "sqlite":
        assert len(list((inbox.data_dir / "images").iterdir())) == 2


def test_concurrent_puts_of_the_same_event(inbox: Inbox) -> None:
    results = []
    event = face_event(5)

    def put() -> None:
        results.append(inbox.put(event))

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.event_id for r in results}) == 1
    assert inbox.backlog() == 1


def test_heartbeats_are_counted_not_stored(inbox: Inbox) -> None:
    beat = CameraEvent(
        source="hikvision",
        kind="heartbeat",
        device_id="x",
        event_time=None,
        dedupe_key=None,
        payload_hash="h",
    )
    for _ in range(3):
        assert inbox.put(beat).event_id is None
    ignored = CameraEvent(
        source="hikvision",
        kind="ignored",
        device_id="x",
        event_time=None,
        dedupe_key=None,
        payload_hash="i",
    )
    inbox.put(ignored)
    assert inbox.counters() == {"hikvision": {"heartbeat": 3, "ignored": 1}}
    assert inbox.list_events() == ([], None)
    assert inbox.backlog() == 0


def test_fail_with_retry_backs_off_then_gives_up(make_inbox: MakeInbox, clock: FakeClock) -> None:
    box = make_inbox(max_attempts=2, retry_base_s=10)
    event_id = box.put(face_event(1)).event_id or ""
    assert box.claim("w", 30) is not None
    box.fail(event_id, "decoder crashed", retry=True)
    assert box.claim("w", 30) is None  # not before the backoff
    clock.now += 10
    assert box.claim("w", 30) is not None
    box.fail(event_id, "decoder crashed again", retry=True)  # attempts exhausted
    event = box.get_event(event_id)
    assert event is not None and event["status"] == "failed"
    assert event["error"] == "decoder crashed again"
    other = box.put(face_event(2)).event_id or ""
    box.fail(other, "bad", retry=False)
    assert box.get_event(other)["status"] == "failed"  # type: ignore[index]
    box.close()


def test_list_pagination_and_filters(inbox: Inbox, clock: FakeClock) -> None:
    ids = []
    for n in range(5):
        ids.append(
            inbox.put(face_event(n, source="sophon_http" if n % 2 else "hikvision")).event_id
        )
        clock.now += 1
    for event_id, reports in zip(
        ids[:3], ([report(1, 0)], [report(0, 2)], [report(0, 0)]), strict=True
    ):
        inbox.complete(event_id or "", reports)
    page, cursor = inbox.list_events(limit=2)
    assert [e["id"] for e in page] == [ids[4], ids[3]] and cursor
    page, cursor = inbox.list_events(limit=2, since_cursor=cursor)
    assert [e["id"] for e in page] == [ids[2], ids[1]] and cursor
    page, cursor = inbox.list_events(limit=2, since_cursor=cursor)
    assert [e["id"] for e in page] == [ids[0]] and cursor is None
    assert [e["id"] for e in inbox.list_events(source="sophon_http")[0]] == [ids[3], ids[1]]
    assert [e["id"] for e in inbox.list_events(verdict="accepted")[0]] == [ids[0]]
    assert [e["id"] for e in inbox.list_events(verdict="rejected")[0]] == [ids[1]]
    assert [e["id"] for e in inbox.list_events(verdict="no_face")[0]] == [ids[2]]
    with pytest.raises(ValueError):
        inbox.list_events(verdict="maybe")
    with pytest.raises(ValueError):
        inbox.list_events(since_cursor="abc")


def test_pushed_images_are_read_back_as_sent(inbox: Inbox) -> None:
    """From files (SQLite) or from the row (PostgreSQL): the page shows an event's images."""
    event_id = inbox.put(face_event(4)).event_id or ""
    assert inbox.get_image(event_id, 0) == ("image/jpeg", JPEG + bytes([4, 0]))
    assert inbox.get_image(event_id, 1) == ("image/jpeg", JPEG + bytes([4, 1]))
    assert inbox.get_image(event_id, 2) is None
    assert inbox.get_image(event_id, -1) is None
    assert inbox.get_image("../x", 0) is None


def test_aligned_crops(inbox: Inbox) -> None:
    event_id = inbox.put(face_event(1)).event_id or ""
    inbox.put_crops(event_id, [("3f2a9c", PNG)])
    assert inbox.get_crop(event_id, "3f2a9c") == PNG
    inbox.put_crops(event_id, [("3f2a9c", PNG + b"2")])
    assert inbox.get_crop(event_id, "3f2a9c") == PNG + b"2"
    assert inbox.get_crop(event_id, "nope") is None
    assert inbox.get_crop(event_id, "../x") is None
    with pytest.raises(ValueError):
        inbox.put_crops(event_id, [("../../x", PNG)])
    with pytest.raises(KeyError):
        inbox.put_crops("a" * 32, [("f1", PNG)])


def test_prune_by_age_and_count(inbox: Inbox, clock: FakeClock, backend: str) -> None:
    ids = []
    for n in range(6):
        ids.append(inbox.put(face_event(n)).event_id or "")
        clock.now += 100
    for event_id in ids[:5]:
        inbox.complete(event_id, [report(1, 0)])
    inbox.put_crops(ids[0], [("f0", PNG)])
    # ids[0] was received 600 s ago, ids[1] 500 s ago...; ids[5] is still pending.
    assert inbox.prune(max_age_seconds=450) == 2
    assert inbox.get_event(ids[0]) is None and inbox.get_event(ids[1]) is None
    assert image_rows(inbox) == 4 * 2
    if backend == "sqlite":
        assert not (inbox.data_dir / "images" / ids[0]).exists()
    assert inbox.get_crop(ids[0], "f0") is None
    assert inbox.prune(max_events=2) == 2  # 4 left, 2 oldest finished go
    remaining = [e["id"] for e in inbox.list_events()[0]]
    assert remaining == [ids[5], ids[4]]
    assert inbox.prune(max_events=0) == 1  # the pending one stays
    assert [e["id"] for e in inbox.list_events()[0]] == [ids[5]]


def test_prune_sweeps_orphaned_image_folders(tmp_path: Path, clock: FakeClock) -> None:
    inbox = Inbox(tmp_path, clock=clock)  # image folders exist with file storage (SQLite) only
    orphan = inbox.data_dir / "images" / ("ab" * 16)
    orphan.mkdir()
    (orphan / "00-face.jpg").write_bytes(JPEG)
    old = clock.now - 7200
    os.utime(orphan, (old, old))
    fresh = inbox.data_dir / "images" / ("cd" * 16)
    fresh.mkdir()
    os.utime(fresh, (clock.now, clock.now))
    inbox.prune(max_age_seconds=10**9)
    assert not orphan.exists() and fresh.exists()
    inbox.close()


def test_forward_queue(inbox: Inbox, clock: FakeClock) -> None:
    event_id = inbox.put(face_event(1)).event_id or ""
    inbox.complete(event_id, [report(1, 0)], forward=True)
    assert inbox.forward_backlog() == 1
    [item] = inbox.claim_forwards(limit=5, lease_seconds=30)
    assert item.event_id == event_id and item.attempts == 0
    assert item.payload["id"] == event_id and item.payload["status"] == "done"
    assert item.payload["reports"] == [report(1, 0)]
    assert inbox.claim_forwards() == []  # leased
    inbox.forward_failed(item.item_id, "HTTP 503", base_s=5)
    clock.now += 4
    assert inbox.claim_forwards() == []
    clock.now += 1
    [again] = inbox.claim_forwards()
    assert again.attempts == 1
    inbox.forward_sent(again.item_id)
    assert inbox.forward_backlog() == 0
    manual = inbox.enqueue_forward(event_id, {"custom": True})
    inbox.forward_failed(manual, "gone", max_attempts=1)
    assert inbox.forward_backlog() == 0 and inbox.claim_forwards() == []


def test_metadata_and_reports_are_stored_as_json(make_inbox: MakeInbox) -> None:
    box = make_inbox()
    event_id = box.put(face_event(1)).event_id
    box.close()
    with box.engine.connect() as conn:
        text = conn.execute(
            sa.text("SELECT metadata_json FROM push_events WHERE id = :id"), {"id": event_id}
        ).scalar_one()
    assert json.loads(text) == {"n": 1, "name": "门禁"}


def test_expire_leases_ends_only_the_matching_owners(inbox: Inbox) -> None:
    ids = [inbox.put(face_event(n, images=1)).event_id for n in range(3)]
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
    event_id = inbox.put(face_event(1, images=1)).event_id
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


def test_extend_lease_only_for_the_holder(inbox: Inbox, clock: FakeClock) -> None:
    event_id = inbox.put(face_event(7, images=1)).event_id
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


def test_racing_completions_write_once(make_inbox: MakeInbox, clock: FakeClock) -> None:
    """Replica A's lease expires mid-event, B re-runs it; both finish at the same moment."""
    a, b = make_inbox(), make_inbox()
    event_id = a.put(face_event(3, images=1)).event_id or ""
    assert a.claim("replica-a/1/0", 10).event_id == event_id
    clock.now += 11
    again = b.claim("replica-b/1/0", 10)
    assert again is not None and again.attempts == 2
    start = threading.Barrier(2)
    won: dict[str, bool] = {}

    def finish(name: str, box: Inbox, accepted: int) -> None:
        start.wait()
        won[name] = box.complete(
            event_id,
            [report(accepted, 0)],
            forward=True,
            crops=[(f"{name}{i}", PNG + name.encode()) for i in range(accepted)],
        )

    threads = [
        threading.Thread(target=finish, args=("a", a, 1)),
        threading.Thread(target=finish, args=("b", b, 2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won.values()) == [False, True]
    winner = "a" if won["a"] else "b"
    accepted = 1 if winner == "a" else 2
    event = b.get_event(event_id)
    assert event is not None and event["reports"] == [report(accepted, 0)]
    assert event["faces_accepted"] == accepted
    expected = {"a0": PNG + b"a"} if winner == "a" else {"b0": PNG + b"b", "b1": PNG + b"b"}
    stored = {f"{n}{i}": a.get_crop(event_id, f"{n}{i}") for n in "ab" for i in range(2)}
    assert {face: png for face, png in stored.items() if png is not None} == expected
    assert a.forward_backlog() == 1
    [item] = b.claim_forwards(limit=10)
    assert item.payload["reports"] == [report(accepted, 0)]
    assert a.complete(event_id, [report(5, 5)]) is False  # a late third completion: no-op


def test_concurrent_claims_take_each_event_once(make_inbox: MakeInbox) -> None:
    """Four workers on two "replicas" drain 24 events: each handed out exactly once."""
    boxes = [make_inbox(), make_inbox()]
    ids = {boxes[0].put(face_event(n, images=1)).event_id for n in range(24)}
    taken: list[str] = []
    lock = threading.Lock()

    def work(box: Inbox, name: str) -> None:
        while (claimed := box.claim(name, 600)) is not None:
            with lock:
                taken.append(claimed.event_id)
            box.complete(claimed.event_id, [report(0, 0)])

    threads = [
        threading.Thread(target=work, args=(boxes[n % 2], f"replica-{n % 2}/w/{n}"))
        for n in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)
    assert boxes[1].backlog() == 0


def test_the_migrations_build_exactly_the_tables_the_code_uses(inbox: Inbox) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from app.push import schema

    with inbox.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), store.metadata)
        assert schema.current(conn) == schema.head() == "0002"
    assert diff == []


def test_a_schema_behind_is_refused_with_one_line(backend: str, request, tmp_path) -> None:
    from app.push import schema

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    engine = store.create_engine(tmp_path, url)
    try:
        with pytest.raises(schema.SchemaBehind) as empty:
            schema.check(engine)
        assert str(empty.value) == (
            "the database has no faceq schema (this version needs revision 0002): "
            "run `python -m app db upgrade`"
        )
        assert schema.upgrade(engine, "0001") == (None, "0001")
        with pytest.raises(schema.SchemaBehind) as behind:
            Inbox(tmp_path, engine=engine, prepare=False).prepare(upgrade=False)
        assert str(behind.value) == (
            "the database schema is at revision 0001, this version needs 0002: "
            "run `python -m app db upgrade`"
        )
        assert schema.upgrade(engine) == ("0001", "0002")
        assert schema.upgrade(engine) == ("0002", "0002")  # nothing left to do
        assert schema.check(engine) == "0002"
    finally:
        engine.dispose()


def test_a_database_made_before_migrations_is_stamped_and_upgraded(tmp_path: Path) -> None:
    """The tables as the earlier versions created them (no alembic_version), with an event."""
    db = sqlite3.connect(tmp_path / "faceq.db")
    db.executescript(
        """
        CREATE TABLE push_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id VARCHAR(32) NOT NULL
          UNIQUE, source VARCHAR(16) NOT NULL, kind VARCHAR(16) NOT NULL, device_id VARCHAR(255),
          event_time VARCHAR(40), dedupe_key VARCHAR(255), payload_hash VARCHAR(64) NOT NULL,
          metadata_json TEXT NOT NULL, status VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL,
          available_at FLOAT NOT NULL, lease_owner VARCHAR(64), lease_expires FLOAT,
          received_at FLOAT NOT NULL, finished_at FLOAT, image_count INTEGER NOT NULL,
          faces_accepted INTEGER, faces_rejected INTEGER, error TEXT,
          CONSTRAINT uq_push_events_source_key UNIQUE (source, dedupe_key));
        CREATE UNIQUE INDEX ix_push_events_payload_hash ON push_events (payload_hash);
        CREATE INDEX ix_push_events_status_seq ON push_events (status, seq);
        CREATE INDEX ix_push_events_received_at ON push_events (received_at);
        CREATE TABLE push_images (event_id VARCHAR(32) NOT NULL, idx INTEGER NOT NULL,
          role VARCHAR(16) NOT NULL, name VARCHAR(255) NOT NULL, content_type VARCHAR(64) NOT
          NULL, size INTEGER NOT NULL, sha256 VARCHAR(64) NOT NULL, path VARCHAR(255) NOT NULL,
          PRIMARY KEY (event_id, idx));
        CREATE TABLE push_reports (event_id VARCHAR(32) NOT NULL, idx INTEGER NOT NULL,
          report_json TEXT NOT NULL, PRIMARY KEY (event_id, idx));
        CREATE TABLE push_crops (event_id VARCHAR(32) NOT NULL, face_id VARCHAR(64) NOT NULL,
          path VARCHAR(255) NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (event_id, face_id));
        CREATE TABLE push_counters (source VARCHAR(16) NOT NULL, kind VARCHAR(16) NOT NULL,
          count BIGINT NOT NULL, last_at FLOAT NOT NULL, PRIMARY KEY (source, kind));
        CREATE TABLE push_forwards (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id VARCHAR(32)
          NOT NULL, payload_json TEXT NOT NULL, status VARCHAR(16) NOT NULL, attempts INTEGER
          NOT NULL, next_attempt_at FLOAT NOT NULL, created_at FLOAT NOT NULL, sent_at FLOAT,
          last_error TEXT);
        CREATE INDEX ix_push_forwards_event_id ON push_forwards (event_id);
        CREATE INDEX ix_push_forwards_status_next ON push_forwards (status, next_attempt_at);
        INSERT INTO push_events VALUES (1, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'hikvision',
          'face', 'd', NULL, 'k', 'h', '{}', 'pending', 0, 0, NULL, NULL, 1.5, NULL, 1, NULL,
          NULL, NULL);
        INSERT INTO push_images VALUES ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0, 'face', 'p0',
          'image/jpeg', 4, 'x', 'images/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/00-face.jpg');
        """
    )
    db.close()
    folder = tmp_path / "images" / ("a" * 32)
    folder.mkdir(parents=True)
    (folder / "00-face.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    box = Inbox(tmp_path)
    claimed = box.claim("w", 60)
    assert claimed is not None and claimed.event_id == "a" * 32
    assert [i.data for i in claimed.images] == [b"\xff\xd8\xff\xd9"]
    with box.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [("0002",)]
    box.close()
