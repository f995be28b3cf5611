"""The service under test as a subprocess: ``python -m app serve`` on a free loopback port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


class Service:
    """``python -m app serve`` as a subprocess on a free port with a temporary data dir."""

    def __init__(self, workdir: Path, token: str, extra_env: dict[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir = workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "service.log"
        env = {
            **os.environ,
            "FACEQ_HOST": "127.0.0.1",
            "FACEQ_PORT": str(self.port),
            "FACEQ_DATA_DIR": str(data_dir),
            "FACEQ_TOKENS": token,
            "FACEQ_TOKEN_FILE": str(workdir / "token"),
            "FACEQ_INBOX_WORKERS": "0",
            "FACEQ_LOG_LEVEL": "WARNING",
            "FACEQ_CONFIG": str(ROOT / "config" / "config.yaml"),
            **extra_env,
        }
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Poll ``/readyz`` every 50 ms; return seconds from process start to its first 200."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"service exited; see {self.log_path}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"service not ready after {timeout} s; see {self.log_path}")

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return round(int(match[1]) / 1024.0, 1) if match else float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
