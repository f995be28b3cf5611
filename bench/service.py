"""The service under test as a subprocess (``python -m app serve`` on a free loopback port), and
a keep-alive upload client for it."""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
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

    def _status_mb(self, key: str) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(rf"{key}:\s+(\d+) kB", status)
        return round(int(match[1]) / 1024.0, 1) if match else float("nan")

    def rss_mb(self) -> float:
        """Resident memory now (``VmRSS``), MB."""
        return self._status_mb("VmRSS")

    def peak_rss_mb(self) -> float:
        """The most resident memory since the process started (``VmHWM``), MB."""
        return self._status_mb("VmHWM")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


class Client:
    """A keep-alive HTTP/1.1 connection that posts one pre-encoded multipart upload.

    The multipart body is built once, so the timings hold the service's work and the transfer,
    not the client library's encoding (``requests`` added about 1.5 ms per 100 KB upload).
    """

    BOUNDARY = "faceq-bench-boundary-7d1f"

    def __init__(self, url: str, token: str, name: str, data: bytes) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.conn: http.client.HTTPConnection | None = None
        self.body = b"".join(
            (
                f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode(),
                data,
                f"\r\n--{self.BOUNDARY}--\r\n".encode(),
            )
        )
        self.headers = {
            "Authorization": token,
            "Content-Type": f"multipart/form-data; boundary={self.BOUNDARY}",
        }

    def upload(self, query: str = "images=all") -> tuple[int, float, bytes]:
        """One ``POST /upload?{query}``; return status, wall milliseconds and body."""
        started = time.perf_counter()
        for attempt in (0, 1):  # a kept-alive connection the server closed: reconnect once
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request("POST", "/upload?" + query, self.body, self.headers)
                resp = self.conn.getresponse()
                body = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp.status, (time.perf_counter() - started) * 1000.0, body
