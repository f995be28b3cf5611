"""Build the labelled verdict set that ``python -m app eval-verdicts`` measures.

From the shared data (``--data``, default ``$FACEQ_TEST_DATA`` or ``../shared/data``), never
copied into the repository, this writes into ``OUT_DIR``:

- every clean portrait of ``faces/faces_info.csv`` (one face, frontal or near-frontal, not an
  aligned crop, not noted as a small face), copied byte for byte, labelled ``accept``;
- degraded copies of each, labelled ``reject`` with the reason the service should give
  (``DEGRADATIONS``): Gaussian and motion blur (``blurry``), down-scaling to a tiny inter-eye
  distance (``low_resolution``), darkening (``underexposed``), washing out (``overexposed``),
  in-plane rotation to a roll of +-40 degrees on a canvas that keeps the whole image
  (``pose_roll``). Strengths are relative to the face (its inter-eye distance), so that a
  large face is degraded as much as a small one once aligned;
- the AFLW2000 images of ``headpose/labels.csv`` whose yaw or pitch is clearly beyond the gate
  (more than ``MARGIN_DEG`` past 45 / 20 degrees), copied, labelled ``pose_yaw`` or
  ``pose_pitch`` (the angle furthest past its limit, relative to the limit). Yaw is the only
  angle whose sign differs from the API's (DESIGN.md), and only its magnitude matters here.

The degradations need the face's eyes: the project's MTCNN detector finds them (largest face).
Everything is deterministic: the one random choice (the motion-blur direction) is drawn from a
generator seeded by the source file's name.

``OUT_DIR/labels.csv`` has the columns ``file,expect,reason,source,kind``: ``expect`` is
``accept`` or ``reject``, ``reason`` is empty for ``accept``, ``source`` is the path under the
data folder, ``kind`` is ``clean``, a degradation's name, ``large_yaw`` or ``large_pitch``.

Usage: ``.venv/bin/python bench/make_verdict_set.py bench/out/verdicts [--data DIR]
[--portraits N] [--held-out]``, then ``python -m app eval-verdicts --labels
bench/out/verdicts/labels.csv --images bench/out/verdicts``. ``--held-out`` degrades with other
strengths (``HELD_OUT``) than those the quality components' defaults were calibrated on
(``CALIBRATION``, the default).
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import degrade  # noqa: E402
from bench.degrade import Eyes, FaceDetector, encode_jpeg, find_eyes  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402

log = logging.getLogger("make_verdict_set")

LABEL_COLUMNS = ("file", "expect", "reason", "source", "kind")
FRONTAL_POSES = frozenset({"frontal", "near-frontal"})
# Gates of the default policy (config/config.yaml), and how far past one an AFLW2000 angle must
# lie to be a clear case: the pose network's error on AFLW2000 is 2-4 degrees on average.
YAW_LIMIT_DEG = 45.0
PITCH_LIMIT_DEG = 20.0
MARGIN_DEG = 10.0
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Strengths:
    """How hard each degradation hits (units as in ``bench/degrade.py``)."""

    # Gaussian sigma and motion length in inter-eye distances: 3.5 px and 14 px on the aligned
    # crop, blurred beyond any use for enrolment.
    blur_ied: float = 0.1
    motion_ied: float = 0.4
    # Inter-eye distance of the down-scaled copies, pixels: a face box of about 25 px, still
    # found by MTCNN (min_face_size 20) but far from enrolment grade.
    low_res_eyes_px: float = 10.0
    # Underexposure: 15% of the light (nearly three stops short); overexposure: a quarter of
    # the contrast left, pulled toward white. Stronger, and MTCNN stops finding some faces.
    dark_gain: float = 0.15
    wash_contrast: float = 0.25
    # In-plane roll of the rotated copies (the gate is 25 degrees).
    roll_deg: float = 40.0


# The set the quality components' defaults were calibrated on (bench/quality_calibration.md).
CALIBRATION = Strengths()
# Other strengths, none of them those, each still plainly degraded to the eye: 2.5 px of blur
# and 10 px of shake on the aligned crop, 16 px between the eyes, 22% of the light, 35% of the
# contrast, and a roll 10 degrees past the gate.
HELD_OUT = Strengths(
    blur_ied=0.07,
    motion_ied=0.3,
    low_res_eyes_px=16.0,
    dark_gain=0.22,
    wash_contrast=0.35,
    roll_deg=35.0,
)

Degrade = Callable[[np.ndarray, Eyes, np.random.Generator], np.ndarray]


def degradations(s: Strengths) -> dict[str, tuple[str, Degrade]]:
    """kind -> (expected reason, degradation) at strengths ``s``."""

    def motion(rgb: np.ndarray, eyes: Eyes, rng: np.random.Generator) -> np.ndarray:
        return degrade.motion_blur(rgb, eyes, s.motion_ied, float(rng.uniform(0.0, 180.0)))

    return {
        "gaussian_blur": (
            "blurry",
            lambda rgb, eyes, rng: degrade.gaussian_blur(rgb, eyes, s.blur_ied),
        ),
        "motion_blur": ("blurry", motion),
        "downscale": (
            "low_resolution",
            lambda rgb, eyes, rng: degrade.downscale(rgb, eyes, s.low_res_eyes_px),
        ),
        "darken": ("underexposed", lambda rgb, eyes, rng: degrade.darken(rgb, s.dark_gain)),
        "wash_out": (
            "overexposed",
            lambda rgb, eyes, rng: degrade.wash_out(rgb, s.wash_contrast),
        ),
        "rotate_cw": (
            "pose_roll",
            lambda rgb, eyes, rng: degrade.rotate_to(rgb, eyes, s.roll_deg),
        ),
        "rotate_ccw": (
            "pose_roll",
            lambda rgb, eyes, rng: degrade.rotate_to(rgb, eyes, -s.roll_deg),
        ),
    }


DEGRADATIONS = degradations(CALIBRATION)


@dataclass(frozen=True)
class Row:
    """One line of ``labels.csv``."""

    file: str
    expect: str
    reason: str
    source: str
    kind: str


def clean_portraits(data_dir: Path) -> list[str]:
    """Paths (under ``data_dir``) of the single-face frontal portraits of ``faces_info.csv``."""
    with open(data_dir / "faces" / "faces_info.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    picked = []
    for row in rows:
        notes = row["notes"].lower()
        if row["n_faces_visible"].strip() != "1" or row["pose"].strip() not in FRONTAL_POSES:
            continue
        # aligned crops have the face cut by the border; small faces are not enrolment grade
        if "aligned" in notes or "face small" in notes or "small face" in notes:
            continue
        picked.append(f"faces/{row['file']}")
    return picked


def large_pose_images(data_dir: Path) -> list[tuple[str, str, str]]:
    """``(source, kind, reason)`` of the AFLW2000 images clearly past the yaw or pitch gate."""
    with open(data_dir / "headpose" / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    picked = []
    for row in rows:
        if row["hopenet_excluded_gt99"].strip() == "1":
            continue
        # |yaw| only: the labels' yaw sign is the opposite of the API's (DESIGN.md)
        yaw, pitch = abs(float(row["yaw_deg"])), abs(float(row["pitch_deg"]))
        past = {
            ("large_yaw", "pose_yaw"): (yaw, YAW_LIMIT_DEG),
            ("large_pitch", "pose_pitch"): (pitch, PITCH_LIMIT_DEG),
        }
        clear = {k: v / limit for k, (v, limit) in past.items() if v > limit + MARGIN_DEG}
        if clear:
            kind, reason = max(clear, key=lambda k: clear[k])
            picked.append((f"headpose/aflw2000/{row['file']}", kind, reason))
    return picked


def _name(source: str) -> str:
    """``faces/deepface/img1.jpg`` -> ``deepface__img1``."""
    parts = Path(source).with_suffix("").parts[1:]
    return "__".join(parts)


def build_verdict_set(
    data_dir: Path,
    out_dir: Path,
    detector: FaceDetector,
    portraits: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    pose_images: bool = True,
    strengths: Strengths = CALIBRATION,
) -> list[Row]:
    """Write the set into ``out_dir`` and return its rows (also written to ``labels.csv``).

    Args:
        data_dir: the shared data folder.
        out_dir: where the images and ``labels.csv`` go (created).
        detector: finds the eyes of each portrait (largest face).
        portraits: sources to use (default: ``clean_portraits(data_dir)``).
        kinds: degradations to apply (default: all of ``DEGRADATIONS``).
        pose_images: whether to add the large-pose AFLW2000 images.
        strengths: how hard the degradations hit (``CALIBRATION`` or ``HELD_OUT``).

    Raises:
        ValueError: a portrait in which the detector finds no face.
    """
    from models.decode import decode_image

    out_dir.mkdir(parents=True, exist_ok=True)
    table = degradations(strengths)
    rows: list[Row] = []
    for source in portraits if portraits is not None else clean_portraits(data_dir):
        path = data_dir / source
        rgb = decode_image(path.read_bytes())
        eyes = find_eyes(detector, rgb)
        if eyes is None:
            raise ValueError(f"no face found in the portrait {source}")
        name = _name(source)
        clean = f"{name}{path.suffix.lower()}"
        shutil.copyfile(path, out_dir / clean)
        rows.append(Row(clean, "accept", "", source, "clean"))
        for kind in kinds if kinds is not None else list(table):
            reason, apply = table[kind]
            rng = np.random.default_rng(zlib.crc32(f"{source}:{kind}".encode()))
            file = f"{name}__{kind}.jpg"
            (out_dir / file).write_bytes(encode_jpeg(apply(rgb, eyes, rng), JPEG_QUALITY))
            rows.append(Row(file, "reject", reason, source, kind))
        log.info("%s: eyes %.0f px apart, roll %.1f deg", source, eyes.distance, eyes.roll_deg)
    if pose_images:
        for source, kind, reason in large_pose_images(data_dir):
            file = f"{_name(source)}{Path(source).suffix.lower()}"
            shutil.copyfile(data_dir / source, out_dir / file)
            rows.append(Row(file, "reject", reason, source, kind))
    with open(out_dir / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(LABEL_COLUMNS)
        writer.writerows([r.file, r.expect, r.reason, r.source, r.kind] for r in rows)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder for the images and labels.csv")
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument(
        "--held-out",
        action="store_true",
        help="the HELD_OUT strengths instead of those the quality defaults were calibrated on",
    )
    parser.add_argument(
        "--portraits", type=int, default=0, help="use only the first N portraits (0: all)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data_dir = (args.data or shared_data_dir()).resolve()
    if not (data_dir / "faces" / "faces_info.csv").is_file():
        print(f"no shared data at {data_dir} (set FACEQ_TEST_DATA or --data)", file=sys.stderr)
        return 2
    from app.runtime import configure_threads
    from models.detector import MTCNNDetector

    configure_threads(0)
    portraits = clean_portraits(data_dir)
    if args.portraits:
        portraits = portraits[: args.portraits]
    strengths = HELD_OUT if args.held_out else CALIBRATION
    rows = build_verdict_set(
        data_dir, args.out_dir, MTCNNDetector(), portraits, strengths=strengths
    )
    accept = sum(r.expect == "accept" for r in rows)
    print(
        f"{len(rows)} images ({accept} accept, {len(rows) - accept} reject) "
        f"in {args.out_dir}; labels: {args.out_dir / 'labels.csv'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
