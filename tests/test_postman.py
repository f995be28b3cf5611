"""The Postman collection, run by newman (installed from package.json) against a live server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.live import TOKEN, LiveServer, make_settings, start_server

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
    live = start_server(make_settings(data_dir=str(tmp_path_factory.mktemp("var"))), pipeline)
    yield live
    live.stop()


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


def test_newman_runs_the_collection_without_failure(server, astronaut_jpeg, tmp_path):
    newman = newman_or_skip()
    image = tmp_path / "astronaut.jpg"
    image.write_bytes(astronaut_jpeg)
    report = tmp_path / "newman.json"
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
