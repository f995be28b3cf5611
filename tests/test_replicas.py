"""Two replicas on one PostgreSQL: nothing lost, nothing done twice, one list of events.

The real service twice (``python -m app serve`` subprocesses, one worker each) on one database
that ``python -m app db upgrade`` created. Camera pushes go alternately to both; as soon as
replica A holds a lease (an event in processing under one of its worker ids) it is SIGKILLed.
Replica B must take that event over once the lease runs out and finish every event: each done
once, with one report per image and the crops of exactly the faces its reports accept, and
both replicas' ``/events`` listed the same events.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from app.push import store
from tests.app.push import samples
from tests.conftest import ROOT
from tests.handlers.push_support import get_event, list_events, push
from tests.live import TOKEN
from tests.serve_process import ServeProcess

pytestmark = [pytest.mark.shared_data, pytest.mark.models]

EVENTS = 10
IMAGES = 2
LEASE_S = 5
FACE = Path("faces/deepface/img4.jpg")


class Replica(ServeProcess):
    """A service on the shared database; its own data folder stays empty."""

    def __init__(self, tmp: Path, name: str, database_url: str) -> None:
        env = {
            "FACEQ_DATA_DIR": str(tmp / name),  # stays empty: everything is in the database
            "FACEQ_TOKEN_FILE": str(tmp / name / "token"),
            "FACEQ_INBOX_WORKERS": "1",
            "FACEQ_EXECUTOR_WORKERS": "1",
            "FACEQ_LEASE_SECONDS": str(LEASE_S),
            "FACEQ_DATABASE_URL": database_url,
        }
        super().__init__(tmp / f"{name}.log", env)

    def instance(self) -> str:
        found = re.search(r"camera intake ready: \d+ workers \(ids (\S+)/<n>\)", self.tail())
        assert found, self.tail()
        return found.group(1)


def event_push(n: int, jpeg: bytes) -> samples.Sample:
    """An eventinfo push of its own (device serial number ``n``) with ``IMAGES`` faces."""
    parts = [
        (
            b'Content-Disposition: form-data; name="eventinfo"',
            b"usn=REPLICA%05d&productid=PRD-FD-01&isotime=2026-11-21T10:00:00%%2B0000" % n,
        )
    ]
    for i in range(1, IMAGES + 1):
        header = f'Content-Disposition: form-data; name="image_{i}"; filename="image_{i}.jpg"'
        parts.append((header.encode() + b"\r\nContent-Type: image/jpeg", jpeg))
    body = samples.build(parts, boundary=b"replicaBoundary")
    headers = {"content-type": "multipart/form-data; boundary=replicaBoundary"}
    return samples.Sample(f"replica-{n}", "POST", "/", headers, body)


def leases(engine: sa.Engine) -> dict[str, str | None]:
    table = store.events
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.status, table.c.lease_owner)).all()
    return {r.id: r.lease_owner if r.status == "processing" else r.status for r in rows}


def test_a_killed_replicas_events_are_finished_once_by_the_other(
    data_dir: Path, tmp_path: Path, pg_url: str
) -> None:
    migrate = subprocess.run(
        [sys.executable, "-m", "app", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, "FACEQ_DATABASE_URL": pg_url, "FACEQ_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout.startswith("faceq: database schema upgraded from nothing to revision")
    assert "pg-test-Secret" not in migrate.stdout + migrate.stderr

    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    a = Replica(tmp_path, "a", pg_url)
    b = Replica(tmp_path, "b", pg_url)
    replicas = [a, b]
    try:
        a.wait("/readyz", 300.0)
        b.wait("/readyz", 300.0)
        a_workers = a.instance() + "/"
        jpeg = (data_dir / FACE).read_bytes()
        answered: list[str] = []
        for n in range(EVENTS):
            target = (a, b)[n % 2]
            resp = push(target.url, "/eventinfo", event_push(n, jpeg), timeout=60)
            assert (resp.status_code, resp.content) == (200, b"OK"), resp.text
            answered.append(target.url)
        assert len(answered) == EVENTS
        listed_a = {e["id"] for e in list_events(a.url)}
        listed_b = {e["id"] for e in list_events(b.url)}
        assert len(listed_a) == EVENTS and listed_a == listed_b  # one store, one list

        deadline = time.monotonic() + 120
        while not any((v or "").startswith(a_workers) for v in leases(engine).values()):
            assert time.monotonic() < deadline, a.tail()
            time.sleep(0.02)
        a.kill()
        killed_at = time.monotonic()
        held = {k for k, v in leases(engine).items() if (v or "").startswith(a_workers)}
        assert len(held) == 1  # one worker: one lease

        deadline = time.monotonic() + 300
        events: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            events = list_events(b.url)
            if len(events) == EVENTS and all(e["status"] == "done" for e in events):
                break
            time.sleep(0.3)
        drained_s = time.monotonic() - killed_at
        assert {e["id"] for e in events} == listed_b
        assert all(e["status"] == "done" for e in events), (events, b.tail())

        for summary in events:
            event = get_event(b.url, summary["id"])
            assert [r["index"] for r in event["reports"]] == list(range(IMAGES))
            assert all(r["face_total"] == 1 for r in event["reports"])
            expected_attempts = 2 if summary["id"] in held else 1
            assert event["attempts"] == expected_attempts, (event, b.tail())
            face_ids = sorted(f["face_id"] for r in event["reports"] for f in r["resp"])
            with engine.connect() as conn:
                crops = conn.execute(
                    sa.select(store.crops.c.face_id, store.crops.c.path).where(
                        store.crops.c.event_id == summary["id"]
                    )
                ).all()
            assert sorted(c.face_id for c in crops) == face_ids  # the completing run's only
            assert all(c.path is None for c in crops)
            for face_id in face_ids:
                png = requests.get(
                    f"{b.url}/events/{summary['id']}/faces/{face_id}.png",
                    headers={"Authorization": TOKEN},
                    timeout=30,
                )
                assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        with engine.connect() as conn:
            reports = conn.execute(sa.select(sa.func.count()).select_from(store.reports))
            assert reports.scalar_one() == EVENTS * IMAGES
        b_log = b.log.read_text(errors="replace")
        assert f"re-running event {next(iter(held))} after an expired lease" in b_log
        for name in ("a", "b"):  # nothing on a replica's disk: its data folder stays empty
            folder = tmp_path / name
            assert not folder.exists() or list(folder.rglob("*")) == []
        for replica in replicas:
            assert "pg-test-Secret" not in replica.log.read_text(errors="replace")
        print(f"replica test: {EVENTS} events, A killed holding 1, B done {drained_s:.1f} s later")
        b.stop()
        assert b.proc.returncode == 0, b.tail()
    finally:
        for replica in replicas:
            replica.stop()
        engine.dispose()
