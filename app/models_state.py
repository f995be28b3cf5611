"""Loading the models in the background and reporting readiness honestly."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from app.settings import Settings
from models.pipeline import Pipeline, Policy
from models.pose import PoseEstimator
from models.quality.measures import ScoreMap, build_measures
from models.quality.unified import NAME as UNIFIED
from models.quality.unified import UnifiedQuality

log = logging.getLogger(__name__)


def build_pose_estimator(settings: Settings) -> PoseEstimator:
    """Create the configured pose estimator (weights by file path, nothing downloaded)."""
    if settings.pose_estimator == "hopenet":
        from models.hopenet import HopenetEstimator

        return HopenetEstimator(str(settings.hopenet_snapshot))
    from models.whenet import WHENetEstimator

    return WHENetEstimator()


def build_pipeline(settings: Settings) -> Pipeline:
    """Create detector, pose estimator and recogniser from the settings and warm them up."""
    from models.detector import MTCNNDetector
    from models.recognizer import SFaceRecognizer

    detector = MTCNNDetector(
        min_face_size=settings.min_face_size,
        scale_factor=settings.scale_factor,
        thresholds=settings.steps_threshold,
        backend=settings.detector_backend,
        threads=settings.tf_threads,
    )
    scores = settings.quality_scores
    recognizer = unified = None
    if settings.recognizer == "sface":
        recognizer = SFaceRecognizer(
            threads=settings.torch_threads, precision=settings.recognizer_precision
        )
        curve = ScoreMap(*scores[UNIFIED]) if UNIFIED in scores else None
        unified = UnifiedQuality(recognizer, curve)
    pipeline = Pipeline(
        detector,
        build_pose_estimator(settings),
        max_pixels=settings.max_pixels,
        recognizer=recognizer,
        measures=build_measures(scores),
        unified=unified,
    )
    pipeline.warm_up()
    return pipeline


def load_models(settings: Settings) -> tuple[Pipeline, Policy]:
    """What the command-line tools need: torch's threads set, the pipeline built and warmed,
    and the default policy (``scan``, ``eval-verdicts``, the benches)."""
    from app.runtime import configure_threads

    configure_threads(settings.torch_threads)
    return build_pipeline(settings), default_policy(settings)


def default_policy(settings: Settings) -> Policy:
    """The gates from the settings; requests may override them within bounds."""
    return Policy(
        face_threshold=settings.face_threshold,
        blur_threshold=settings.blur_threshold,
        max_yaw=settings.yaw_threshold,
        max_pitch=settings.pitch_threshold,
        max_roll=settings.roll_threshold,
        min_face_px=settings.min_face_px,
        pose_min_confidence=settings.pose_min_confidence,
        min_sharpness=settings.min_sharpness,
        min_inter_eye_px=settings.min_inter_eye_px,
        max_under_exposure=settings.max_under_exposure,
        max_over_exposure=settings.max_over_exposure,
        min_face_in_frame=settings.min_face_in_frame,
        unified_scope=settings.unified_scope,
    )


@dataclass
class ModelState:
    """Whether the models are loaded and warmed; set once by the loader, read by handlers."""

    pipeline: Pipeline | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    ready_after_s: float | None = None

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    def load(self, settings: Settings) -> Pipeline:
        """Build and warm the pipeline (runs on a worker thread); remember success or failure."""
        try:
            pipeline = build_pipeline(settings)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise
        self.ready_after_s = round(time.monotonic() - self.started_at, 2)
        self.pipeline = pipeline
        log.info("models ready after %.1f s", self.ready_after_s)
        return pipeline

    def details(self) -> dict[str, object]:
        """What /readyz tells: model names and load state."""
        if self.pipeline is None:
            return {"ready": False, "error": self.error}
        recognizer = self.pipeline.recognizer
        return {
            "ready": True,
            "detector": self.pipeline.detector.name,
            "pose_estimator": self.pipeline.pose.name,
            "recognizer": recognizer.name if recognizer else None,
            # What the networks whose precision follows the CPU run in here: scores and angles
            # differ slightly between a bfloat16 and a float32 machine.
            "precision": {
                "pose": self.pipeline.pose.effective_precision,
                "recognizer": recognizer.effective_precision if recognizer else None,
            },
            "ready_after_s": self.ready_after_s,
        }
