"""A throwaway PostgreSQL server for the tests: the real server binaries, in a temporary folder.

``initdb`` + ``postgres`` from the Debian ``postgresql`` package (``/usr/lib/postgresql/*/bin``,
or ``FACEQ_PG_BIN``), listening on a free loopback port with password (SCRAM) authentication.
PostgreSQL refuses to run as root, and CI runs as root: there the server runs as the
``postgres`` account the package creates (``setpriv``). ``fsync`` is off: these tests check
queue semantics and replicas, not power loss, and the machine is small.

Where no binary exists, ``find_bin_dir`` says so and the tests that need it skip with that reason.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

USER = "faceq"
PASSWORD = "pg-test-Secret-7d1f"  # tests assert it never shows in logs or answers


def find_bin_dir() -> tuple[Path | None, str]:
    """Return the folder holding ``initdb`` and ``postgres``, or None and why not."""
    candidates = []
    if os.environ.get("FACEQ_PG_BIN"):
        candidates.append(Path(os.environ["FACEQ_PG_BIN"]))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    candidates += [Path(p) for p in versions]
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder, ""
    return None, (
        "no PostgreSQL server binaries (initdb, postgres) found: apt-get install postgresql, "
        "or set FACEQ_PG_BIN"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> list[str]:
    """The prefix that runs a server binary as a non-root user where we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and no 'postgres' user to run the server") from None
    # setpriv execs the binary itself (runuser would stay in between and swallow signals).
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


@dataclass
class PgServer:
    """One ``postgres`` process on ``127.0.0.1:port`` with its data in ``root``."""

    bin_dir: Path
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    durable: bool = False  # fsync as in production (benchmarks); off for the tests

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        prefix = _run_as()
        if prefix:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        done = subprocess.run(
            [
                *prefix,
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - the server's own output
        self.proc = subprocess.Popen(
            [
                *_run_as(),
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.root}",
                "-c",
                f"fsync={'on' if self.durable else 'off'}",
                "-c",
                "max_connections=200",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        engine = sa.create_engine(self.url(), poolclass=sa.pool.NullPool)
        try:
            while True:
                try:
                    with engine.connect() as conn:
                        conn.execute(sa.text("SELECT 1"))
                    return
                except sa.exc.OperationalError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"postgres did not start:\n{self.log_tail()}") from None
                    time.sleep(0.1)
        finally:
            engine.dispose()

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, as when the server goes away."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def log_tail(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def create_database(self) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = sa.engine.make_url(url).database
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            engine.dispose()


@contextlib.contextmanager
def temporary_server(bin_dir: Path, *, start: bool = True) -> Iterator[PgServer]:
    """A fresh server in a folder of its own, initialised (and started, with ``start``); stopped
    and deleted afterwards. Not under pytest's tmp folder: that is private to root, and the
    server may run as postgres."""
    root = Path(tempfile.mkdtemp(prefix="faceq-pg-"))
    root.chmod(0o755)
    server = PgServer(bin_dir, root / "server")
    try:
        server.init()
        if start:
            server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def start_server(root: Path, *, durable: bool = False) -> PgServer:
    """Create and start a fresh server under ``root`` (raises if no binaries exist)."""
    bin_dir, reason = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(reason)
    server = PgServer(bin_dir, root, durable=durable)
    server.init()
    server.start()
    return server
