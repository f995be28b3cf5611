"""Parity and speed of ``models.detector.MTCNNDetector`` against the ``mtcnn`` package it mirrors.

For every image (decoded with OpenCV, BGR -> RGB, the same array for both), runs the package's
``MTCNN().detect_faces`` and ours with the same thresholds and ``min_face_size``, and matches
the detections one to one: a package face is *matched* by one of ours whose box overlaps it at
IoU >= 0.9 and whose confidence is within 0.01. Parity *holds* when at least 99% of the
package's faces are matched and ours has no *extra* face (one left unmatched). Times are each
detector's per-image detect time after a warm-up, taken in the same run, alternating.

Prints one row per image and, last, one JSON line with the totals.

Usage: ``.venv/bin/python bench/detect_parity.py [--data DIR] [--min-face-size 20]
[--thresholds 0.6 0.7 0.7] [--repeat 1] [--threads N]``; the data folder defaults to
``$FACEQ_TEST_DATA`` or ``../shared/data``, and its ``faces`` folder is searched recursively.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.types import Face  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402

log = logging.getLogger("detect_parity")

MIN_IOU = 0.9
MAX_CONFIDENCE_DELTA = 0.01
MIN_MATCH_RATE = 0.99
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match_faces(package: list[dict], ours: list[Face]) -> tuple[int, int]:
    """Match the package's detections to ours one to one, best overlap first.

    Args:
        package: ``detect_faces`` output (``box`` as integer ``[x, y, w, h]``, ``confidence``).
        ours: ``MTCNNDetector.detect`` output.

    Returns:
        ``(matched, extra)``: package faces matched, and faces of ours left unmatched.
    """
    pairs = []
    for i, ref in enumerate(package):
        for j, face in enumerate(ours):
            overlap = iou(ref["box"], face.box)
            close = abs(float(ref["confidence"]) - face.confidence) <= MAX_CONFIDENCE_DELTA
            if overlap >= MIN_IOU and close:
                pairs.append((overlap, i, j))
    used_ref: set[int] = set()
    used_ours: set[int] = set()
    for _, i, j in sorted(pairs, reverse=True):
        if i not in used_ref and j not in used_ours:
            used_ref.add(i)
            used_ours.add(j)
    return len(used_ref), len(ours) - len(used_ours)


def find_images(folder: Path) -> list[Path]:
    """Every .jpg/.jpeg/.png under ``folder``, recursively, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path) -> np.ndarray | None:
    """Decode with OpenCV and convert BGR -> RGB; None when OpenCV cannot read it."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _timed(fn: Callable[[], object], repeat: int) -> tuple[object, float]:
    """Run ``fn`` ``repeat`` times; return its last result and its fastest time in ms."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best * 1000.0


def detect_parity(
    image_paths: Sequence[str | Path],
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    min_face_size: int = 20,
    repeat: int = 1,
    out: TextIO | None = None,
) -> dict:
    """Compare the package's detections and times with ours over ``image_paths``.

    Args:
        image_paths: images to run; unreadable ones are reported and skipped.
        thresholds: PNet, RNet, ONet score thresholds, given to both detectors.
        min_face_size: smallest face, pixels, given to both detectors.
        repeat: runs per image and detector; the fastest is the image's time.
        out: a text stream for the per-image table (stdout when None).

    Returns:
        ``{"images", "package_faces", "matched", "extra", "match_rate", "holds",
        "package_ms_median", "ours_ms_median", "speedup_median"}``.
    """
    from mtcnn import MTCNN

    from models.detector import MTCNNDetector

    stream = out if out is not None else sys.stdout
    package = MTCNN()
    ours = MTCNNDetector(min_face_size=min_face_size, thresholds=thresholds)
    ours.warm_up()
    kwargs = {
        "min_face_size": min_face_size,
        "threshold_pnet": thresholds[0],
        "threshold_rnet": thresholds[1],
        "threshold_onet": thresholds[2],
    }
    images = [(Path(p), read_rgb(Path(p))) for p in image_paths]
    for path, rgb in images:
        if rgb is None:
            log.warning("skipped %s: OpenCV cannot decode it", path)
    images = [(p, rgb) for p, rgb in images if rgb is not None]
    if images:  # the package's first call pays its own start-up costs
        package.detect_faces(images[0][1], **kwargs)

    header = f"{'image':48} {'size':>10} {'pkg':>4} {'ours':>4} {'match':>5} {'extra':>5}"
    print(f"{header} {'pkg ms':>8} {'ours ms':>8} {'speedup':>7}", file=stream)
    totals = {"package_faces": 0, "matched": 0, "extra": 0}
    package_ms, ours_ms, speedups = [], [], []
    for path, rgb in images:
        ref, t_ref = _timed(lambda rgb=rgb: package.detect_faces(rgb, **kwargs), repeat)
        got, t_ours = _timed(lambda rgb=rgb: ours.detect(rgb), repeat)
        matched, extra = match_faces(ref, got)
        totals["package_faces"] += len(ref)
        totals["matched"] += matched
        totals["extra"] += extra
        package_ms.append(t_ref)
        ours_ms.append(t_ours)
        speedups.append(t_ref / t_ours)
        name = str(path.relative_to(path.parents[1])) if len(path.parents) > 1 else path.name
        size = f"{rgb.shape[1]}x{rgb.shape[0]}"
        row = f"{name[-48:]:48} {size:>10} {len(ref):>4} {len(got):>4} {matched:>5} {extra:>5}"
        print(f"{row} {t_ref:8.1f} {t_ours:8.1f} {t_ref / t_ours:7.1f}", file=stream)

    rate = totals["matched"] / totals["package_faces"] if totals["package_faces"] else 1.0
    return {
        "images": len(images),
        **totals,
        "match_rate": round(rate, 4),
        "holds": bool(images) and rate >= MIN_MATCH_RATE and totals["extra"] == 0,
        "package_ms_median": round(statistics.median(package_ms), 1) if images else None,
        "ours_ms_median": round(statistics.median(ours_ms), 1) if images else None,
        "speedup_median": round(statistics.median(speedups), 2) if images else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison over the shared faces folder; exit 1 when parity does not hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder")
    parser.add_argument("--min-face-size", type=int, default=20)
    parser.add_argument("--thresholds", type=float, nargs=3, default=(0.6, 0.7, 0.7))
    parser.add_argument("--repeat", type=int, default=1, help="runs per image; fastest counts")
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads, 0 = TF's")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    faces = args.data.resolve() / "faces"
    if not faces.is_dir():
        print(f"no faces folder at {faces} (set FACEQ_TEST_DATA or --data)", file=sys.stderr)
        return 2
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    result = detect_parity(
        find_images(faces),
        thresholds=tuple(args.thresholds),
        min_face_size=args.min_face_size,
        repeat=max(1, args.repeat),
    )
    print(json.dumps(result))
    return 0 if result["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
