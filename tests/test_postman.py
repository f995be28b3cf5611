"""The Postman collection, run by newman (installed from package.json) against a live server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.app.push import samples
from tests.conftest import ROOT, shared_data_dir
from tests.live import AUTH, TOKEN, LiveServer, make_settings, start_server

pytestmark = pytest.mark.models
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "postman" / "faceq.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "faceq.postman_environment.json"


def newman_or_skip() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed on this machine: cannot run newman")
    if not NEWMAN.exists():
        pytest.fail("node_modules/.bin/newman is missing: run `make test` (it runs `npm ci`)")
    return NEWMAN


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory) -> LiveServer:
    """A live service that already holds the repository's camera samples, where available."""
    live = start_server(make_settings(data_dir=str(tmp_path_factory.mktemp("var"))), pipeline)
    push_camera_samples(live.url)
    yield live
    live.stop()


def push_camera_samples(url: str, timeout: float = 300.0) -> int:
    """Push every HTTP sample of data/cameras (a real face inside) and wait until processed.

    Returns the number of events stored; 0 where the shared data folder is absent (the
    collection's own first run then gives the second its history).
    """
    data = shared_data_dir()
    if not (data / "cameras").is_dir():
        return 0
    jpeg = samples.face_jpeg(data)
    for path in samples.camera_files(data):
        if path.name.startswith("B_"):
            continue  # the SE box's WebSocket frames, not HTTP pushes
        sample = samples.load(path, jpeg)
        headers = {"Content-Type": sample.content_type} if sample.content_type else {}
        resp = requests.post(f"{url}/push/{TOKEN}", data=sample.body, headers=headers, timeout=60)
        assert resp.status_code == 200, (path.name, resp.text)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = requests.get(f"{url}/events?limit=500", headers=AUTH, timeout=30).json()["events"]
        if events and all(e["status"] != "pending" for e in events):
            return len(events)
        time.sleep(0.5)
    raise AssertionError("the camera samples were not processed in time")


def test_collection_and_environment_are_postman_v21():
    collection = json.loads(COLLECTION.read_text(encoding="utf-8"))
    assert collection["info"]["schema"].endswith("/collection/v2.1.0/collection.json")
    env = json.loads(ENVIRONMENT.read_text(encoding="utf-8"))
    assert {v["key"] for v in env["values"]} >= {"baseUrl", "token", "imageFile"}
    text = COLLECTION.read_text(encoding="utf-8")
    assert "{{baseUrl}}" in text and "{{token}}" in text
    assert TOKEN not in text  # no real token committed
    # every request asserts something
    for folder in collection["item"]:
        for item in folder["item"]:
            tests = [e for e in item["event"] if e["listen"] == "test"]
            assert tests and any("pm.test(" in line for line in tests[0]["script"]["exec"])


def test_newman_passes_twice_against_a_service_with_history(server, astronaut_jpeg, tmp_path):
    """Each run pushes events of its own (time-stamped identities), so it passes against a
    service holding the camera samples and then the previous run's events."""
    newman = newman_or_skip()
    image = tmp_path / "astronaut.jpg"
    image.write_bytes(astronaut_jpeg)
    before = len(requests.get(f"{server.url}/events?limit=500", headers=AUTH).json()["events"])
    for run in (1, 2):
        run_newman(newman, server, image, tmp_path / f"newman-{run}.json")
    after = requests.get(f"{server.url}/events?limit=500", headers=AUTH).json()["events"]
    # every run stored an eventinfo and a Sophon event of its own
    assert len(after) == before + 4
    assert len({e["device_id"] for e in after if e["source"] == "eventinfo"}) >= 3


def run_newman(newman: Path, server: LiveServer, image: Path, report: Path) -> None:
    folders = ["service", "images", "camera"]
    cmd = [
        str(newman), "run", str(COLLECTION),
        "--environment", str(ENVIRONMENT),
        "--env-var", f"baseUrl={server.url}",
        "--env-var", f"token={TOKEN}",
        "--env-var", f"imageFile={image}",
        "--env-var", f"notImageFile={ROOT / 'postman' / 'not-an-image.txt'}",
        "--reporters", "cli,json",
        "--reporter-json-export", str(report),
        "--color", "off",
        "--timeout-request", "120000",
    ]  # fmt: skip
    for folder in folders:
        cmd += ["--folder", folder]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    output = run.stdout + run.stderr
    table = output[output.find("┌") :] if "┌" in output else output[-4000:]
    print(f"newman folders: {', '.join(folders)}\n{table}")
    assert run.returncode == 0, output[-8000:]
    stats = json.loads(report.read_text(encoding="utf-8"))["run"]["stats"]
    assert stats["assertions"]["failed"] == 0 and stats["requests"]["failed"] == 0
    assert stats["assertions"]["total"] >= 50
    # every request of the selected folders ran (an event still pending is asked for again)
    collection = json.loads(COLLECTION.read_text(encoding="utf-8"))
    expected = sum(len(f["item"]) for f in collection["item"] if f["name"] in folders)
    assert stats["requests"]["total"] >= expected
    assert not re.search(r"\bfailure\b", output.lower().split("┌")[0] if "┌" in output else "")
