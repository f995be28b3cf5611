"""deepface's ``extract_faces`` (mtcnn backend) in a side environment of its own.

deepface pins its own stack (tf-keras, opencv-contrib, retina-face), so it never enters the
service's environment: ``ensure_venv`` builds ``bench/out/deepface-venv`` once with
``python -m venv`` and pip (PyPI only; later runs reuse it while its stamp matches
``REQUIREMENTS``), and ``DeepfaceWorker`` runs one long-lived process in it that times
``DeepFace.extract_faces(path, detector_backend="mtcnn", align=True)`` on request.

Installed in two steps so that pip does not pull the full ``tensorflow`` distribution beside
``tensorflow-cpu`` (tf-keras and retina-face name ``tensorflow``; both distributions install the
same ``tensorflow`` module, and the second would overwrite the first): the stack first, then
``deepface``, ``retina-face`` and ``tf-keras`` with ``--no-deps``.

Nothing may come from the network at run time. deepface's mtcnn backend builds
``mtcnn.MTCNN()``, whose weights ship inside the ``mtcnn`` wheel; the worker still refuses
every non-loopback connection (``socket.socket.connect`` replaced before deepface is imported)
and points ``DEEPFACE_HOME`` at an empty folder under ``bench/out``, and each answer says which
connections were refused and which files appeared under that folder, so a download attempt
shows up in the result instead of passing unnoticed.

By hand: ``.venv/bin/python bench/deepface_side.py IMAGE... [--repeats 3]`` builds the
environment if needed and prints one JSON line per image.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = ROOT / "bench" / "out" / "deepface-venv"

# The stack, installed with its dependencies; versions pinned where deepface's behaviour or
# speed depends on them (the figures were measured with these).
STACK: tuple[str, ...] = (
    "tensorflow-cpu==2.21.0",
    "mtcnn==1.0.0",
    "numpy>=1.26,<3",
    "opencv-contrib-python-headless>=4.9",
    "onnxruntime>=1.13",
    "pandas>=1.5",
    "requests>=2.27",
    "gdown>=4.7",
    "tqdm>=4.30",
    "Pillow>=9",
    "werkzeug>=2",  # deepface.commons.image_utils imports it (a Flask piece) at import time
)
# Installed with --no-deps: each names ``tensorflow`` (the full distribution) as a dependency.
NO_DEPS: tuple[str, ...] = ("deepface==0.0.103", "tf-keras==2.21.0", "retina-face==0.0.19")
REQUIREMENTS = {"stack": list(STACK), "no_deps": list(NO_DEPS)}
STAMP = "faceq-bench-stamp.json"


def venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def ensure_venv(path: Path = DEFAULT_VENV, log: Any = sys.stderr) -> Path:
    """Build (or reuse) the side environment; return its python.

    A folder whose stamp matches ``REQUIREMENTS`` is used as it is; otherwise pip installs the
    requirements into it (creating it first if needed: what is already there and satisfies
    them stays). pip's output goes to ``path.parent / "deepface-venv-pip.log"``.

    Raises:
        SystemExit: pip failed (its log names the reason).
    """
    python = venv_python(path)
    stamp = path / STAMP
    if python.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == REQUIREMENTS:
                return python
        except json.JSONDecodeError:
            pass
    print(f"installing deepface's side environment in {path} (minutes)", file=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not python.is_file():
        venv.EnvBuilder(clear=True, with_pip=True).create(path)
    stamp.unlink(missing_ok=True)
    pip_log = path.parent / "deepface-venv-pip.log"
    with open(pip_log, "w") as out:
        for extra, packages in (([], STACK), (["--no-deps"], NO_DEPS)):
            cmd = [str(python), "-m", "pip", "install", "-q", *extra, *packages]
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
            if proc.returncode:
                raise SystemExit(f"pip failed building {path}; see {pip_log}")
    stamp.write_text(json.dumps(REQUIREMENTS))
    return python


# Runs inside the side environment: one JSON request per stdin line
# ({"image": PATH, "repeats": N}), one JSON answer per stdout line.
WORKER = r"""
import json, os, socket, statistics, sys, time, warnings
refused = []
_connect = socket.socket.connect
def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")):
        return _connect(self, address)
    refused.append(str(address))
    raise OSError(f"faceq bench: network refused ({address})")
socket.socket.connect = _guarded
home = os.environ["DEEPFACE_HOME"]
warnings.filterwarnings("ignore")
started = time.perf_counter()
from deepface import DeepFace
from importlib.metadata import version
import_s = time.perf_counter() - started
def files():
    return sorted(os.path.relpath(os.path.join(d, f), home)
                  for d, _, fs in os.walk(home) for f in fs)
before = files()
versions = {d: version(d) for d in ("deepface", "mtcnn", "tensorflow-cpu", "tf-keras")}
print(json.dumps({"ready": True, **versions, "import_s": round(import_s, 2)}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    try:
        run = lambda: DeepFace.extract_faces(req["image"], detector_backend="mtcnn", align=True)
        faces = run()  # warm-up: builds MTCNN once (cached by deepface), plans the kernels
        times = []
        for _ in range(int(req["repeats"])):
            t = time.perf_counter(); faces = run(); times.append(time.perf_counter() - t)
        answer = {"faces": len(faces), "median_ms": statistics.median(times) * 1000.0,
                  "min_ms": min(times) * 1000.0, "n": len(times)}
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    answer["refused_connections"] = list(refused)
    answer["new_files"] = [f for f in files() if f not in before]
    print(json.dumps(answer), flush=True)
"""


class DeepfaceWorker:
    """One process in the side environment, timing ``extract_faces`` image by image.

    It waits on stdin between requests (no CPU used), so it can stay up while the service is
    measured in the rounds between its own.
    """

    def __init__(self, python: Path, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DEEPFACE_HOME": str(home),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONWARNINGS": "ignore",
        }
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [str(python), "-c", WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=home,
        )
        self.info = self._read()
        if not self.info.get("ready"):
            raise SystemExit(f"deepface worker did not start: {self.info}")

    def _read(self) -> dict[str, Any]:
        """The worker's next JSON answer. deepface's own log lines also go to stdout (on a
        fresh home: "Directory ... has been created"); they are skipped."""
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit("deepface worker exited (run bench/deepface_side.py IMAGE to see)")
            try:
                answer = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(answer, dict):
                return answer

    def time_image(self, image: Path, repeats: int) -> dict[str, Any]:
        """Warm-up plus ``repeats`` timed ``extract_faces`` calls on ``image``.

        Returns:
            ``faces``, ``median_ms``, ``min_ms``, ``n``, ``refused_connections`` and
            ``new_files`` (both empty when nothing tried the network or wrote a model).

        Raises:
            SystemExit: deepface raised, or tried to reach the network.
        """
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"image": str(image), "repeats": repeats}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise SystemExit(f"deepface extract_faces failed on {image}: {answer['error']}")
        if answer["refused_connections"] or answer["new_files"]:
            raise SystemExit(f"deepface tried to download something: {answer}")
        return answer

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per image")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    args = parser.parse_args(argv)
    worker = DeepfaceWorker(ensure_venv(args.venv), args.venv.parent / "deepface-home")
    try:
        print(json.dumps(worker.info))
        for image in args.images:
            print(json.dumps({"image": str(image), **worker.time_image(image, args.repeats)}))
    finally:
        worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
