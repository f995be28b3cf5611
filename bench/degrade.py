"""Image degradations for the evaluation sets, their strength relative to the face.

Used by ``bench/make_verdict_set.py`` (one strength per degradation, labelled with the reason
the service should give) and ``bench/edc.py`` (several strengths that keep the identity).
Strengths are given relative to the face's inter-eye distance (``ied``), so that a large face
is degraded as much as a small one once aligned to the 112x112 template, whose eyes lie 35 px
apart. Images are (H, W, 3) uint8 RGB, as in ``models.types``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from models.decode import decode_image
from models.types import Face


class FaceDetector(Protocol):
    """What the degradations need of a detector (``models.detector.MTCNNDetector`` fits)."""

    def detect(self, image: np.ndarray) -> list[Face]: ...


@dataclass(frozen=True)
class Eyes:
    """The two eye centres of a face, image pixels (``left`` is the eye on the image's left)."""

    left: np.ndarray
    right: np.ndarray

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.right - self.left))

    @property
    def centre(self) -> tuple[float, float]:
        mid = (self.left + self.right) / 2.0
        return float(mid[0]), float(mid[1])

    @property
    def roll_deg(self) -> float:
        """The eye line's angle; > 0 when the head tilts clockwise as the viewer sees it."""
        dx, dy = self.right - self.left
        return math.degrees(math.atan2(float(dy), float(dx)))


def find_eyes(detector: FaceDetector, rgb: np.ndarray) -> Eyes | None:
    """The eyes of the largest face the detector finds, or None when it finds none."""
    faces = detector.detect(rgb)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.box[2] * f.box[3])
    marks = face.landmarks.astype(np.float64)
    return Eyes(left=marks[0], right=marks[1])


def gaussian_blur(rgb: np.ndarray, eyes: Eyes, sigma_ied: float) -> np.ndarray:
    """Defocus: a Gaussian whose sigma is ``sigma_ied`` times the inter-eye distance."""
    sigma = max(0.5, eyes.distance * sigma_ied)
    return cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma, sigmaY=sigma)


def motion_blur(rgb: np.ndarray, eyes: Eyes, length_ied: float, angle_deg: float) -> np.ndarray:
    """Camera shake: a line kernel ``length_ied`` inter-eye distances long at ``angle_deg``."""
    length = max(3, int(round(eyes.distance * length_ied)) | 1)
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    centre = ((length - 1) / 2.0, (length - 1) / 2.0)
    turn = cv2.getRotationMatrix2D(centre, angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, turn, (length, length), flags=cv2.INTER_LINEAR)
    kernel /= kernel.sum()
    return cv2.filter2D(rgb, -1, kernel, borderType=cv2.BORDER_REFLECT101)


def downscale(rgb: np.ndarray, eyes: Eyes, eyes_px: float) -> np.ndarray:
    """The whole image shrunk (area-averaged) until the eyes are ``eyes_px`` apart."""
    factor = min(1.0, eyes_px / eyes.distance)
    h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def darken(rgb: np.ndarray, gain: float) -> np.ndarray:
    """Underexposure: every value times ``gain`` (< 1), as a shorter exposure records it."""
    return np.round(rgb.astype(np.float32) * gain).astype(np.uint8)


def wash_out(rgb: np.ndarray, contrast: float) -> np.ndarray:
    """Overexposure: every value pulled toward white, ``contrast`` (< 1) of it left."""
    return np.round(255.0 - (255.0 - rgb.astype(np.float32)) * contrast).astype(np.uint8)


def rotate_to(rgb: np.ndarray, eyes: Eyes, roll_deg: float) -> np.ndarray:
    """Rotate about the eyes' centre until the eye line lies at ``roll_deg``, on a canvas large
    enough for the whole rotated image (black outside it)."""
    h, w = rgb.shape[:2]
    # cv2 turns the content counter-clockwise for a positive angle, which lowers the roll.
    matrix = cv2.getRotationMatrix2D(eyes.centre, eyes.roll_deg - roll_deg, 1.0)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64)
    moved = corners @ matrix.T
    lo = np.floor(moved.min(axis=0))
    hi = np.ceil(moved.max(axis=0))
    matrix[:, 2] -= lo
    size = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
    return cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Compression artefacts: the image through a JPEG of ``quality`` (1-100)."""
    return decode_image(encode_jpeg(rgb, quality))


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """Return ``rgb`` as JPEG bytes of ``quality``."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:  # pragma: no cover - OpenCV fails only on empty arrays
        raise ValueError("cannot encode a JPEG")
    return buf.tobytes()
