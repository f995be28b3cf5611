"""The per-face inputs every quality measure reads, each computed once (OFIQ's ``Session``).

Conventions as ``models.types``: RGB uint8 images, boxes ``(x, y, w, h)``, landmarks in
``LANDMARK_NAMES`` order (``left_eye`` is the eye on the image's left). Luminance is the
ITU-R BT.601 luma of OpenCV's RGB->grey conversion, 0-255.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np

from models.align import ALIGNED_SIZE, ARCFACE_TEMPLATE, similarity_transform
from models.types import Face, HeadPose

# Inter-eye distance of the ArcFace template, pixels of the 112x112 crop.
TEMPLATE_EYES_PX = float(np.linalg.norm(ARCFACE_TEMPLATE[1] - ARCFACE_TEMPLATE[0]))
# The inner face in the aligned crop (template coordinates): eyebrows to chin, cheek to cheek.
# Exposure and illumination look here, not at the hair, the background or the black fill.
FACE_REGION = (slice(34, 104), slice(24, 88))  # rows, columns
# Sharpness is measured on a crop whose eyes lie this far apart (never upscaled; see
# ``FaceSession.fixed_scale_grey``): twice the template's, so blur that a recogniser's 112x112
# input would still show is caught on large faces.
SHARPNESS_EYES_PX = 2.0 * TEMPLATE_EYES_PX
# Below this many pixels between the eyes nothing about the face can be measured honestly.
MIN_MEASURABLE_EYES_PX = 2.0


class FaceSession:
    """One face and its image; the derived inputs are computed on first use and kept.

    Args:
        image: (H, W, 3) uint8 RGB, the whole upright image.
        face: the detection.
        aligned: (112, 112, 3) uint8 RGB ArcFace crop of ``face`` (``models.align``).
        pose: the measured head pose, or None when it was not measured.
    """

    def __init__(
        self, image: np.ndarray, face: Face, aligned: np.ndarray, pose: HeadPose | None
    ) -> None:
        self.image = image
        self.face = face
        self.aligned = aligned
        self.pose = pose

    @cached_property
    def inter_eye_px(self) -> float:
        """Distance between the two eye landmarks, pixels of the image."""
        left, right = np.asarray(self.face.landmarks[:2], dtype=np.float64)
        return float(np.linalg.norm(right - left))

    @cached_property
    def landmarks_finite(self) -> bool:
        return bool(np.isfinite(np.asarray(self.face.landmarks, dtype=np.float64)).all())

    @cached_property
    def measurable(self) -> bool:
        """Whether the landmarks describe a face large enough to measure at all."""
        return self.landmarks_finite and self.inter_eye_px >= MIN_MEASURABLE_EYES_PX

    @cached_property
    def inside(self) -> np.ndarray:
        """(112, 112) bool: which pixels of the aligned crop come from inside the image."""
        h, w = self.image.shape[:2]
        matrix = similarity_transform(self.face.landmarks, ARCFACE_TEMPLATE)
        ones = np.full((h, w), 255, dtype=np.uint8)
        warped = cv2.warpAffine(
            ones, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_NEAREST, borderValue=0
        )
        return warped > 0

    @cached_property
    def grey(self) -> np.ndarray:
        """(112, 112) uint8 luma of the aligned crop."""
        return cv2.cvtColor(self.aligned, cv2.COLOR_RGB2GRAY)

    @cached_property
    def face_luma(self) -> np.ndarray:
        """1-D uint8 luma of the inner face region's pixels that lie inside the image."""
        region = self.grey[FACE_REGION]
        return region[self.inside[FACE_REGION]]

    @cached_property
    def face_halves(self) -> tuple[np.ndarray, np.ndarray]:
        """Luma of the inner face's image-left and image-right halves (inside pixels only)."""
        rows, cols = FACE_REGION
        mid = (cols.start + cols.stop) // 2
        out = []
        for half in (slice(cols.start, mid), slice(mid, cols.stop)):
            out.append(self.grey[rows, half][self.inside[rows, half]])
        return out[0], out[1]

    @cached_property
    def fixed_scale_grey(self) -> np.ndarray | None:
        """Luma of the inner face at a fixed scale: eyes ``SHARPNESS_EYES_PX`` apart.

        The face is first shrunk with area interpolation (a proper low-pass, unlike the
        aligned crop's bilinear warp, whose point sampling of a large face hides its blur and
        adds aliasing), then rotated upright. A face smaller than the fixed scale is never
        upscaled: it is measured at its own scale (eyes closer than ``SHARPNESS_EYES_PX``),
        where a sharp face only looks sharper. None when the face cannot be measured.
        """
        if not self.measurable:
            return None
        eyes = min(self.inter_eye_px, SHARPNESS_EYES_PX)
        k = eyes / TEMPLATE_EYES_PX  # crop pixels per template pixel
        size = max(8, int(round(ALIGNED_SIZE * k)))
        points = np.asarray(self.face.landmarks, dtype=np.float64)
        shrink = eyes / self.inter_eye_px
        image = self.image
        if shrink < 0.95:
            # Shrink only the part of the image the inner face comes from: it reaches 0.4 of
            # the eye distance beyond the eyes and 0.5 above them in the template, so the
            # landmarks' box grown by 0.8 of it holds the region at any roll.
            margin = 0.8 * self.inter_eye_px
            x0, y0 = np.floor(points.min(axis=0) - margin).astype(int)
            x1, y1 = np.ceil(points.max(axis=0) + margin).astype(int)
            h, w = image.shape[:2]
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            if x1 - x0 < 2 or y1 - y0 < 2:
                return None
            part = image[y0:y1, x0:x1]
            new_size = (max(1, round((x1 - x0) * shrink)), max(1, round((y1 - y0) * shrink)))
            image = cv2.resize(part, new_size, interpolation=cv2.INTER_AREA)
            scale_x = new_size[0] / (x1 - x0)
            scale_y = new_size[1] / (y1 - y0)
            points = (points - (x0, y0)) * (scale_x, scale_y)
        matrix = similarity_transform(points, ARCFACE_TEMPLATE * k)
        # Outside the image the edge pixels are repeated, not black: a black fill would draw a
        # hard edge across a face at the border and make it look sharp.
        crop = cv2.warpAffine(
            image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        rows, cols = FACE_REGION
        r0, r1 = int(rows.start * k), int(np.ceil(rows.stop * k))
        c0, c1 = int(cols.start * k), int(np.ceil(cols.stop * k))
        return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[r0:r1, c0:c1]
