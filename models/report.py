"""The image report: the original service's JSON keys, plus ``rejected``, ``quality``,
``pose_estimator`` and ``timing_ms``. Its shape is ``models.wire`` (built here, turned into JSON
by ``models.wire.to_json``). Base64 crops are encoded only when asked for
(``images=all|aligned|none``)."""

from __future__ import annotations

import base64
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from models.pipeline import Assessment, FaceResult, count_by_first_gate
from models.png import encode_png
from models.quality.measures import Measurement
from models.wire import (
    PER_FACE_STAGES,
    STAGES,
    FaceEntry,
    ImageReport,
    Landmarks,
    Pose,
    Quality,
    Score,
    to_json,
)

IMAGE_OPTIONS = ("all", "aligned", "none")
# Values of the on/off query flags (``mark``, ``rejected``).
FLAG_VALUES = {"0": False, "1": True, "true": True, "false": False, "yes": True, "no": False}
# From this many faces with pictures on, a given pool encodes them side by side: 39 faces of
# famous-selfie took 11 ms instead of 15 on 2 cores (base64 and the dicts keep the GIL).
PARALLEL_FROM = 4
NATIVE_MARGIN_PX = 30
_ACCEPTED_BGR = (0, 200, 0)
_REJECTED_BGR = (0, 0, 230)


@dataclass(frozen=True)
class ReportOptions:
    """What to put in the report besides the measures."""

    images: str = "all"  # which base64 crops: all | aligned | none
    mark: bool = True  # the marked full image
    rejected: bool = True  # the list of rejected faces with their reasons


def _encode(ext: str, bgr: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, bgr, params or [])
    if not ok:  # pragma: no cover - OpenCV fails only on empty arrays, which we never pass
        raise ValueError(f"cannot encode {ext}")
    return buf.tobytes()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _int_box(box: tuple[float, float, float, float]) -> list[int]:
    return [int(round(v)) for v in box]


def _crop(image: np.ndarray, box: list[int], margin: int) -> np.ndarray:
    h, w = image.shape[:2]
    x, y, bw, bh = box
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(w, x + bw + margin), min(h, y + bh + margin)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((1, 1, 3), dtype=np.uint8)
    return image[y0:y1, x0:x1]


def _score(m: Measurement) -> Score:
    return Score(raw=m.raw, score=m.score)


def face_wire(result: FaceResult, image: np.ndarray, images: str) -> FaceEntry:
    """Return one face's wire record (``resp`` / ``rejected`` entry)."""
    box = _int_box(result.face.box)
    native = native_margin = aligned = None
    if images == "all":
        crop = cv2.cvtColor(_crop(image, box, 0), cv2.COLOR_RGB2BGR)
        native = _b64(_encode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95]))
        # models.png: ~4x faster than cv2.imencode's PNG at the same size, and takes RGB as is.
        native_margin = _b64(encode_png(_crop(image, box, NATIVE_MARGIN_PX)))
    if images in ("all", "aligned"):
        aligned = _b64(encode_png(result.aligned))
    pose = result.pose
    return FaceEntry(
        face_id=result.face_id,
        face_confidence=round(float(result.face.confidence), 6),
        face_coordinate=box,
        facie5points=Landmarks(**result.face.landmark_dict()),
        face_blur=round(result.blur, 4),
        face_pose=None
        if pose is None
        else Pose(pitch=round(pose.pitch, 3), yaw=round(pose.yaw, 3), roll=round(pose.roll, 3)),
        quality=Quality(
            unified=_score(result.quality.unified),
            components={k: _score(v) for k, v in result.quality.components.items()},
        ),
        reasons=None if result.accepted else list(result.reasons),
        face_native_image_b64=native,
        face_native_images_b64=native_margin,
        face_align_images_b64=aligned,
    )


def face_entry(result: FaceResult, image: np.ndarray, images: str) -> dict[str, Any]:
    """Return one face's JSON object (``resp`` / ``rejected`` entry)."""
    return to_json(face_wire(result, image, images))


def mark_image(assessment: Assessment) -> np.ndarray:
    """Return a BGR copy of the image with every face's box drawn: above it the confidence and
    the unified quality score (``q``, when assessed), below a rejected face its reasons."""
    bgr = cv2.cvtColor(assessment.image, cv2.COLOR_RGB2BGR)
    thickness = max(1, round(max(bgr.shape[:2]) / 500))
    scale = 0.3 * thickness
    text_thickness = max(1, thickness - 1)
    for f in assessment.faces:
        x, y, w, h = _int_box(f.face.box)
        colour = _ACCEPTED_BGR if f.accepted else _REJECTED_BGR
        cv2.rectangle(bgr, (x, y), (x + w, y + h), colour, thickness)
        label = f"{f.face.confidence:.3f}"
        if f.quality.unified.assessed:
            label += f" q{f.quality.unified.score:.0f}"
        lines = [(label, max(0, y - 4))]
        step = int(22 * scale) + 2
        lines += [(r, y + h + step * (i + 1)) for i, r in enumerate(f.reasons)]
        for text, baseline in lines:
            cv2.putText(
                bgr,
                text,
                (x, baseline),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                colour,
                text_thickness,
                cv2.LINE_AA,
            )
    return bgr


def marked_jpeg(assessment: Assessment) -> bytes:
    """Return ``mark_image`` as JPEG (quality 90), as the report and ``scan --marked`` carry it."""
    return _encode(".jpg", mark_image(assessment), [cv2.IMWRITE_JPEG_QUALITY, 90])


def build_report(
    assessment: Assessment, options: ReportOptions, pool: Executor | None = None
) -> dict[str, Any]:
    """Build the JSON-ready image report (see DESIGN.md "Image report").

    Args:
        assessment: the pipeline's result.
        options: which pictures to include.
        pool: threads to encode the pictures on side by side (OpenCV and ISA-L release the
            GIL), used from ``PARALLEL_FROM`` faces on; None encodes on the calling thread.
    """
    start = time.perf_counter()
    counts = count_by_first_gate(assessment.faces)
    image = assessment.image
    mark = None
    if options.mark and pool is not None:
        mark = pool.submit(lambda: _b64(marked_jpeg(assessment)))
    faces = list(assessment.accepted)
    accepted = len(faces)
    if options.rejected:
        faces += assessment.rejected
    if pool is not None and options.images != "none" and len(faces) >= PARALLEL_FROM:
        entries = list(pool.map(lambda f: face_wire(f, image, options.images), faces))
    else:
        entries = [face_wire(f, image, options.images) for f in faces]
    timing = dict(assessment.timing_ms)
    for stage in (*STAGES, *PER_FACE_STAGES):
        timing.setdefault(stage, 0.0)
    report = ImageReport(
        image_id=assessment.image_id,
        face_total=len(assessment.faces),
        face_efficient_total_resp=accepted,
        face_confidence_neglect_total_resp=counts["confidence"],
        face_blur_neglect_total_resp=counts["blur"],
        face_hopenet_neglect_total_resp=counts["pose"],
        face_small_neglect_total_resp=counts["too_small"],
        face_quality_neglect_total_resp=counts["quality"],
        resp=entries[:accepted],
        rejected=entries[accepted:] if options.rejected else None,
        mark_image_face_b64=(mark.result() if mark else _b64(marked_jpeg(assessment)))
        if options.mark
        else None,
        pose_estimator=assessment.pose_estimator,
        timing_ms=timing,
    )
    out = to_json(report)
    out["timing_ms"]["encode"] = round((time.perf_counter() - start) * 1000.0, 2)
    return out
