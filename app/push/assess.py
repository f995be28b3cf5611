"""One pushed image through the pipeline: its report (the /upload schema) and accepted crops.

``assess_pushed`` runs on the model executor's thread (never the IOLoop, never beside another
model call). An image the decoder refuses becomes an error entry for that image, the way
``/uploads`` reports a bad file; the event still completes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.push.event import PushedImage
from models.decode import ImageError
from models.pipeline import Pipeline, Policy
from models.png import encode_png
from models.report import ReportOptions, build_report

# Stored reports carry no base64 pictures: crops are files, served by /events/<id>/faces/.
REPORT_OPTIONS = ReportOptions(images="none", mark=False, rejected=True)


@dataclass(frozen=True)
class ImageOutcome:
    """The stored report of one image, the PNG crops of its accepted faces, and the reasons
    of every detected face (for the metrics)."""

    report: dict[str, Any]
    crops: tuple[tuple[str, bytes], ...] = ()
    reasons: tuple[tuple[str, ...], ...] = ()

    @property
    def assessed(self) -> bool:
        """False for an error entry (the image could not be assessed)."""
        return "error" not in self.report


def error_entry(
    index: int, image: PushedImage, code: str, message: str, status: int
) -> dict[str, Any]:
    """The report of an image that could not be assessed (same shape as an /uploads error)."""
    return {
        "error": {"code": code, "message": message},
        "status": status,
        "index": index,
        "role": image.role,
        "name": image.name,
    }


def assess_pushed(
    pipeline: Pipeline, image: PushedImage, index: int, policy: Policy, max_image_bytes: int
) -> ImageOutcome:
    """Assess one pushed image (runs on the model thread).

    Args:
        pipeline: the loaded pipeline.
        image: the stored image bytes and their role in the event.
        index: the image's position in the event (``image_files[].index``).
        policy: the service's default gates (pushes carry no per-request overrides).
        max_image_bytes: larger images get an ``image_too_large`` error entry.

    Returns:
        The report (``index``, ``role`` and ``name`` added) and PNG crops of accepted faces.
    """
    if image.size > max_image_bytes:
        message = f"the image is larger than {max_image_bytes} bytes"
        entry = error_entry(index, image, "image_too_large", message, 413)
        return ImageOutcome(entry)
    try:
        assessment = pipeline.assess(image.data, policy)
    except ImageError as exc:
        entry = error_entry(index, image, exc.code, exc.message, exc.status)
        return ImageOutcome(entry)
    report = build_report(assessment, REPORT_OPTIONS)
    report.update(index=index, role=image.role, name=image.name)
    crops = tuple((f.face_id, encode_png(f.aligned)) for f in assessment.accepted)
    reasons = tuple(f.reasons for f in assessment.faces)
    return ImageOutcome(report, crops, reasons)
