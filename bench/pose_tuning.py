"""Sweep WHENet's crop settings on the shared AFLW2000 subset and the flip check.

Detects the face boxes once (``tests/models/headpose_eval.find_face_box``), then, for each crop
variant, scores the MAE against the labels and the mirror consistency on the face photos, and
prints a Markdown table (the one recorded in ``bench/pose_tuning.md``).

Usage: ``.venv/bin/python bench/pose_tuning.py [--data ../shared/data]``;
``--timing`` instead times ``estimate()`` per image with 1 and 20 faces at several ``max_batch``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.whenet import DEFAULT_CROP, ORIGINAL_CROP, CropSettings, WHENetEstimator  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402
from tests.models.headpose_eval import (  # noqa: E402
    evaluate,
    find_face_box,
    flip_errors,
    load_flip_set,
    load_headpose_set,
)

log = logging.getLogger("pose_tuning")


def variants() -> list[tuple[str, CropSettings]]:
    """Return the crop variants of the sweep, labelled."""
    orig = ORIGINAL_CROP
    out = [
        ("original demo crop (0.2 x, 0.1 y, stretched, linear)", orig),
        ("original, area", replace(orig, interpolation="area")),
        ("original, cubic", replace(orig, interpolation="cubic")),
        ("original, square", replace(orig, square=True)),
    ]
    for m in (0.0, 0.1, 0.2, 0.3, 0.4):
        out.append((f"margin {m} both, stretched, area", CropSettings(m, m, 0.0, False, "area")))
    for m in (0.0, 0.1, 0.15, 0.2, 0.3, 0.4):
        out.append((f"margin {m} both, square, area", CropSettings(m, m, 0.0, True, "area")))
    for s in (-0.1, -0.05, 0.05, 0.1):
        out.append((f"DEFAULT_CROP, shift_y {s:+}", replace(DEFAULT_CROP, shift_y=s)))
    for interp in ("nearest", "linear", "cubic", "lanczos"):
        out.append((f"DEFAULT_CROP, {interp}", replace(DEFAULT_CROP, interpolation=interp)))
    out.append(("DEFAULT_CROP", DEFAULT_CROP))
    return out


def timing(data_dir: Path, rounds: int = 15) -> None:
    """Print the per-image ``estimate()`` time (median and best, ms) for 1 and 20 faces."""
    bgr = cv2.imread(str(data_dir / "faces" / "facenet_pytorch" / "multiface.jpg"))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    # 20 boxes of 120 px on a grid: the crop and network cost do not depend on the content.
    grid = [
        (float(x), float(y), 120.0, 120.0)
        for x in range(0, width - 120, 200)
        for y in range(0, height - 120, 100)
    ]
    assert len(grid) >= 20, len(grid)
    est = WHENetEstimator()
    est.warm_up()
    cases = [(1, 64), (20, 64), (20, 8), (20, 4), (20, 2), (20, 1)]
    times: dict[tuple[int, int], list[float]] = {case: [] for case in cases}
    for _ in range(rounds):  # interleaved, so that load from other processes hits all cases
        for faces, max_batch in cases:
            est.max_batch = max_batch
            start = time.perf_counter()
            est.estimate(rgb, grid[:faces])
            times[(faces, max_batch)].append((time.perf_counter() - start) * 1000.0)
    lines = [
        "| faces | max_batch | median ms | best ms | best ms per face |",
        "|---|---|---|---|---|",
    ]
    for (faces, max_batch), ts in times.items():
        best = min(ts)
        lines.append(
            f"| {faces} | {max_batch} | {np.median(ts):.0f} | {best:.0f} | {best / faces:.1f} |"
        )
    sys.stdout.write("\n".join(lines) + "\n")


def main() -> None:
    """Run the sweep and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder")
    parser.add_argument("--timing", action="store_true", help="time estimate() instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.timing:
        timing(args.data)
        return

    images = load_headpose_set(args.data)
    start = time.perf_counter()
    boxes = [find_face_box(item.rgb) for item in images]
    flips = load_flip_set(args.data)
    log.info(
        "%d labelled images, %d flip photos (%d faces); detection took %.1f s",
        len(images),
        len(flips),
        sum(len(f.boxes) for f in flips),
        time.perf_counter() - start,
    )
    est = WHENetEstimator()
    lines = [
        "| variant | margin_x | margin_y | shift_y | square | interp | yaw | pitch | roll | "
        "mean | missed | flip yaw | flip pitch | flip roll |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, crop in variants():
        est.crop = crop
        mae, missed = evaluate(est.estimate, images, boxes)
        flip = flip_errors(est.estimate, flips)
        lines.append(
            f"| {label} | {crop.margin_x} | {crop.margin_y} | {crop.shift_y} | {crop.square} | "
            f"{crop.interpolation} | {mae['yaw']:.2f} | {mae['pitch']:.2f} | {mae['roll']:.2f} | "
            f"{mae['mean']:.2f} | {missed} | {flip['yaw']:.2f} | {flip['pitch']:.2f} | "
            f"{flip['roll']:.2f} |"
        )
        log.info("%s", lines[-1])
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
