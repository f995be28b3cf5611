"""``python -m app serve`` as a child process on a free loopback port, for the tests that kill
a whole service (crash recovery, replicas); its output goes to a log file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from tests.conftest import ROOT
from tests.live import TOKEN


class ServeProcess:
    """One service process: the test token, the project's config, ``env`` on top."""

    def __init__(self, log: Path, env: Mapping[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        full_env = {
            **os.environ,
            "FACEQ_HOST": "127.0.0.1",
            "FACEQ_PORT": str(self.port),
            "FACEQ_TOKENS": TOKEN,
            "FACEQ_CONFIG": str(ROOT / "config" / "config.yaml"),
            **env,
        }
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "serve"],
                cwd=ROOT,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait(self, path: str, timeout: float = 120.0) -> None:
        """Wait until ``path`` answers 200 (``/livez``: listening; ``/readyz``: models)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited:\n{self.tail()}")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{path} not 200 after {timeout} s:\n{self.tail()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]
