"""``python -m app db upgrade|check`` on the embedded SQLite store: one line, exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def db(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "db", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "FACEQ_DATA_DIR": str(tmp_path / "var"),
            "FACEQ_CONFIG": str(ROOT / "config" / "config.yaml"),
            "FACEQ_LOG_LEVEL": "WARNING",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_upgrade_then_check(tmp_path: Path) -> None:
    where = tmp_path / "var" / "faceq.db"
    empty = db(tmp_path, "check")
    assert (empty.returncode, empty.stdout) == (1, "")
    assert empty.stderr.splitlines()[-1] == (
        "faceq: the database has no faceq schema (this version needs revision 0002): "
        "run `python -m app db upgrade`"
    )
    first = db(tmp_path, "upgrade")
    assert (first.returncode, first.stdout) == (
        0,
        f"faceq: database schema upgraded from nothing to revision 0002 ({where})\n",
    )
    again = db(tmp_path, "upgrade")
    assert again.stdout == f"faceq: database schema already at revision 0002 ({where})\n"
    current = db(tmp_path, "check")
    assert (current.returncode, current.stdout) == (
        0,
        f"faceq: database schema at revision 0002, as needed ({where})\n",
    )


def test_usage_and_an_unreachable_database(tmp_path: Path) -> None:
    usage = db(tmp_path, "downgrade")
    assert usage.returncode == 2 and usage.stderr.startswith("usage: python -m app db upgrade")
    down = db(
        tmp_path,
        "check",
        FACEQ_DATABASE_URL="postgresql://faceq:s3cret-pw@127.0.0.1:1/faceq",
    )
    assert down.returncode == 1
    assert down.stderr.splitlines()[-1].startswith(
        'faceq: database unavailable: connection failed: connection to server at "127.0.0.1", '
        "port 1 failed: Connection refused"
    )
    assert "s3cret-pw" not in down.stdout + down.stderr
