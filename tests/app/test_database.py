"""The service and its PostgreSQL: down at start-up, lost while running, a schema behind.

A live server (real models) on a throwaway PostgreSQL server that the test starts and stops:
``/livez`` stays 200 throughout; ``/readyz`` is 503 with the reason while the database is
away; pushes are answered 503 then (the device keeps the event) and 200 only once stored; an
event answered 200 before the database went away is still there, and processed, after it
comes back. The password appears in no answer and no log line.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from app.camera import camera_of
from app.push import schema, store
from app.services import Services
from tests import pg
from tests.app.push import samples
from tests.conftest import ROOT
from tests.live import AUTH, TOKEN, make_settings, start_server

pytestmark = pytest.mark.models


@pytest.fixture
def own_server() -> Iterator[pg.PgServer]:
    """A PostgreSQL server of this test alone (it is stopped and started), initialised only."""
    bin_dir, reason = pg.find_bin_dir()
    if bin_dir is None:
        pytest.skip(reason)
    with pg.temporary_server(bin_dir, start=False) as server:
        yield server


def face_push(n: int, jpeg: bytes) -> samples.Sample:
    parts = [
        (b'Content-Disposition: form-data; name="eventinfo"', b"usn=DB%05d&productid=P" % n),
        (
            b'Content-Disposition: form-data; name="image_1"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg",
            jpeg,
        ),
    ]
    body = samples.build(parts, boundary=b"dbBoundary")
    return samples.Sample(
        f"db-{n}", "POST", "/", {"content-type": "multipart/form-data; boundary=dbBoundary"}, body
    )


def send(url: str, sample: samples.Sample) -> requests.Response:
    return requests.post(
        f"{url}/push/{TOKEN}/eventinfo",
        data=sample.body,
        headers={"Content-Type": sample.content_type or ""},
        timeout=30,
    )


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not {what} after {timeout} s"
        time.sleep(0.1)


def fast_reconnects(services: Services) -> None:
    camera = camera_of(services)
    assert camera is not None
    camera.tuning.reconnect_first_s = 0.2
    camera.tuning.reconnect_max_s = 0.5
    camera.tuning.stats_every_s = 0.2
    camera.tuning.poll_s = 0.2


def test_database_down_at_start_then_lost_while_running(
    own_server: pg.PgServer,
    pipeline,
    astronaut_jpeg: bytes,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    url = own_server.url("postgres")
    settings = make_settings(data_dir=str(tmp_path / "var"), database_url=url)
    live = start_server(settings, pipeline, setup=fast_reconnects)
    try:
        # 1. Down at start-up: alive, not ready, with the reason; pushes refused with a 503.
        assert requests.get(f"{live.url}/livez", timeout=5).status_code == 200
        ready = requests.get(f"{live.url}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
        body = ready.json()
        assert body["status"] == "unavailable"
        [reason] = body["reasons"]
        assert reason.startswith("database unavailable: connection failed: connection to server")
        assert body["database"] == {
            "backend": "postgresql",
            "ready": False,
            "schema_revision": None,
            "error": reason,
        }
        refused = send(live.url, face_push(1, astronaut_jpeg))
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert refused.json()["error"]["code"] == "inbox_unavailable"

        # 2. The database comes up (and is migrated): ready, pushes stored and processed.
        own_server.start()
        engine = store.create_engine(tmp_path, url)
        schema.upgrade(engine)
        engine.dispose()
        wait_for(lambda: requests.get(f"{live.url}/readyz", timeout=5).status_code == 200, "ready")
        assert requests.get(f"{live.url}/readyz", timeout=5).json()["database"] == {
            "backend": "postgresql",
            "ready": True,
            "schema_revision": "0002",
            "error": None,
        }
        assert send(live.url, face_push(1, astronaut_jpeg)).content == b"OK"
        events_url = f"{live.url}/events"

        def first_done() -> bool:
            events = requests.get(events_url, headers=AUTH, timeout=5).json()["events"]
            return len(events) == 1 and events[0]["status"] == "done"

        wait_for(first_done, "processed")
        [stored] = requests.get(events_url, headers=AUTH, timeout=5).json()["events"]

        # 3. Lost while running: 503s everywhere it matters, /livez still 200.
        own_server.stop()
        lost = send(live.url, face_push(2, astronaut_jpeg))
        assert lost.status_code == 503 and lost.json()["error"]["code"] == "inbox_unavailable"
        wait_for(
            lambda: requests.get(f"{live.url}/readyz", timeout=5).status_code == 503, "unready"
        )
        assert (
            requests.get(f"{live.url}/readyz", timeout=5)
            .json()["reasons"][0]
            .startswith("database unavailable: ")
        )
        listing = requests.get(events_url, headers=AUTH, timeout=5)
        assert listing.status_code == 503
        assert listing.json()["error"]["code"] == "database_unavailable"
        assert requests.get(f"{live.url}/livez", timeout=5).status_code == 200

        # 4. Back: ready again, the event answered 200 is still there; the refused one is new.
        own_server.start()
        wait_for(lambda: requests.get(f"{live.url}/readyz", timeout=5).status_code == 200, "back")
        assert send(live.url, face_push(2, astronaut_jpeg)).content == b"OK"
        events = requests.get(events_url, headers=AUTH, timeout=5).json()["events"]
        assert [e["id"] for e in events][1:] == [stored["id"]] and len(events) == 2
    finally:
        live.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "database lost: " in logged and "database reachable again" in logged
    assert pg.PASSWORD not in logged


def test_serve_refuses_a_schema_that_is_behind(pg_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FACEQ_DATABASE_URL": pg_url,
        "FACEQ_TOKENS": TOKEN,
        "FACEQ_DATA_DIR": str(tmp_path),
        "FACEQ_PORT": str(pg.free_port()),
        "FACEQ_HOST": "127.0.0.1",
        "FACEQ_CONFIG": str(ROOT / "config" / "config.yaml"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "faceq: the database has no faceq schema (this version needs revision 0002): "
        "run `python -m app db upgrade`"
    )
    assert pg.PASSWORD not in done.stdout + done.stderr
