"""``Pipeline.assess``: the one place where an image becomes a verdict.

decode -> detect (MTCNN) -> align (ArcFace 112x112) -> blur (Laplacian variance of the aligned
crop) -> the quality components that need no pose (``models.quality``) -> pose (batched over
the faces confident enough to be faces that pass those gates) -> the head-pose components ->
verdict with every failing reason -> the unified score (the recogniser, for the faces every
gate let through; ``Policy.unified_scope``). Alignment, blur and the components are cheap and
taken for every detection; the pose network and the recogniser, the expensive stages, run only
where they can still change something:

- pose for detections whose confidence reaches ``pose_min_confidence`` (0.90, below the 0.995
  acceptance gate: a rolled or turned real face is then rejected for its pose, not only as
  ``low_confidence``) and that are not too small (``min_face_px``) or under
  ``min_inter_eye_px`` (``low_resolution``: the pose network reads nothing reliable from them;
  famous-selfie: 26 of its 37 confident faces, its small background faces). A face without a
  pose reports ``pose = None`` and unassessed (-1) pose components, and is not judged on pose;
- the recogniser for the faces every gate let through (``unified_scope`` ``accepted``), or
  every detection from ``pose_min_confidence`` on (``all``, low-resolution ones included); the
  others report an unassessed unified score.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Protocol

import numpy as np

from models.align import align_face
from models.blur import laplacian_variance
from models.decode import decode_image
from models.pose import PoseEstimator, cores_shared
from models.quality.gates import GATES, failed_gates
from models.quality.measures import UNASSESSED, Measure, Measurement, build_measures
from models.quality.session import FaceSession
from models.quality.unified import Recognizer, UnifiedQuality
from models.types import Face, HeadPose

# Every reason a face can be rejected for, in the order a face lists them: the original
# service's gates first (the counts of ``count_by_first_gate`` follow them), then the quality
# components' gates (``models.quality.gates``).
POSE_REASONS: tuple[str, ...] = ("pose_yaw", "pose_pitch", "pose_roll")
REASONS: tuple[str, ...] = (
    "too_small",
    "low_confidence",
    "blurry",
    *POSE_REASONS,
    *dict.fromkeys(g.reason for g in GATES if g.reason != "blurry"),
)


class Detector(Protocol):
    """Finds faces in an RGB image (see ``models.types`` for conventions)."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def warm_up(self) -> None: ...


LOW_RESOLUTION = next(g for g in GATES if g.reason == "low_resolution")

# Per-request override bounds of each gate: (low, high).
OVERRIDE_BOUNDS: dict[str, tuple[float, float]] = {
    "face_threshold": (0.0, 1.0),
    "blur_threshold": (0.0, 1e6),
    "max_yaw": (0.0, 180.0),
    "max_pitch": (0.0, 180.0),
    "max_roll": (0.0, 180.0),
    "min_face_px": (0, 10_000),
    "pose_min_confidence": (0.0, 1.0),
    "min_sharpness": (0.0, 10.0),
    "min_inter_eye_px": (0.0, 10_000.0),
    "max_under_exposure": (0.0, 1.0),
    "max_over_exposure": (0.0, 1.0),
    "min_face_in_frame": (0.0, 1.0),
}
# Which faces get the unified score (two recogniser passes each): ``accepted``, the faces that
# pass every other gate (a face already refused needs no ranking; on a crowd most are refused
# for their size), or ``all``, every detection from pose_min_confidence on (what ``bench/edc.py``
# orders).
UNIFIED_SCOPES: tuple[str, ...] = ("accepted", "all")


@dataclass(frozen=True)
class Policy:
    """The gates a face must pass; thresholds in the units of each measure."""

    face_threshold: float = 0.995
    blur_threshold: float = 100.0
    max_yaw: float = 45.0
    max_pitch: float = 20.0
    max_roll: float = 25.0
    min_face_px: int = 0
    # Pose and the recogniser run on detections at least this confident (or passing
    # face_threshold, if that is lower).
    pose_min_confidence: float = 0.90
    # Quality gates (models.quality.gates): each fails with its reason.
    min_sharpness: float = 0.06
    min_inter_eye_px: float = 24.0
    max_under_exposure: float = 0.5
    max_over_exposure: float = 0.6
    min_face_in_frame: float = 0.995
    unified_scope: str = "accepted"

    def __post_init__(self) -> None:
        if self.unified_scope not in UNIFIED_SCOPES:
            raise ValueError(f"unified_scope must be one of {', '.join(UNIFIED_SCOPES)}")

    def with_overrides(self, params: Mapping[str, str]) -> Policy:
        """Return a copy with the query parameters that name a gate (or ``unified_scope``)
        applied.

        Raises:
            ValueError: a value that is not a number or lies outside ``OVERRIDE_BOUNDS``, or an
                unknown ``unified_scope``.
        """
        changes: dict[str, float | int | str] = {}
        if "unified_scope" in params:
            scope = str(params["unified_scope"]).strip().lower()
            if scope not in UNIFIED_SCOPES:
                raise ValueError(f"unified_scope must be one of {', '.join(UNIFIED_SCOPES)}")
            changes["unified_scope"] = scope
        for f in fields(self):
            if f.name not in params or f.name not in OVERRIDE_BOUNDS:
                continue
            raw = params[f.name]
            lo, hi = OVERRIDE_BOUNDS[f.name]
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{f.name} must be a number") from None
            if not (lo <= value <= hi):
                raise ValueError(f"{f.name} must be between {lo:g} and {hi:g}")
            changes[f.name] = int(value) if f.name == "min_face_px" else value
        return replace(self, **changes) if changes else self

    def too_small(self, face: Face) -> bool:
        """Whether the face's box is under ``min_face_px`` on its shorter side (0: never)."""
        return bool(self.min_face_px) and min(face.box[2], face.box[3]) < self.min_face_px

    def needs_pose(self, face: Face) -> bool:
        """Whether pose and the recogniser are measured for this face: not too small, and
        confident enough to be a face (``pose_min_confidence``, or ``face_threshold`` when
        that is lower, so that no accepted face goes unjudged on pose)."""
        floor = min(self.pose_min_confidence, self.face_threshold)
        return not self.too_small(face) and face.confidence >= floor

    def too_low_resolution(self, components: Mapping[str, Measurement]) -> bool:
        """Whether the face fails the ``low_resolution`` gate (eyes under ``min_inter_eye_px``):
        such a face gets no pose. The pose network reads nothing reliable from a face this
        small (a crowd's background faces, upscaled to its 224 px input), and the face is
        refused anyway."""
        measured = components.get(LOW_RESOLUTION.component)
        return measured is not None and LOW_RESOLUTION.fails(measured, self.min_inter_eye_px)

    def needs_unified(self, face: Face, reasons: Sequence[str]) -> bool:
        """Whether the unified score is measured: the face is confident enough to be a face
        and not too small (``needs_pose``'s test, whatever its resolution) and, in the
        ``accepted`` scope, passes every other gate."""
        return self.needs_pose(face) and (self.unified_scope == "all" or not reasons)

    def reasons(
        self,
        face: Face,
        blur: float,
        pose: HeadPose | None,
        components: Mapping[str, Measurement] | None = None,
    ) -> tuple[str, ...]:
        """Every gate this face fails, in ``REASONS`` order (pose gates only when measured,
        a component's gate only when it was assessed)."""
        failed = failed_gates(
            components or {}, {g.threshold: getattr(self, g.threshold) for g in GATES}
        )
        if self.too_small(face):
            failed.add("too_small")
        if face.confidence < self.face_threshold:
            failed.add("low_confidence")
        if blur < self.blur_threshold:
            failed.add("blurry")
        if pose is not None:
            for reason, angle, limit in zip(
                POSE_REASONS,
                (pose.yaw, pose.pitch, pose.roll),
                (self.max_yaw, self.max_pitch, self.max_roll),
                strict=True,
            ):
                if abs(angle) > limit:
                    failed.add(reason)
        return tuple(r for r in REASONS if r in failed)


@dataclass(frozen=True)
class FaceQuality:
    """The unified score and every quality component of one face (-1, -1: not assessed)."""

    unified: Measurement = UNASSESSED
    components: Mapping[str, Measurement] = field(default_factory=dict)


@dataclass(frozen=True)
class FaceResult:
    """One detected face with its measures and verdict."""

    face_id: str
    face: Face
    aligned: np.ndarray  # (112, 112, 3) uint8 RGB
    blur: float
    pose: HeadPose | None  # None: not measured (under pose_min_confidence, or an image gate)
    reasons: tuple[str, ...]
    quality: FaceQuality = field(default_factory=FaceQuality)

    @property
    def accepted(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Assessment:
    """Everything measured on one image; ``models.report`` turns it into the JSON report."""

    image_id: str
    image: np.ndarray  # (H, W, 3) uint8 RGB, upright
    faces: tuple[FaceResult, ...]
    pose_estimator: str
    timing_ms: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> tuple[FaceResult, ...]:
        return tuple(f for f in self.faces if f.accepted)

    @property
    def rejected(self) -> tuple[FaceResult, ...]:
        return tuple(f for f in self.faces if not f.accepted)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 2)


class PixelBudget:
    """Admits images by pixel count so that concurrent images never hold more than ``limit``.

    The detector's memory grows with the image (a 40 MP image peaks at about 3 GB above the
    service's resting size), so two executor workers must not run two such images at once;
    ordinary photos still run side by side. Admission is first come, first served: a large
    image waiting for room is not overtaken by smaller ones. An image larger than ``limit``
    counts as ``limit`` (it runs alone).
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self.used = 0
        self.active = 0  # images holding part of the budget
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Block until ``pixels`` fit beside the images in progress, then count them."""
        need = min(max(1, int(pixels)), self.limit)
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            self._cond.wait_for(lambda: self._queue[0] is ticket and self.used + need <= self.limit)
            self._queue.popleft()
            self.used += need
            self.active += 1
            self._cond.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self._cond:
                self.used -= need
                self.active -= 1
                self._cond.notify_all()


class Pipeline:
    """Detector + pose estimator + gates; safe to call from several threads at once.

    ``pixel_budget`` bounds the pixels of the images assessed at the same time (default
    ``max_pixels``: one image at the size limit, or several smaller ones side by side).
    """

    def __init__(
        self,
        detector: Detector,
        pose: PoseEstimator,
        max_pixels: int = 40_000_000,
        pixel_budget: int | None = None,
        recognizer: Recognizer | None = None,
        measures: Sequence[Measure] | None = None,
        unified: UnifiedQuality | None = None,
    ) -> None:
        """``recognizer`` grounds the unified score (without one, every face's unified score
        is -1, not assessed); ``unified`` replaces the default scoring of it; ``measures``
        the default quality components (``models.quality.measures.build_measures``)."""
        self.detector = detector
        self.pose = pose
        self.recognizer = recognizer
        self.unified = unified or (UnifiedQuality(recognizer) if recognizer else None)
        self.measures = tuple(measures) if measures is not None else build_measures()
        self.max_pixels = max_pixels
        self.budget = PixelBudget(pixel_budget or max_pixels)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            os.cpu_count() or 1, thread_name_prefix="pipeline"
        )

    def spare_pool(self) -> concurrent.futures.Executor | None:
        """Threads to split an image's remaining work over (the report's pictures), or None
        while other images are in progress: then the cores are busy anyway."""
        return self._pool if self.budget.active == 0 else None

    def warm_up(self) -> None:
        """Compile and run every model once so the first request is not slow."""
        self.detector.warm_up()
        self.pose.warm_up()
        if self.unified is not None:
            self.unified.recognizer.warm_up()

    def assess(self, data: bytes, policy: Policy) -> Assessment:
        """Decode and assess one uploaded file.

        Raises:
            models.decode.ImageError: the bytes are not a usable image.
        """
        start = time.perf_counter()
        image = decode_image(data, self.max_pixels)
        decode_ms = _ms(start)
        result = self.assess_image(image, policy)
        return replace(result, timing_ms={"decode": decode_ms, **result.timing_ms})

    def assess_image(self, image: np.ndarray, policy: Policy) -> Assessment:
        """Assess an already decoded (H, W, 3) uint8 RGB image."""
        with self.budget.hold(image.shape[0] * image.shape[1]):
            return self._assess_image(image, policy)

    def _assess_image(self, image: np.ndarray, policy: Policy) -> Assessment:
        timing: dict[str, float] = {}
        t = time.perf_counter()
        faces = self.detector.detect(image)
        timing["detect"] = _ms(t)

        t = time.perf_counter()
        aligned = [align_face(image, f.landmarks) for f in faces]
        timing["align"] = _ms(t)

        t = time.perf_counter()
        blurs = [laplacian_variance(a) for a in aligned]
        timing["blur"] = _ms(t)

        # The components that do not need the pose first: a face failing low_resolution gets
        # no pose.
        t = time.perf_counter()
        sessions = [
            FaceSession(image, face, crop, None) for face, crop in zip(faces, aligned, strict=True)
        ]
        before = [
            {m.name: m.execute(session) for m in self.measures if not m.needs_pose}
            for session in sessions
        ]
        quality_ms = time.perf_counter() - t

        t = time.perf_counter()
        wanted = [
            i
            for i, f in enumerate(faces)
            if policy.needs_pose(f) and not policy.too_low_resolution(before[i])
        ]
        with cores_shared(self.budget.active > 1):
            measured = self.pose.estimate(image, [faces[i].box for i in wanted]) if wanted else []
        poses: list[HeadPose | None] = [None] * len(faces)
        for i, pose in zip(wanted, measured, strict=True):
            poses[i] = pose
        timing["pose"] = _ms(t)

        t = time.perf_counter()
        components: list[dict[str, Measurement]] = []
        for session, pose, known in zip(sessions, poses, before, strict=True):
            session.pose = pose
            components.append(
                {
                    m.name: known[m.name] if m.name in known else m.execute(session)
                    for m in self.measures
                }
            )
        timing["quality"] = round((quality_ms + time.perf_counter() - t) * 1000.0, 2)
        timing["quality_per_face"] = round(timing["quality"] / max(1, len(faces)), 3)
        reasons = [
            policy.reasons(face, blur, pose, comps)
            for face, blur, pose, comps in zip(faces, blurs, poses, components, strict=True)
        ]

        # The unified score is not a gate: it ranks the faces the gates let through (or, in
        # the ``all`` scope, every confident detection), so it runs after them.
        t = time.perf_counter()
        unified: list[Measurement] = [UNASSESSED] * len(faces)
        scored = [i for i, f in enumerate(faces) if policy.needs_unified(f, reasons[i])]
        if self.unified is not None and scored:
            with cores_shared(self.budget.active > 1):
                measured_u = self.unified.assess([aligned[i] for i in scored])
            for i, m in zip(scored, measured_u, strict=True):
                unified[i] = m
        timing["recognizer"] = _ms(t)
        timing["recognizer_per_face"] = round(timing["recognizer"] / max(1, len(scored)), 3)

        results = tuple(
            FaceResult(
                face_id=uuid.uuid4().hex,
                face=face,
                aligned=crop,
                blur=blur,
                pose=pose,
                reasons=why,
                quality=FaceQuality(unified=u, components=comps),
            )
            for face, crop, blur, pose, why, u, comps in zip(
                faces, aligned, blurs, poses, reasons, unified, components, strict=True
            )
        )
        return Assessment(
            image_id=uuid.uuid4().hex,
            image=image,
            faces=results,
            pose_estimator=self.pose.name,
            timing_ms=timing,
        )


def count_by_first_gate(faces: Sequence[FaceResult]) -> dict[str, int]:
    """Count rejected faces by the first gate they failed, in the original service's order.

    The original checked confidence, then blur, then pose, and counted a face under the first
    gate that dropped it; ``too_small`` (not in the original) is counted on its own, and so is
    a face that only the quality components rejected (``quality``).
    """
    counts = {"too_small": 0, "confidence": 0, "blur": 0, "pose": 0, "quality": 0}
    for f in faces:
        if not f.reasons:
            continue
        first = f.reasons[0]
        if first == "too_small":
            counts["too_small"] += 1
        elif first == "low_confidence":
            counts["confidence"] += 1
        elif first == "blurry":
            counts["blur"] += 1
        elif first in POSE_REASONS:
            counts["pose"] += 1
        else:
            counts["quality"] += 1
    return counts
