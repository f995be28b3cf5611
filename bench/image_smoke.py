"""Build the container image offline, start it, wait for /readyz, upload a photo (not CI).

    .venv/bin/python bench/image_smoke.py [--postgres] [--no-build] [--base IMAGE]

1. ``make image-base`` when the base is missing (podman: debootstrap, no registry needed);
2. ``make image`` (wheelhouse from this machine's pip, ``pip install --no-index`` inside), timed;
3. the image's size; then the image started as Kubernetes starts it (read-only root, ``/tmp``
   a tmpfs, ``/data`` a volume, non-root), the time to ``/readyz`` 200, and one ``/upload``;
4. with ``--postgres``: a throwaway PostgreSQL server (``tests/pg.py``), the image's own
   ``python -m app db upgrade`` run against it, and the service started on it.

The last line is one JSON object with the figures (``bench/RESULTS.md``, "Container image").
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import pg  # noqa: E402 - the throwaway PostgreSQL of the tests

PHOTO = ROOT.parent / "shared" / "data" / "faces" / "deepface" / "img12.jpg"


def engine() -> list[str]:
    if shutil.which("docker"):
        if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0:
            return ["docker"]
    if shutil.which("podman"):
        return ["podman", "--runtime=runc", "--cgroup-manager=cgroupfs"]
    raise SystemExit("neither docker nor podman found")


def make(target: str, **variables: str) -> float:
    start = time.perf_counter()
    args = ["make", "-C", str(ROOT), target, *(f"{k}={v}" for k, v in variables.items())]
    subprocess.run(args, check=True)
    return time.perf_counter() - start


def image_exists(cmd: list[str], image: str) -> bool:
    found = subprocess.run([*cmd, "image", "inspect", image], capture_output=True, check=False)
    return found.returncode == 0


def run_container(cmd: list[str], image: str, env: dict[str, str], *args: str) -> list[str]:
    # /data: the image's VOLUME (an anonymous volume owned by the image's user, gone with --rm)
    flags = ["--network=host", "--read-only", "--tmpfs", "/tmp"]
    if cmd[0] == "podman":
        # Inside this VM root lacks CAP_SYS_RESOURCE, so runc cannot give the container
        # podman's default limits (above the VM's): ask for lower ones. Its HEALTHCHECK timers
        # need systemd: /readyz is probed from here instead.
        flags += ["--ulimit", "nofile=16384:16384", "--ulimit", "nproc=8192:8192"]
        flags += ["--health-cmd=none"]
    for key, value in env.items():
        flags += ["-e", f"{key}={value}"]
    return [*cmd, "run", "--rm", *flags, image, *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="faceq:0.1.0")
    parser.add_argument("--base", default="localhost/faceq-base:bookworm")
    parser.add_argument("--no-build", action="store_true", help="use the image as it is")
    parser.add_argument("--postgres", action="store_true", help="serve on a throwaway PostgreSQL")
    parser.add_argument("--photo", type=Path, default=PHOTO)
    opts = parser.parse_args()
    cmd = engine()
    venv = str(Path(sys.prefix))
    figures: dict[str, object] = {"engine": cmd[0], "image": opts.image, "base": opts.base}
    if not opts.no_build:
        if cmd[0] == "podman" and not image_exists(cmd, opts.base):
            figures["base_build_s"] = round(make("image-base", ENGINE="podman"), 1)
        figures["build_s"] = round(
            make("image", VENV=venv, IMAGE=opts.image, BASE_IMAGE=opts.base), 1
        )
    size = subprocess.run(
        [*cmd, "image", "inspect", "--format", "{{.Size}}", opts.image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    figures["image_bytes"] = int(size)
    figures["image_gb"] = round(int(size) / 1e9, 2)

    token = secrets.token_hex(16)
    port = pg.free_port()
    env = {"FACEQ_TOKENS": token, "FACEQ_PORT": str(port), "FACEQ_HOST": "127.0.0.1"}
    server = None
    root = Path(tempfile.mkdtemp(prefix="faceq-pg-"))
    root.chmod(0o755)
    container = f"faceq-smoke-{port}"
    try:
        if opts.postgres:
            server = pg.start_server(root / "server")
            env["FACEQ_DATABASE_URL"] = server.url("postgres")
            migrate = subprocess.run(
                run_container(cmd, opts.image, env, "python", "-m", "app", "db", "upgrade"),
                capture_output=True,
                text=True,
                check=False,
            )
            print(migrate.stdout.strip(), migrate.stderr.strip()[-500:], sep="\n")
            figures["db_upgrade"] = migrate.stdout.strip()
            if migrate.returncode != 0:
                raise SystemExit("db upgrade in the image failed")
        start = time.perf_counter()
        argv = run_container(cmd, opts.image, env)
        argv[argv.index("run") + 1 : argv.index("run") + 1] = ["-d", "--name", container]
        subprocess.run(argv, check=True, capture_output=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while True:
            try:
                ready = requests.get(f"{url}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("no /readyz 200 within 10 minutes")
            time.sleep(0.5)
        figures["ready_s"] = round(time.perf_counter() - start, 1)
        figures["readyz_database"] = ready.json().get("database")
        with open(opts.photo, "rb") as fh:
            upload = requests.post(
                f"{url}/upload?images=none&mark=0",
                headers={"Authorization": token},
                files=[("image", (opts.photo.name, fh, "image/jpeg"))],
                timeout=120,
            )
        report = upload.json()
        figures["upload_status"] = upload.status_code
        figures["faces"] = report.get("face_total")
        figures["accepted"] = report.get("face_efficient_total_resp")
        figures["user"] = subprocess.run(
            [*cmd, "exec", container, "id", "-u"], capture_output=True, text=True, check=False
        ).stdout.strip()
    finally:
        subprocess.run([*cmd, "rm", "-f", container], capture_output=True, check=False)
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures))
    return 0 if figures.get("upload_status") == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
