"""Small frozen types shared by the pipeline stages.

Conventions, once for the whole package:
- images are ``numpy.ndarray`` of shape (H, W, 3), dtype uint8, **RGB** channel order;
- boxes are ``(x, y, w, h)`` in pixels of that image, ``x, y`` the top-left corner;
- landmarks are five ``(x, y)`` pixel points in the order ``LANDMARK_NAMES``; MTCNN's
  ``left_eye`` is the eye on the *image's* left (the subject's right eye);
- angles are degrees, in the API convention of DESIGN.md: yaw > 0 when the face turns toward
  the image's right, pitch > 0 looking up, roll > 0 when the head tilts clockwise as the viewer
  sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Face:
    """One detection: box, detector confidence and five landmarks (see module conventions)."""

    box: Box
    confidence: float
    landmarks: np.ndarray  # (5, 2) float32, LANDMARK_NAMES order, image pixels

    def landmark_dict(self) -> dict[str, list[int]]:
        """Return the landmarks as the original service's ``facie5points`` mapping (ints)."""
        return {
            name: [int(round(float(x))), int(round(float(y)))]
            for name, (x, y) in zip(LANDMARK_NAMES, self.landmarks, strict=True)
        }


@dataclass(frozen=True)
class HeadPose:
    """Head pose in degrees, API sign convention (see module docstring)."""

    yaw: float
    pitch: float
    roll: float
