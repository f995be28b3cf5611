"""Prometheus metrics of one application, in a registry of its own (no global state).

Names follow the Prometheus conventions: nouns with their unit, ``_total`` for counters. The
request histogram is labelled by handler *class*, never by URL, so cardinality stays bounded.
Every label value of the image and face counters is created up front, so a fresh service
exports zeros instead of missing series (alerts on ``rate()`` need the series to exist).

Camera receivers and workers call ``record_image(source, ...)`` with their own ``source`` and
register the inbox backlog with ``track_inbox_backlog``; everything here is thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from app.push.event import SOURCES as PUSH_SOURCES
from models.wire import REASON_VALUES as REASONS
from models.wire import STAGES

SOURCES: tuple[str, ...] = ("upload", *PUSH_SOURCES)
VERDICTS: tuple[str, ...] = ("accepted", "rejected")
MODELS: tuple[str, ...] = ("detector", "pose")  # the recogniser loads with them

# Seconds. Requests span a 1 ms probe to a multi-second crowd photo on a busy CPU.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Stages run from well under a millisecond (blur) to seconds (detect on a large image).
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "SOURCES", "STAGES"]


class Metrics:
    """The service's metrics; one instance per application, each with its own registry."""

    def __init__(self, process_metrics: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if process_metrics:
            # Resident memory and CPU of this process: what the k8s requests are sized from.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        self.request_duration = Histogram(
            "faceq_http_request_duration_seconds",
            "Time from the start of a request to its answer.",
            ("method", "handler", "status"),
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "faceq_stage_duration_seconds",
            "Time spent in one pipeline stage for one image.",
            ("stage",),
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.images = Counter(
            "faceq_images",
            "Images run through the pipeline, by entry point.",
            ("source",),
            registry=r,
        )
        self.faces = Counter("faceq_faces", "Detected faces by verdict.", ("verdict",), registry=r)
        self.rejections = Counter(
            "faceq_face_rejections",
            "Rejected faces by failed gate; a face failing several gates counts under each.",
            ("reason",),
            registry=r,
        )
        self.queue_depth = Gauge(
            "faceq_executor_queue_depth",
            "Model jobs admitted and not finished (running plus waiting).",
            registry=r,
        )
        self.inbox_backlog = Gauge(
            "faceq_inbox_backlog", "Camera events waiting for or in processing.", registry=r
        )
        self.model_ready = Gauge(
            "faceq_model_ready",
            "1 when the model is loaded and warmed up.",
            ("model",),
            registry=r,
        )
        for stage in STAGES:
            self.stage_duration.labels(stage)
        for source in SOURCES:
            self.images.labels(source)
        for verdict in VERDICTS:
            self.faces.labels(verdict)
        for reason in REASONS:
            self.rejections.labels(reason)
        for model in MODELS:
            self.model_ready.labels(model).set(0)
        self.queue_depth.set(0)
        self.inbox_backlog.set(0)

    # --- callbacks read at scrape time ----------------------------------------------------

    def track_queue_depth(self, read: Callable[[], float]) -> None:
        """Read the executor's in-flight count whenever the metrics are scraped."""
        self.queue_depth.set_function(read)

    def track_model_ready(self, model: str, read: Callable[[], bool]) -> None:
        """Read whether ``model`` (``detector`` or ``pose``) is ready at scrape time."""
        self.model_ready.labels(model).set_function(lambda: 1.0 if read() else 0.0)

    def track_inbox_backlog(self, read: Callable[[], float]) -> None:
        """Register the camera inbox's backlog counter (default: a constant 0)."""
        self.inbox_backlog.set_function(read)

    # --- recording -----------------------------------------------------------------------

    def observe_request(self, method: str, handler: str, status: int, seconds: float) -> None:
        """Record one finished HTTP request (called from the application's log function)."""
        self.request_duration.labels(method, handler, str(status)).observe(seconds)

    def record_image(
        self, source: str, timing_ms: Mapping[str, float], reasons: Iterable[Iterable[str]]
    ) -> None:
        """Count one assessed image: its stage times and each face's verdict and reasons.

        Args:
            source: one of ``SOURCES`` (the entry point that received the image).
            timing_ms: stage -> milliseconds, as in the report's ``timing_ms``; stages
                outside ``STAGES`` are ignored so that the label set stays bounded.
            reasons: for each detected face, the gates it failed (empty when accepted).
        """
        if source not in SOURCES:
            raise ValueError(f"unknown image source {source!r}")
        self.images.labels(source).inc()
        for stage, ms in timing_ms.items():
            if stage in STAGES:
                self.stage_duration.labels(stage).observe(max(0.0, float(ms)) / 1000.0)
        for face_reasons in reasons:
            failed = list(face_reasons)
            self.faces.labels("rejected" if failed else "accepted").inc()
            for reason in failed:
                if reason in REASONS:  # bounded label set
                    self.rejections.labels(reason).inc()

    def exposition(self) -> bytes:
        """Return the registry in the Prometheus text format (``CONTENT_TYPE_LATEST``)."""
        return generate_latest(self.registry)
