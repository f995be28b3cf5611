"""Parity of ``models.detector.MTCNNDetector`` with mtcnn 0.1.1, the reference MTCNN.

mtcnn 0.1.1's detections of every shared face image, at every ``min_face_size`` it was run
with, are recorded in ``tests/models/fixtures/mtcnn_0_1_1.json`` by ``bench/mtcnn_reference.py``
(0.1.1 needs an environment of its own). This script runs our detector on the same decoded
pixels (OpenCV, BGR -> RGB) and matches the detections one to one: a reference face is
*matched* by one of ours whose box overlaps it at IoU >= 0.9 and whose confidence is within
0.005. Parity *holds* when at least 99% of the reference faces are matched and ours has no
*extra* face (one left unmatched). The reference does not clip its boxes to the image on the
right and bottom (ours are clipped on every side), so its boxes are clipped before comparing.

Prints one row per image and size, then one JSON line with the totals.

Usage: ``.venv/bin/python bench/detect_parity.py [--data DIR] [--fixture FILE]``; the data
folder defaults to ``$FACEQ_TEST_DATA`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.types import Face  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402

log = logging.getLogger("detect_parity")

FIXTURE = ROOT / "tests" / "models" / "fixtures" / "mtcnn_0_1_1.json"
MIN_IOU = 0.9
MAX_CONFIDENCE_DELTA = 0.005
MIN_MATCH_RATE = 0.99


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[float, ...]:
    """Clip an ``(x, y, w, h)`` box's corners to ``[0, W-1] x [0, H-1]``, as ours are."""
    x1, y1 = min(max(box[0], 0), width - 1), min(max(box[1], 0), height - 1)
    x2 = min(max(box[0] + box[2], 0), width - 1)
    y2 = min(max(box[1] + box[3], 0), height - 1)
    return (x1, y1, x2 - x1, y2 - y1)


def match_faces(
    reference: list[dict], ours: list[Face], width: int, height: int
) -> tuple[int, int]:
    """Match the reference's detections to ours one to one, best overlap first.

    Args:
        reference: mtcnn 0.1.1 detections (``box`` as integer ``[x, y, w, h]``, ``confidence``).
        ours: ``MTCNNDetector.detect`` output.
        width: image width, to clip the reference boxes.
        height: image height.

    Returns:
        ``(matched, extra)``: reference faces matched, and faces of ours left unmatched.
    """
    pairs = []
    for i, ref in enumerate(reference):
        box = clip_box(ref["box"], width, height)
        for j, face in enumerate(ours):
            overlap = iou(box, face.box)
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


def read_rgb(path: Path) -> np.ndarray | None:
    """Decode with OpenCV and convert BGR -> RGB; None when OpenCV cannot read it."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_reference(path: Path = FIXTURE) -> dict[str, Any]:
    """The recorded mtcnn 0.1.1 detections (see ``bench/mtcnn_reference.py``)."""
    return json.loads(path.read_text(encoding="utf-8"))


def detect_parity(
    faces_dir: Path, reference: dict[str, Any], out: TextIO | None = None
) -> dict[str, Any]:
    """Compare our detections over the shared face images with the recorded reference.

    Args:
        faces_dir: the shared data's ``faces`` folder (the fixture's keys are relative to it).
        reference: ``load_reference()``.
        out: a text stream for the per-image table (stdout when None).

    Returns:
        ``{"images", "reference_faces", "matched", "extra", "match_rate", "holds",
        "unmatched", "ours_ms_median"}``; ``unmatched`` lists ``image@size`` where a face of
        either side went unmatched.
    """
    from models.detector import MTCNNDetector

    stream = out if out is not None else sys.stdout
    ours = MTCNNDetector()
    ours.warm_up()
    header = f"{'image':44} {'size':>10} {'min':>4} {'ref':>4} {'ours':>4}"
    print(f"{header} {'match':>5} {'ms':>7}", file=stream)
    totals = {"reference_faces": 0, "matched": 0, "extra": 0}
    unmatched: list[str] = []
    times = []
    images = reference["images"]
    for name in sorted(images):
        rgb = read_rgb(faces_dir / name)
        if rgb is None:
            log.warning("skipped %s: OpenCV cannot decode it", name)
            continue
        height, width = rgb.shape[:2]
        for size, ref in sorted(images[name].items(), key=lambda kv: int(kv[0])):
            started = time.perf_counter()
            got = ours.detect(rgb, min_face_size=int(size))
            times.append((time.perf_counter() - started) * 1000.0)
            matched, extra = match_faces(ref, got, width, height)
            totals["reference_faces"] += len(ref)
            totals["matched"] += matched
            totals["extra"] += extra
            if matched < len(ref) or extra:
                unmatched.append(f"{name}@{size}")
            row = f"{name[-44:]:44} {width:>5}x{height:<4} {size:>4} {len(ref):>4} {len(got):>4}"
            print(f"{row} {matched:>5} {times[-1]:7.1f}", file=stream)
    count = totals["reference_faces"]
    rate = totals["matched"] / count if count else 1.0
    return {
        "images": len(images),
        **totals,
        "match_rate": round(rate, 4),
        "holds": bool(count) and rate >= MIN_MATCH_RATE and totals["extra"] == 0,
        "unmatched": unmatched,
        "ours_ms_median": round(statistics.median(times), 1) if times else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison over the shared faces folder; exit 1 when parity does not hold."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder")
    parser.add_argument("--fixture", type=Path, default=FIXTURE, help="recorded reference")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    faces = args.data.resolve() / "faces"
    if not faces.is_dir():
        print(f"no faces folder at {faces} (set FACEQ_TEST_DATA or --data)", file=sys.stderr)
        return 2
    result = detect_parity(faces, load_reference(args.fixture))
    print(json.dumps(result))
    return 0 if result["holds"] else 1


if __name__ == "__main__":
    sys.exit(main())
