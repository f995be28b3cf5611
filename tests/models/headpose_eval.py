"""Head-pose evaluation on the shared AFLW2000 subset, shared by the tests and bench scripts.

``find_faces`` is the one place that turns an image into face boxes: the project's
``models.detector.MTCNNDetector`` with its defaults (stage thresholds 0.6 / 0.7 / 0.7, the
pipeline's; it reproduces ``mtcnn.MTCNN().detect_faces(rgb, threshold_onet=0.7)`` to within
half a pixel on this set), loaded once per process.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.types import Box, HeadPose


@dataclass(frozen=True)
class LabelledImage:
    """One AFLW2000 image and its labels converted to the API sign convention."""

    file: str
    rgb: np.ndarray
    pose: HeadPose  # API convention: yaw = -label yaw, pitch and roll as labelled


def load_headpose_set(data_dir: Path) -> list[LabelledImage]:
    """Load the labelled images, skipping rows Hopenet's evaluation excludes (angle > 99).

    Args:
        data_dir: the shared data folder (holding ``headpose/labels.csv``).

    Returns:
        The images (RGB) with API-convention labels, in ``labels.csv`` order.
    """
    folder = data_dir / "headpose"
    out = []
    with open(folder / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["hopenet_excluded_gt99"] == "1":
                continue
            bgr = cv2.imread(str(folder / "aflw2000" / row["file"]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise FileNotFoundError(folder / "aflw2000" / row["file"])
            pose = HeadPose(
                yaw=-float(row["yaw_deg"]),
                pitch=float(row["pitch_deg"]),
                roll=float(row["roll_deg"]),
            )
            out.append(LabelledImage(row["file"], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), pose))
    return out


@cache
def shared_detector() -> Any:
    """The project's MTCNN detector, built and warmed once per test session."""
    from models.detector import MTCNNDetector

    detector = MTCNNDetector()
    detector.warm_up()
    return detector


def find_faces(rgb: np.ndarray) -> list[tuple[Box, float]]:
    """Return every detected face as ``(box, confidence)``, most confident first."""
    faces = [(face.box, face.confidence) for face in shared_detector().detect(rgb)]
    return sorted(faces, key=lambda f: -f[1])


def find_face_box(rgb: np.ndarray) -> Box | None:
    """Return the largest face box ``(x, y, w, h)``, or None when no face is found.

    The labelled face is the image's main one; a face in the background can score as high
    (AFLW2000 image00006's: 1.0 against 0.9999), so the largest, as ``app.eval_pose`` takes.
    """
    faces = find_faces(rgb)
    return max((box for box, _ in faces), key=lambda b: b[2] * b[3]) if faces else None


def mean_absolute_errors(
    predicted: Sequence[HeadPose], truth: Sequence[HeadPose]
) -> dict[str, float]:
    """Return the MAE in degrees of ``yaw``, ``pitch``, ``roll`` and their ``mean``."""
    pairs = list(zip(predicted, truth, strict=True))
    err = {
        a: float(np.mean([abs(getattr(p, a) - getattr(t, a)) for p, t in pairs]))
        for a in ("yaw", "pitch", "roll")
    }
    err["mean"] = (err["yaw"] + err["pitch"] + err["roll"]) / 3.0
    return err


def evaluate(
    estimate: Callable[[np.ndarray, Sequence[Box]], list[HeadPose]],
    images: Sequence[LabelledImage],
    boxes: Sequence[Box | None],
) -> tuple[dict[str, float], int]:
    """Score an estimator on the images whose box was found.

    Args:
        estimate: ``PoseEstimator.estimate``-like callable.
        images: the labelled images.
        boxes: one box per image (None: missed face, counted and skipped).

    Returns:
        (MAE per angle and mean, number of missed faces).
    """
    predicted, truth, missed = [], [], 0
    for item, box in zip(images, boxes, strict=True):
        if box is None:
            missed += 1
            continue
        predicted.append(estimate(item.rgb, [box])[0])
        truth.append(item.pose)
    return mean_absolute_errors(predicted, truth), missed


# Faces below this detector confidence are left out of the flip check (background blur, hands).
FLIP_MIN_CONFIDENCE = 0.9


@dataclass(frozen=True)
class FaceImage:
    """An unlabelled face photo and the boxes found in it."""

    file: str
    rgb: np.ndarray
    boxes: list[Box]


def flip_image_files(data_dir: Path) -> list[Path]:
    """Return the face photos of the flip check: deepface ``*.jpg`` and facenet ``*_1.jpg``."""
    faces = data_dir / "faces"
    return sorted((faces / "deepface").glob("*.jpg")) + sorted(
        (faces / "facenet_pytorch").glob("*_1.jpg")
    )


def load_flip_set(data_dir: Path) -> list[FaceImage]:
    """Load the flip-check photos with every face found at ``FLIP_MIN_CONFIDENCE`` or more."""
    out = []
    for path in flip_image_files(data_dir):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(path)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        boxes = [
            box
            for box, conf in find_faces(rgb)
            if conf >= FLIP_MIN_CONFIDENCE and not touches_border(box, width, height)
        ]
        if boxes:
            out.append(FaceImage(f"{path.parent.name}/{path.name}", rgb, boxes))
    return out


def touches_border(box: Box, width: int, height: int) -> bool:
    """Whether the (clipped) box reaches the image's edge: a face cut by the border, whose pose
    is not defined (selfie-many-people's half face: yaw 41 and, mirrored, 172 degrees)."""
    x, y, w, h = box
    return x <= 0 or y <= 0 or x + w >= width - 1 or y + h >= height - 1


def mirror_box(box: Box, image_width: int) -> Box:
    """Return the box of the horizontally mirrored image."""
    x, y, w, h = box
    return (image_width - x - w, y, w, h)


def flip_errors(
    estimate: Callable[[np.ndarray, Sequence[Box]], list[HeadPose]],
    images: Sequence[FaceImage],
) -> dict[str, float]:
    """Mean flip inconsistency in degrees over all faces.

    Mirroring should negate yaw and roll and keep pitch, so the errors are ``|yaw + yaw'|``,
    ``|pitch - pitch'|`` and ``|roll + roll'|`` (primed: on the mirrored image, box mirrored).

    Returns:
        ``yaw``, ``pitch``, ``roll`` mean errors and ``faces``, the number of faces.
    """
    errs: dict[str, list[float]] = {"yaw": [], "pitch": [], "roll": []}
    for item in images:
        width = item.rgb.shape[1]
        plain = estimate(item.rgb, item.boxes)
        mirrored = estimate(
            np.ascontiguousarray(item.rgb[:, ::-1]), [mirror_box(b, width) for b in item.boxes]
        )
        for p, m in zip(plain, mirrored, strict=True):
            errs["yaw"].append(abs(p.yaw + m.yaw))
            errs["pitch"].append(abs(p.pitch - m.pitch))
            errs["roll"].append(abs(p.roll + m.roll))
    out = {k: float(np.mean(v)) for k, v in errs.items()}
    out["faces"] = float(len(errs["yaw"]))
    return out
