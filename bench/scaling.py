"""The cost curve: per-image latency, its stages and peak memory against image size and faces.

Two series, each point measured through HTTP on the service run as a subprocess
(``bench/service.py``: ``python -m app serve``, default settings but ``FACEQ_MAX_PIXELS`` and
``FACEQ_MAX_BODY_MB`` raised to fit the largest input):

- **image size**: one photo (default ``faces/deepface/img4.jpg``, 2500x1728, one face) resized to
  0.3, 1, 4, 12 and 40 MP, keeping its aspect ratio: ``cv2.INTER_AREA`` down, ``cv2.INTER_CUBIC``
  up (12 and 40 MP are upscaled: no shared photo is that large), saved as JPEG quality 90. A
  fresh service per size, so that its ``VmHWM`` (peak resident memory, ``/proc/PID/status``)
  belongs to that size alone: ``peak_rss_mb`` after the uploads, ``ready_peak_rss_mb`` before.
- **faces**: 1, 5, 20 and 50 real faces on a fixed 1600x800 mid-grey canvas (a 10x5 grid of
  160x160 cells, so the pixels stay the same and only the face work grows). The faces are cut
  from the shared photos: every face the service itself accepts in them (largest first, one
  service answering ``images=none``), a square of 1.6x the box's longer side around the box
  centre, resized to 144x144 with ``INTER_AREA`` (``INTER_CUBIC`` where the box was smaller).
  Each tile set uses distinct faces while there are enough, then repeats them mirrored; the
  canvases are kept under ``bench/out/scaling/`` to look at.

Per point: one or two warm-up uploads, then up to ``--repeats`` sequential
``POST /upload?images=all`` (fewer where one upload takes long: each point gets about
``--budget-s`` seconds, at least two uploads unless ``--repeats 1``), the client's median wall
time and the median of the report's ``timing_ms`` per stage. Growth: weighted least squares
of ``a + b x`` (relative residuals, so the small points count as much as the large ones), the
local exponents ``d log t / d log x`` between neighbouring points, and the knee ``a / b``
(where the fixed cost equals the growing one).

Writes ``bench/scaling_size.png`` and ``bench/scaling_faces.png`` (``--plots``; with ``--quick``
under ``bench/out/scaling/``), prints a table and a Markdown table, and as its last line one JSON
object with every figure.

Usage: ``.venv/bin/python bench/scaling.py [--sizes 0.3 1 4 12 40] [--faces 1 5 20 50]
[--repeats 7] [--budget-s 15] [--plots bench]``; ``--quick``: 0.3 and 1 MP, 1 and 5 faces, two
uploads a point (a smoke run, well under a minute).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from service import Client, Service  # noqa: E402 - bench/service.py, beside this script

from tests.conftest import shared_data_dir  # noqa: E402

DEFAULT_PHOTO = Path("faces") / "deepface" / "img4.jpg"
DEFAULT_SIZES_MP = (0.3, 1.0, 4.0, 12.0, 40.0)
DEFAULT_FACES = (1, 5, 20, 50)
QUERY = "images=all"
JPEG_QUALITY = 90
# The faces canvas: a fixed grid, so that the detector's pyramid is the same for every count.
GRID_COLS, GRID_ROWS, CELL, TILE = 10, 5, 160, 144
TILE_MARGIN = 1.6  # the tile's side over the face box's longer side
MIN_SOURCE_BOX = 48  # px: smaller faces would be upscaled more than 3x into a tile
MIN_TILE_INSIDE = 0.8  # the least part of a tile's square that must lie inside its photo
FACE_SOURCES = ("faces", "headpose")  # folders of the shared data searched for faces
PER_FACE = "_per_face"  # timing_ms keys that are per-face averages, not stages
OUT = ROOT / "bench" / "out" / "scaling"  # git-ignored: the face canvases, quick plots


# -- pure helpers (tested in tests/bench/test_scaling.py) ---------------------------------------


def size_for_megapixels(height: int, width: int, megapixels: float) -> tuple[int, int]:
    """(height, width) with the aspect ratio of ``height x width`` and at most ``megapixels``
    million pixels, as close to it as whole pixels allow."""
    scale = math.sqrt(megapixels * 1e6 / (height * width))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    while h * w > megapixels * 1e6:  # rounding up on both sides may overshoot by a row
        if w / h > width / height:
            w -= 1
        else:
            h -= 1
    return h, w


@dataclass(frozen=True)
class LinearFit:
    """``y = intercept + slope * x``, fitted on relative residuals."""

    intercept: float
    slope: float
    max_rel_residual: float  # the worst |fit - y| / y over the points

    @property
    def knee(self) -> float | None:
        """The ``x`` where the growing part equals the fixed part; None if either is <= 0."""
        if self.slope <= 0 or self.intercept <= 0:
            return None
        return self.intercept / self.slope

    def __call__(self, x: float) -> float:
        return self.intercept + self.slope * x


def fit_linear(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    """Least squares of ``y = a + b x`` weighted by ``1 / y`` (relative residuals).

    Raises:
        ValueError: fewer than two points, or a non-positive ``y``.
    """
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if len(x) < 2 or len(x) != len(y) or np.any(y <= 0):
        raise ValueError("need two or more points with positive y")
    w = 1.0 / y
    design = np.stack([np.ones_like(x), x], axis=1) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(design, y * w, rcond=None)
    rel = np.abs(a + b * x - y) / y
    return LinearFit(float(a), float(b), float(rel.max()))


def local_exponents(xs: Sequence[float], ys: Sequence[float]) -> list[float]:
    """``log(y2 / y1) / log(x2 / x1)`` between neighbouring points (1: linear, 0: flat)."""
    return [math.log(ys[i + 1] / ys[i]) / math.log(xs[i + 1] / xs[i]) for i in range(len(xs) - 1)]


def grid_slots(count: int, slots: int) -> list[int]:
    """``count`` cell indices spread evenly over ``slots`` cells (all of them when equal).

    Raises:
        ValueError: more faces than cells.
    """
    if not 0 < count <= slots:
        raise ValueError(f"{count} faces do not fit {slots} cells")
    return sorted({int(i * slots / count) for i in range(count)})


def tile_box(box: Sequence[float], margin: float) -> tuple[int, int, int]:
    """The square (x, y, side) of ``margin`` times the box's longer side around its centre."""
    x, y, w, h = box
    side = max(1, round(max(w, h) * margin))
    return round(x + w / 2 - side / 2), round(y + h / 2 - side / 2), side


def stage_names(timings: Sequence[dict[str, float]]) -> list[str]:
    """The stages of ``timing_ms`` dicts, in first-seen order, without per-face averages."""
    names: dict[str, None] = {}
    for t in timings:
        names.update(dict.fromkeys(k for k in t if not k.endswith(PER_FACE)))
    return list(names)


# -- inputs --------------------------------------------------------------------------------------


def crop_square(image: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
    """The ``side``-square at (x, y) of ``image``, mid-grey where it leaves the image."""
    out = np.full((side, side, 3), 128, dtype=np.uint8)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + side), min(h, y + side)
    if x1 > x0 and y1 > y0:
        out[y0 - y : y1 - y, x0 - x : x1 - x] = image[y0:y1, x0:x1]
    return out


def cv2_shape(photo: Path) -> tuple[int, int]:
    """(height, width) of a photo as cv2 reads it (EXIF orientation applied)."""
    import cv2

    return cv2.imread(str(photo), cv2.IMREAD_COLOR).shape[:2]


def make_size_series(photo: Path, sizes_mp: Sequence[float], out: Path) -> list[dict[str, Any]]:
    """The photo resized to each size, as JPEG files; their paths, shapes and bytes."""
    import cv2

    bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {photo}")
    height, width = bgr.shape[:2]
    series = []
    for mp in sizes_mp:
        h, w = size_for_megapixels(height, width, mp)
        up = h * w > height * width
        resized = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA)
        path = out / f"size_{mp:g}mp.jpg"
        cv2.imwrite(str(path), resized, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        del resized
        series.append(
            {
                "mp": mp,
                "path": path,
                "shape": [h, w],
                "pixels": h * w,
                "upscaled": up,
                "bytes": path.stat().st_size,
            }
        )
    return series


def usable_tile(
    box: Sequence[float], others: Sequence[Sequence[float]], height: int, width: int
) -> bool:
    """Whether the tile square of ``box`` holds that face alone and mostly real pixels: big
    enough, no other detection's box reaching into it, at least ``MIN_TILE_INSIDE`` of it inside
    the photo (the shared aligned crops are smaller than their tile)."""
    if min(box[2], box[3]) < MIN_SOURCE_BOX:
        return False
    x, y, side = tile_box(box, TILE_MARGIN)
    inside_w = max(0, min(width, x + side) - max(0, x))
    inside_h = max(0, min(height, y + side) - max(0, y))
    if inside_w * inside_h < MIN_TILE_INSIDE * side * side:
        return False
    for ox, oy, ow, oh in others:
        if ox < x + side and x < ox + ow and oy < y + side and y < oy + oh:
            return False
    return True


def find_faces(svc: Service, token: str, data: Path, enough: int) -> list[tuple[Path, list[float]]]:
    """Faces the service accepts in the shared photos, as (photo, box), largest first.

    Photos are read in path order until ``enough`` faces with a ``usable_tile`` are found
    (distinct detections: one person may appear in several photos)."""
    import cv2

    found = []
    photos = sorted(
        p
        for folder in FACE_SOURCES
        for p in (data / folder).rglob("*")
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    for photo in photos:
        client = Client(svc.url, token, photo.name, photo.read_bytes())
        status, _, body = client.upload("images=none&mark=0&rejected=1")
        if status != 200:
            continue
        report = json.loads(body)
        boxes = [f["face_coordinate"] for f in report["resp"] + report.get("rejected", [])]
        # cv2 turns the photo by its EXIF orientation, as the service does and make_tiles reads
        height, width = cv2.imread(str(photo), cv2.IMREAD_COLOR).shape[:2]
        for face in report["resp"]:
            box = face["face_coordinate"]
            others = [b for b in boxes if b != box]
            if usable_tile(box, others, height, width):
                found.append((photo, box))
        if len(found) >= enough:
            break
    found.sort(key=lambda f: -f[1][2] * f[1][3])
    return found


def make_tiles(faces: list[tuple[Path, list[float]]], count: int) -> list[np.ndarray]:
    """``count`` BGR face tiles: distinct faces while they last, then mirrored copies."""
    import cv2

    tiles = []
    cache: dict[Path, np.ndarray] = {}
    for i in range(count):
        photo, box = faces[i % len(faces)]
        if photo not in cache:
            cache[photo] = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        x, y, side = tile_box(box, TILE_MARGIN)
        crop = crop_square(cache[photo], x, y, side)
        interp = cv2.INTER_AREA if side >= TILE else cv2.INTER_CUBIC
        tile = cv2.resize(crop, (TILE, TILE), interpolation=interp)
        tiles.append(tile if (i // len(faces)) % 2 == 0 else tile[:, ::-1].copy())
    return tiles


def make_face_series(
    faces: list[tuple[Path, list[float]]], counts: Sequence[int], out: Path
) -> list[dict[str, Any]]:
    """One fixed-size canvas per face count; their paths and how many distinct faces."""
    import cv2

    slots = GRID_COLS * GRID_ROWS
    series = []
    for count in counts:
        canvas = np.full((GRID_ROWS * CELL, GRID_COLS * CELL, 3), 128, dtype=np.uint8)
        pad = (CELL - TILE) // 2
        for slot, tile in zip(grid_slots(count, slots), make_tiles(faces, count), strict=True):
            r, c = divmod(slot, GRID_COLS)
            canvas[
                r * CELL + pad : r * CELL + pad + TILE, c * CELL + pad : c * CELL + pad + TILE
            ] = tile
        path = out / f"faces_{count}.jpg"
        cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        series.append(
            {
                "faces": count,
                "path": path,
                "distinct": min(count, len(faces)),
                "shape": list(canvas.shape[:2]),
                "bytes": path.stat().st_size,
            }
        )
    return series


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Point:
    """One input's measurement."""

    label: str
    x: float
    client_ms: list[float] = field(default_factory=list)
    timing_ms: dict[str, float] = field(default_factory=dict)
    detected: int = 0
    with_pose: int = 0
    response_bytes: int = 0
    warm_ms: list[float] = field(default_factory=list)
    ready_s: float | None = None
    ready_peak_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    rss_mb_after: float | None = None

    @property
    def p50(self) -> float:
        return statistics.median(self.client_ms)


def measure_point(
    svc: Service, token: str, label: str, x: float, path: Path, repeats: int, budget_s: float
) -> Point:
    """Warm-up, then up to ``repeats`` uploads within about ``budget_s`` (two at least)."""
    client = Client(svc.url, token, path.name, path.read_bytes())
    point = Point(label, x)

    def upload() -> tuple[float, dict[str, Any]]:
        status, ms, body = client.upload(QUERY)
        if status != 200:
            raise SystemExit(f"upload of {path.name} answered {status}: {body[:300]!r}")
        point.response_bytes = len(body)
        return ms, json.loads(body)

    ms, _ = upload()
    point.warm_ms.append(round(ms, 1))
    if ms < budget_s * 1000.0 / 10:  # a second warm-up where it is cheap (see bench/run.py)
        ms, _ = upload()
        point.warm_ms.append(round(ms, 1))
    n = max(min(2, repeats), min(repeats, int(budget_s * 1000.0 / max(ms, 1.0))))
    timings = []
    report: dict[str, Any] = {}
    for _ in range(n):
        ms, report = upload()
        point.client_ms.append(ms)
        timings.append(report["timing_ms"])
    point.timing_ms = {
        k: round(statistics.median(t.get(k, 0.0) for t in timings), 1) for k in stage_names(timings)
    }
    faces = report["resp"] + report.get("rejected", [])
    point.detected = len(faces)
    point.with_pose = sum(1 for f in faces if f.get("face_pose") is not None)
    return point


def service_env(largest_pixels: int, largest_bytes: int) -> dict[str, str]:
    """Default settings, the pixel and body limits raised to take the largest input."""
    return {
        "FACEQ_MAX_PIXELS": str(max(40_000_000, largest_pixels)),
        "FACEQ_MAX_BODY_MB": str(max(32, math.ceil(largest_bytes / 2**20) + 4)),
    }


def run_faces(
    args: argparse.Namespace, workdir: Path, env: dict[str, str]
) -> tuple[list[Point], dict[str, Any]]:
    token = secrets.token_urlsafe(16)
    svc = Service(workdir / "svc-faces", token, env)
    try:
        ready = svc.wait_ready()
        faces = find_faces(svc, token, args.data, max(args.faces))
        if not faces:
            raise SystemExit(f"no accepted face found under {args.data}")
        series = make_face_series(faces, args.faces, OUT)  # kept, to look at
        points = []
        for item in series:
            p = measure_point(
                svc,
                token,
                f"{item['faces']} face{'' if item['faces'] == 1 else 's'}",
                item["faces"],
                item["path"],
                args.repeats,
                args.budget_s,
            )
            p.ready_s = round(ready, 2)
            points.append(p)
            print(f"  {p.label}: {p.p50:.1f} ms, detected {p.detected}", file=sys.stderr)
        info = {
            "source_faces": len(faces),
            "source_photos": len({str(f[0]) for f in faces}),
            "canvas": series[0]["shape"],
            "distinct": {s["faces"]: s["distinct"] for s in series},
            "bytes": {s["faces"]: s["bytes"] for s in series},
            "peak_rss_mb": svc.peak_rss_mb(),
        }
        return points, info
    finally:
        svc.stop()


def run_sizes(
    series: list[dict[str, Any]], args: argparse.Namespace, workdir: Path, env: dict[str, str]
) -> list[Point]:
    points = []
    for item in series:
        token = secrets.token_urlsafe(16)
        svc = Service(workdir / f"svc-{item['mp']:g}mp", token, env)
        try:
            ready = svc.wait_ready()
            ready_peak = svc.peak_rss_mb()
            p = measure_point(
                svc,
                token,
                f"{item['mp']:g} MP",
                item["pixels"] / 1e6,
                item["path"],
                args.repeats,
                args.budget_s,
            )
            p.ready_s = round(ready, 2)
            p.ready_peak_rss_mb = ready_peak
            p.peak_rss_mb = svc.peak_rss_mb()
            p.rss_mb_after = svc.rss_mb()
            points.append(p)
            print(
                f"  {p.label}: {p.p50:.1f} ms, peak {p.peak_rss_mb} MB, detected {p.detected}",
                file=sys.stderr,
            )
        finally:
            svc.stop()
    return points


# -- growth, plots, tables ---------------------------------------------------------------------


def growth(points: list[Point], unit: str) -> dict[str, Any]:
    """Fits of the client p50 and of each stage against ``x``; local exponents; the knee."""
    xs = [p.x for p in points]
    out: dict[str, Any] = {"unit": unit}
    if len(points) < 2:
        return out
    total = fit_linear(xs, [p.p50 for p in points])
    out["client_p50"] = {
        "intercept_ms": round(total.intercept, 2),
        f"ms_per_{unit}": round(total.slope, 3),
        "max_rel_residual": round(total.max_rel_residual, 3),
        "knee": None if total.knee is None else round(total.knee, 2),
        "local_exponents": [round(e, 2) for e in local_exponents(xs, [p.p50 for p in points])],
    }
    stages = {}
    for stage in stage_names([p.timing_ms for p in points]):
        ys = [max(p.timing_ms.get(stage, 0.0), 0.05) for p in points]  # 0.0 ms reads 0.05
        f = fit_linear(xs, ys)
        stages[stage] = {
            "intercept_ms": round(f.intercept, 2),
            f"ms_per_{unit}": round(f.slope, 3),
            "max_rel_residual": round(f.max_rel_residual, 3),
        }
    out["stages"] = stages
    peaks = [p.peak_rss_mb for p in points]
    if all(v is not None for v in peaks):
        f = fit_linear(xs, peaks)  # type: ignore[arg-type]
        out["peak_rss"] = {
            "intercept_mb": round(f.intercept, 1),
            f"mb_per_{unit}": round(f.slope, 2),
            "max_rel_residual": round(f.max_rel_residual, 3),
        }
    return out


def plot(
    points: list[Point], fit: dict[str, Any], path: Path, kind: str, note: str, xlabel: str
) -> None:
    """Latency and stages against ``x`` (and, for sizes, peak memory); ``note`` as a footer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.array([p.x for p in points])
    stages = stage_names([p.timing_ms for p in points])
    memory = kind == "size" and all(p.peak_rss_mb is not None for p in points)
    fig, axes = plt.subplots(1, 2 if memory else 1, figsize=(12 if memory else 7, 4.8))
    ax = axes[0] if memory else axes
    ax.plot(xs, [p.p50 for p in points], "o-", color="black", lw=2, label="client p50 (HTTP)")
    for stage in stages:
        ys = [p.timing_ms.get(stage, 0.0) for p in points]
        if max(ys) >= 0.5:
            ax.plot(xs, np.maximum(ys, 0.05), ".--", label=stage)
    if "client_p50" in fit:
        c = fit["client_p50"]
        grid = (np.geomspace if kind == "size" else np.linspace)(xs.min(), xs.max(), 200)
        slope = c[f"ms_per_{fit['unit']}"]
        ax.plot(
            grid,
            c["intercept_ms"] + slope * grid,
            ":",
            color="grey",
            label=f"fit {c['intercept_ms']:.0f} + {slope:.1f} ms/{fit['unit']}",
        )
    if kind == "size":
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title("latency per image against image size (one face)")
    else:
        ax.set_title("latency per image against faces")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("milliseconds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if memory:
        ax2 = axes[1]
        ax2.plot(xs, [p.peak_rss_mb for p in points], "o-", label="peak RSS (VmHWM)")
        ax2.plot(xs, [p.ready_peak_rss_mb for p in points], "s:", label="peak RSS at ready")
        if "peak_rss" in fit:
            r = fit["peak_rss"]
            grid = np.linspace(xs.min(), xs.max(), 200)
            ax2.plot(
                grid,
                r["intercept_mb"] + r["mb_per_MP"] * grid,
                ":",
                color="grey",
                label=f"fit {r['intercept_mb']:.0f} + {r['mb_per_MP']:.1f} MB/MP",
            )
        ax2.set_xlabel("image size, megapixels")
        ax2.set_ylabel("MB")
        ax2.set_title("peak resident memory, a fresh service per size")
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=8)
    fig.text(0.01, 0.01, note, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_table(points: list[Point], kind: str) -> str:
    stages = stage_names([p.timing_ms for p in points])
    head = ["size" if kind == "size" else "faces", "px" if kind == "size" else "detected (pose)"]
    head += ["p50 ms", "n"] + [f"{s} ms" for s in stages]
    if kind == "size":
        head += ["peak RSS MB", "at ready MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in points:
        row = [p.label, f"{p.x:.2f} MP" if kind == "size" else f"{p.detected} ({p.with_pose})"]
        row += [f"{p.p50:.1f}", str(len(p.client_ms))]
        row += [f"{p.timing_ms.get(s, 0.0):g}" for s in stages]
        if kind == "size":
            row += [f"{p.peak_rss_mb:.0f}", f"{p.ready_peak_rss_mb:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def point_json(p: Point) -> dict[str, Any]:
    d = asdict(p)
    d["p50_ms"] = round(p.p50, 1)
    d["client_ms"] = [round(v, 1) for v in p.client_ms]
    return d


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder")
    parser.add_argument("--photo", type=Path, default=None, help="photo of the size series")
    parser.add_argument("--sizes", type=float, nargs="+", default=list(DEFAULT_SIZES_MP))
    parser.add_argument("--faces", type=int, nargs="+", default=list(DEFAULT_FACES))
    parser.add_argument("--repeats", type=int, default=7, help="most uploads per point")
    parser.add_argument("--budget-s", type=float, default=15.0, help="seconds per point, about")
    parser.add_argument("--plots", type=Path, default=None, help="folder of the PNGs")
    parser.add_argument("--no-sizes", action="store_true", help="skip the size series")
    parser.add_argument("--no-faces", action="store_true", help="skip the faces series")
    parser.add_argument("--quick", action="store_true", help="two small points per series")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.faces, args.repeats, args.budget_s = [0.3, 1.0], [1, 5], 2, 2.0
    if max(args.faces) > GRID_COLS * GRID_ROWS:
        parser.error(f"at most {GRID_COLS * GRID_ROWS} faces")
    args.data = args.data.resolve()
    photo = args.photo or args.data / DEFAULT_PHOTO
    plots = args.plots or (OUT if args.quick else ROOT / "bench")
    plots.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    command = "bench/scaling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    load_start = [round(v, 2) for v in os.getloadavg()]
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="faceq-scaling-") as tmp:
        workdir = Path(tmp)
        sizes = [] if args.no_sizes else make_size_series(photo, sorted(args.sizes), workdir)
        largest_px = max([s["pixels"] for s in sizes], default=0)
        largest_bytes = max([s["bytes"] for s in sizes], default=0)
        env = service_env(largest_px, largest_bytes)
        faces_points: list[Point] = []
        faces_info: dict[str, Any] = {}
        if not args.no_faces:
            print("faces series", file=sys.stderr)
            faces_points, faces_info = run_faces(args, workdir, env)
        print("size series", file=sys.stderr)
        size_points = run_sizes(sizes, args, workdir, env) if sizes else []

    size_fit = growth(size_points, "MP")
    faces_fit = growth(faces_points, "face")
    load_end = [round(v, 2) for v in os.getloadavg()]
    note = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {command}, {os.cpu_count()} CPUs, "
        f"load average {load_start[0]} -> {load_end[0]}"
    )
    if size_points:
        native = cv2_shape(photo)
        xlabel = (
            f"image size, megapixels ({photo.name}, {native[1]}x{native[0]}, resized: "
            f"area down, cubic above {native[0] * native[1] / 1e6:.1f} MP)"
        )
        plot(size_points, size_fit, plots / "scaling_size.png", "size", note, xlabel)
    if faces_points:
        xlabel = (
            f"faces in the image (real face tiles on a fixed {GRID_COLS * CELL}x"
            f"{GRID_ROWS * CELL} canvas)"
        )
        plot(faces_points, faces_fit, plots / "scaling_faces.png", "faces", note, xlabel)
    result = {
        "bench": "scaling",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "cpus": os.cpu_count(),
        "load_avg_start": load_start,
        "load_avg_end": load_end,
        "query": QUERY,
        "photo": str(photo.relative_to(args.data))
        if photo.is_relative_to(args.data)
        else str(photo),
        "service_env": env,
        "size": {
            "points": [point_json(p) for p in size_points],
            "inputs": [{k: v for k, v in s.items() if k != "path"} for s in sizes],
            "fit": size_fit,
        },
        "faces": {"points": [point_json(p) for p in faces_points], **faces_info, "fit": faces_fit},
        "plots": [str(p) for p in sorted(plots.glob("scaling_*.png"))],
        "wall_s": round(time.monotonic() - started, 1),
    }
    print_report(result, size_points, faces_points)
    print(json.dumps(result))
    return 0


def print_report(r: dict[str, Any], size_points: list[Point], faces_points: list[Point]) -> None:
    print(f"\n{r['date']}  load average {r['load_avg_start']} -> {r['load_avg_end']}")
    print(f"{r['command']}  ({r['wall_s']} s)\n")
    for kind, points, fit in (
        ("size", size_points, r["size"]["fit"]),
        ("faces", faces_points, r["faces"]["fit"]),
    ):
        if not points:
            continue
        print(markdown_table(points, kind))
        if "client_p50" in fit:
            c = fit["client_p50"]
            unit = fit["unit"]
            print(
                f"fit: {c['intercept_ms']} ms + {c[f'ms_per_{unit}']} ms/{unit} "
                f"(worst residual {c['max_rel_residual']:.0%}), knee {c['knee']} {unit}, "
                f"local exponents {c['local_exponents']}"
            )
            grows = sorted(fit["stages"].items(), key=lambda kv: -kv[1][f"ms_per_{unit}"])
            print(
                "stages, ms per "
                + unit
                + ": "
                + ", ".join(f"{k} {v[f'ms_per_{unit}']:g}" for k, v in grows)
            )
            if "peak_rss" in fit:
                m = fit["peak_rss"]
                print(f"peak RSS: {m['intercept_mb']} MB + {m[f'mb_per_{unit}']} MB/{unit}")
        print()


if __name__ == "__main__":
    sys.exit(main())
