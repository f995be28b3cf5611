"""One access-log line per request with its fields; a token in the path never reaches the log."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from tests.live import TOKEN, LiveServer, make_settings, start_server

pytestmark = pytest.mark.models
PUSH_TOKEN = "path-token-must-not-be-logged-4711"


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory) -> LiveServer:
    live = start_server(make_settings(data_dir=str(tmp_path_factory.mktemp("var"))), pipeline)
    yield live
    live.stop()


def access_records(caplog, handler: str, count: int = 1) -> list[logging.LogRecord]:
    # The server logs after it has sent the answer, on its own thread: wait briefly for it.
    deadline = time.monotonic() + 5
    while True:
        found = [r for r in caplog.records if r.name == "faceq.access" and r.handler == handler]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def server_log_text(caplog) -> str:
    """Every record the server side wrote, message and attributes (the client's urllib3 logs
    its own URLs and is not the service)."""
    return "\n".join(
        f"{r.getMessage()} {sorted(vars(r).items(), key=lambda kv: kv[0])}"
        for r in caplog.records
        if not r.name.startswith("urllib3")
    )


def test_upload_is_logged_once_with_its_image_id(server, astronaut_jpeg, caplog):
    caplog.set_level(logging.DEBUG)
    resp = requests.post(
        f"{server.url}/upload?images=none&mark=0",
        files={"image": ("a.jpg", astronaut_jpeg)},
        headers={"Authorization": TOKEN},
        timeout=120,
    )
    assert resp.status_code == 200
    image_id = resp.json()["image_id"]
    (record,) = access_records(caplog, "UploadHandler")
    assert record.levelno == logging.INFO
    assert record.method == "POST"
    assert record.route == "/upload"
    assert record.status == 200
    assert record.image_id == image_id
    assert 0 < record.duration_ms < 120_000
    message = record.getMessage()
    assert message.startswith("method=POST route=/upload handler=UploadHandler status=200 ")
    assert message.endswith(f" image_id={image_id}")
    assert TOKEN not in server_log_text(caplog)


@pytest.mark.parametrize(
    "path",
    [
        f"/push/{PUSH_TOKEN}/eventinfo",
        f"/push/{PUSH_TOKEN}",
        f"//PUSH/{PUSH_TOKEN}/hikvision?x=1",
    ],
)
def test_path_token_is_scrubbed(server, caplog, path):
    caplog.set_level(logging.DEBUG)
    resp = requests.post(
        f"{server.url}{path}", data=b"--x--", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert resp.status_code < 500
    deadline = time.monotonic() + 5
    while not [r for r in caplog.records if r.name == "faceq.access"]:
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.02)
    (record,) = [r for r in caplog.records if r.name == "faceq.access"]
    assert "***" in record.route
    assert record.route.lower().lstrip("/").startswith("push/")
    assert PUSH_TOKEN not in server_log_text(caplog)


def test_probes_log_at_debug(server, caplog):
    caplog.set_level(logging.DEBUG)
    assert requests.get(f"{server.url}/livez", timeout=10).status_code == 200
    (record,) = access_records(caplog, "LivezHandler")
    assert record.levelno == logging.DEBUG
    assert record.image_id is None
