"""Start-up refusals of ``python -m app serve``: one line naming the problem, exit status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def serve(env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEQ_")}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env.update(
        {"FACEQ_PORT": str(port), "FACEQ_DATA_DIR": str(tmp_path), "FACEQ_TOKENS": "a-test-token"}
    )
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_invalid_setting_stops_with_one_line(tmp_path):
    done = serve({"FACEQ_MIN_FACE_SIZE": "abc"}, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "faceq: invalid FACEQ_MIN_FACE_SIZE: expected an integer"


def test_missing_hopenet_snapshot_stops_with_its_path(tmp_path):
    missing = tmp_path / "nope" / "hopenet_robust_alpha1.pkl"
    done = serve(
        {"FACEQ_POSE_ESTIMATOR": "hopenet", "FACEQ_HOPENET_SNAPSHOT": str(missing)}, tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"faceq: hopenet snapshot not found: {missing}"


@pytest.mark.models
def test_malformed_hopenet_snapshot_stops_start_up_naming_the_path(tmp_path):
    bad = tmp_path / "hopenet_robust_alpha1.pkl"
    bad.write_text("this is not a torch state dict\n")
    done = serve({"FACEQ_POSE_ESTIMATOR": "hopenet", "FACEQ_HOPENET_SNAPSHOT": str(bad)}, tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("faceq: cannot start: SnapshotError: Hopenet snapshot ")
    assert str(bad) in last
