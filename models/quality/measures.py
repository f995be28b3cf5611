"""Quality components, one class each (OFIQ's measure-per-class; ISO/IEC 29794-5 names).

Every measure reads the shared ``FaceSession`` and returns a ``Measurement``: a raw value in
the measure's own unit (never negative) and a 0-100 score made by a logistic curve whose centre
and width are settings (``quality_scores``). Both are ``-1`` when the face cannot be assessed
(OFIQ's "failure to assess"): nothing is ever invented.

Adding a component: write one class here and list it in ``MEASURES``; the pipeline, the report,
its OpenAPI schema and the metrics pick it up. A component that gates the verdict also gets a
``Gate`` in ``models.quality.gates`` (a reason and a ``Policy`` threshold).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from models.quality.session import FACE_REGION, SHARPNESS_EYES_PX, FaceSession

NOT_ASSESSED = -1.0
# The luma under which a face pixel counts as dark, and over which as bright (0-255): about
# 2.5 stops under middle grey (118), and within a fifth of the top of the range.
DARK_LUMA = 40
BRIGHT_LUMA = 205
# Fewer face pixels than this (inside the image) and exposure cannot be judged.
MIN_FACE_PIXELS = 64


@dataclass(frozen=True)
class ScoreMap:
    """``score = 100 / (1 + exp(-(raw - centre) / width))``: 50 at ``centre``; a negative
    ``width`` makes a curve that falls as the raw value grows."""

    centre: float
    width: float

    def __call__(self, raw: float) -> float:
        z = (raw - self.centre) / self.width
        return 100.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass(frozen=True)
class Measurement:
    """One component of one face: raw value (>= 0) and 0-100 score; -1, -1 when not assessed."""

    raw: float
    score: float

    @property
    def assessed(self) -> bool:
        return self.raw != NOT_ASSESSED


UNASSESSED = Measurement(NOT_ASSESSED, NOT_ASSESSED)


class Measure:
    """A quality component. Subclasses set the class attributes and implement ``raw``."""

    name: ClassVar[str]
    unit: ClassVar[str]
    description: ClassVar[str]
    default_score: ClassVar[ScoreMap]
    # Whether ``raw`` reads ``session.pose``: the pipeline measures such components after pose,
    # the others before it (their gates decide which faces pose is measured for).
    needs_pose: ClassVar[bool] = False

    def __init__(self, score: ScoreMap | None = None) -> None:
        self.score_map = score or self.default_score

    def raw(self, session: FaceSession) -> float | None:
        """The raw value for this face, or None when it cannot be assessed."""
        raise NotImplementedError

    def execute(self, session: FaceSession) -> Measurement:
        """Measure one face (OFIQ's ``Execute``)."""
        value = self.raw(session)
        if value is None or not math.isfinite(value):
            return UNASSESSED
        value = max(0.0, float(value))
        return Measurement(round(value, 4), round(self.score_map(value), 2))


class Sharpness(Measure):
    """Contrast-normalised second-derivative energy at a fixed scale.

    On the inner face warped so the eyes are ``SHARPNESS_EYES_PX`` apart (area-shrunk, never
    upscaled, see ``FaceSession.fixed_scale_grey``), the second difference is taken along four
    directions (0, 45, 90, 135 degrees); raw is the weakest direction's standard deviation
    divided by the luma's standard deviation. The weakest direction catches motion blur, which
    leaves edges across the motion sharp; dividing by the contrast makes the value independent
    of exposure, which has its own components; the fixed scale makes it independent of the
    face's size in the image, unlike the Laplacian of the 112x112 crop (``face_blur``), which
    is a downscale that hides the blur of large faces.
    """

    name = "sharpness"
    unit = "ratio"
    description = (
        "Weakest of four directional second-difference deviations over the luma deviation, on "
        "the inner face at a fixed scale (eyes 70 px apart, never upscaled); higher is sharper."
    )
    default_score = ScoreMap(0.06, 0.012)
    _KERNELS: ClassVar[tuple[np.ndarray, ...]] = (
        np.array([[1, -2, 1]], np.float32),
        np.array([[1], [-2], [1]], np.float32),
        np.array([[1, 0, 0], [0, -2, 0], [0, 0, 1]], np.float32) / 2.0,
        np.array([[0, 0, 1], [0, -2, 0], [1, 0, 0]], np.float32) / 2.0,
    )

    def raw(self, session: FaceSession) -> float | None:
        grey = session.fixed_scale_grey
        if grey is None or min(grey.shape) < 8:
            return None
        g = grey.astype(np.float32)
        contrast = float(g.std())
        if contrast < 1.0:  # a flat patch: no edges to judge
            return None
        inner = (slice(1, -1), slice(1, -1))
        energies = [
            float(cv2.filter2D(g, cv2.CV_32F, k, borderType=cv2.BORDER_REPLICATE)[inner].std())
            for k in self._KERNELS
        ]
        return min(energies) / contrast


class InterEyeDistance(Measure):
    """Distance between the eye centres in pixels of the image (ISO/IEC 29794-5 IED)."""

    name = "inter_eye_distance"
    unit = "px"
    description = "Pixels between the two eye landmarks in the image (resolution of the face)."
    default_score = ScoreMap(24.0, 5.0)

    def raw(self, session: FaceSession) -> float | None:
        return session.inter_eye_px if session.landmarks_finite else None


class _FaceLumaMeasure(Measure):
    """A measure of the inner face's luma (pixels inside the image); not assessed when fewer
    than ``MIN_FACE_PIXELS`` of them are."""

    def raw(self, session: FaceSession) -> float | None:
        luma = session.face_luma
        return None if luma.size < MIN_FACE_PIXELS else self.of_luma(luma)

    def of_luma(self, luma: np.ndarray) -> float:
        """The raw value of 1-D uint8 luma values (at least ``MIN_FACE_PIXELS``)."""
        raise NotImplementedError


class UnderExposure(_FaceLumaMeasure):
    """Share of the inner face darker than ``DARK_LUMA`` (OFIQ's under-exposure prevention)."""

    name = "under_exposure"
    unit = "fraction"
    description = f"Share of inner-face pixels with luma under {DARK_LUMA} of 255; lower is better."
    default_score = ScoreMap(0.5, -0.08)

    def of_luma(self, luma: np.ndarray) -> float:
        return float((luma < DARK_LUMA).mean())


class OverExposure(_FaceLumaMeasure):
    """Share of the inner face brighter than ``BRIGHT_LUMA`` (OFIQ's over-exposure prevention)."""

    name = "over_exposure"
    unit = "fraction"
    description = (
        f"Share of inner-face pixels with luma over {BRIGHT_LUMA} of 255; lower is better."
    )
    default_score = ScoreMap(0.6, -0.08)

    def of_luma(self, luma: np.ndarray) -> float:
        return float((luma > BRIGHT_LUMA).mean())


class DynamicRange(_FaceLumaMeasure):
    """Entropy of the inner face's luma histogram in bits (OFIQ's dynamic range), 0-8."""

    name = "dynamic_range"
    unit = "bits"
    description = "Entropy of the inner face's 256-bin luma histogram, 0-8 bits."
    default_score = ScoreMap(5.0, 0.5)

    def of_luma(self, luma: np.ndarray) -> float:
        p = np.bincount(luma, minlength=256).astype(np.float64) / luma.size
        p = p[p > 0]
        return float(-(p * np.log2(p)).sum())


class IlluminationUniformity(Measure):
    """How evenly the two halves of the face are lit: darker half's mean over the brighter's."""

    name = "illumination_uniformity"
    unit = "ratio"
    description = (
        "Mean luma of the darker half of the inner face (image-left or -right) over the "
        "brighter half's, 0-1; 1 is even light."
    )
    default_score = ScoreMap(0.7, 0.08)

    def raw(self, session: FaceSession) -> float | None:
        left, right = session.face_halves
        if min(left.size, right.size) < MIN_FACE_PIXELS // 2:
            return None
        a, b = float(left.mean()), float(right.mean())
        if max(a, b) < 1.0:
            return None
        return min(a, b) / max(a, b)


class FaceInFrame(Measure):
    """Share of the inner face (eyebrows to chin, cheek to cheek) inside the image (1: whole).

    The inner face, not the whole 112x112 crop: the crop reaches well beyond the face, and
    tight face crops (camera thumbnails, a recogniser's own aligned crops) hold the whole
    face but not the crop's margin.
    """

    name = "face_in_frame"
    unit = "fraction"
    description = (
        "Share of the inner face (eyebrows to chin, cheek to cheek, as placed by the ArcFace "
        "template) inside the image, 0-1; under 1 the face is cut by the image border."
    )
    default_score = ScoreMap(0.995, 0.002)

    def raw(self, session: FaceSession) -> float | None:
        if not session.landmarks_finite:
            return None
        return float(session.inside[FACE_REGION].mean())


class _HeadPoseAngle(Measure):
    """Absolute head-pose angle in degrees; not assessed when pose was not measured."""

    unit = "degrees"
    angle: ClassVar[str]
    needs_pose = True

    def raw(self, session: FaceSession) -> float | None:
        if session.pose is None:
            return None
        return abs(float(getattr(session.pose, self.angle)))


class HeadPoseYaw(_HeadPoseAngle):
    name = "head_pose_yaw"
    angle = "yaw"
    description = "|yaw| in degrees (the sign is in face_pose); -1 when pose was not measured."
    default_score = ScoreMap(45.0, -6.0)


class HeadPosePitch(_HeadPoseAngle):
    name = "head_pose_pitch"
    angle = "pitch"
    description = "|pitch| in degrees; -1 when pose was not measured."
    default_score = ScoreMap(20.0, -4.0)


class HeadPoseRoll(_HeadPoseAngle):
    name = "head_pose_roll"
    angle = "roll"
    description = "|roll| in degrees; -1 when pose was not measured."
    default_score = ScoreMap(25.0, -5.0)


MEASURES: tuple[type[Measure], ...] = (
    Sharpness,
    InterEyeDistance,
    UnderExposure,
    OverExposure,
    DynamicRange,
    IlluminationUniformity,
    FaceInFrame,
    HeadPoseYaw,
    HeadPosePitch,
    HeadPoseRoll,
)
COMPONENT_NAMES: tuple[str, ...] = tuple(m.name for m in MEASURES)
DEFAULT_SCORE_MAPS: dict[str, tuple[float, float]] = {
    m.name: (m.default_score.centre, m.default_score.width) for m in MEASURES
}


def build_measures(
    score_maps: Mapping[str, Sequence[float]] | None = None,
) -> tuple[Measure, ...]:
    """One instance of every registered measure, with score curves from ``score_maps``
    (component name -> (centre, width)) where given, else each class's default."""
    maps = score_maps or {}
    return tuple(
        m(ScoreMap(*map(float, maps[m.name])) if m.name in maps else None) for m in MEASURES
    )


def measure_all(measures: Sequence[Measure], session: FaceSession) -> dict[str, Measurement]:
    """Every component of one face, in ``MEASURES`` order."""
    return {m.name: m.execute(session) for m in measures}


__all__ = [
    "COMPONENT_NAMES",
    "MEASURES",
    "SHARPNESS_EYES_PX",
    "Measure",
    "Measurement",
    "ScoreMap",
    "UNASSESSED",
    "build_measures",
    "measure_all",
]
