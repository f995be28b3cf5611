"""The image report's shape, written once: typed dataclasses with a description per field.

``models.report`` fills these and turns them into JSON with ``to_json``; ``app.openapi``
derives the report's JSON Schema from them with ``json_schema``; ``app.metrics`` takes its
reason labels from the ``reasons`` field (``REASON_VALUES``). Adding a field is one edit here
(and the code that computes its value).

Field metadata (``wire_field``): ``description``; JSON Schema keywords under ``schema``
(``minimum``, ``enum``, ``pattern``...); ``omit`` for a field left out of the JSON when it is
None (and so not required in the schema); ``keys`` for a mapping whose keys are fixed (each
becomes a required property).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.pipeline import REASONS
from models.quality.measures import COMPONENT_NAMES, MEASURES
from models.quality.unified import DESCRIPTION as UNIFIED_DESCRIPTION
from models.types import LANDMARK_NAMES

HEX_ID = "^[0-9a-f]{32}$"
# Per-image stages every report times (the metrics' stage histogram labels), and the per-face
# averages of the new stages.
STAGES: tuple[str, ...] = (
    "decode",
    "detect",
    "align",
    "blur",
    "pose",
    "recognizer",
    "quality",
    "encode",
)
PER_FACE_STAGES: tuple[str, ...] = ("recognizer_per_face", "quality_per_face")


def wire_field(
    description: str,
    *,
    omit: bool = False,
    keys: Sequence[str] | None = None,
    key_descriptions: Mapping[str, str] | None = None,
    **schema: Any,
) -> Any:
    """A dataclass field with its wire description (see the module docstring)."""
    meta = {"description": description, "omit": omit, "schema": schema}
    if keys is not None:
        meta["keys"] = tuple(keys)
        meta["key_descriptions"] = dict(key_descriptions or {})
    return field(default=None, metadata=meta) if omit else field(metadata=meta)


@dataclass(frozen=True, kw_only=True)
class Score:
    """One quality measure of a face."""

    raw: float = wire_field(
        "The measure in its own unit (never negative); -1: could not be assessed.", minimum=-1
    )
    score: float = wire_field(
        "0-100, higher is better; -1: could not be assessed.", minimum=-1, maximum=100
    )


@dataclass(frozen=True, kw_only=True)
class Quality:
    """The face's quality: the unified score and every component."""

    unified: Score = wire_field(UNIFIED_DESCRIPTION)
    components: dict[str, Score] = wire_field(
        "ISO/IEC 29794-5 / OFIQ-style components, each a raw value and a 0-100 score.",
        keys=COMPONENT_NAMES,
        key_descriptions={m.name: m.description for m in MEASURES},
    )


@dataclass(frozen=True, kw_only=True)
class Pose:
    """Head pose in degrees."""

    pitch: float = wire_field("Degrees, > 0 looking up.")
    yaw: float = wire_field("Degrees, > 0 turned toward the image's right.")
    roll: float = wire_field("Degrees, > 0 tilted clockwise as seen.")


_POINT = {"minItems": 2, "maxItems": 2}


@dataclass(frozen=True, kw_only=True)
class Landmarks:
    """MTCNN's five landmarks, [x, y] in pixels of the upright image."""

    left_eye: list[int] = wire_field("The eye on the image's left.", **_POINT)
    right_eye: list[int] = wire_field("The eye on the image's right.", **_POINT)
    nose: list[int] = wire_field("Nose tip.", **_POINT)
    mouth_left: list[int] = wire_field("Mouth corner on the image's left.", **_POINT)
    mouth_right: list[int] = wire_field("Mouth corner on the image's right.", **_POINT)


assert tuple(f.name for f in dataclasses.fields(Landmarks)) == LANDMARK_NAMES


@dataclass(frozen=True, kw_only=True)
class FaceEntry:
    """One face of the report (``resp`` for accepted faces, ``rejected`` for the others)."""

    face_id: str = wire_field("Hex id of the face.", pattern=HEX_ID)
    face_confidence: float = wire_field("MTCNN's confidence.", minimum=0, maximum=1)
    face_coordinate: list[int] = wire_field("[x, y, w, h] in pixels.", minItems=4, maxItems=4)
    facie5points: Landmarks = wire_field("MTCNN landmarks; `left_eye` is the image-left eye.")
    face_blur: float = wire_field(
        "Variance of the Laplacian of the grey aligned crop (the original's measure).", minimum=0
    )
    face_pose: Pose | None = wire_field(
        "Degrees; null: not measured (the detection's confidence is under "
        "pose_min_confidence, or the face is too small: too_small or low_resolution)."
    )
    quality: Quality = wire_field("Unified quality score and quality components.")
    reasons: list[str] | None = wire_field(
        "Every gate the face failed, in this order (rejected faces only).",
        omit=True,
        minItems=1,
        items={"enum": list(REASONS)},
    )
    face_native_image_b64: str | None = wire_field("JPEG of the box (images=all).", omit=True)
    face_native_images_b64: str | None = wire_field(
        "PNG of the box with a 30 px margin (images=all).", omit=True
    )
    face_align_images_b64: str | None = wire_field(
        "PNG of the 112x112 aligned face (images=all|aligned).", omit=True
    )


_COUNT = {"minimum": 0}


@dataclass(frozen=True, kw_only=True)
class ImageReport:
    """Everything said about one image."""

    image_id: str = wire_field("Hex id of the image.", pattern=HEX_ID)
    face_total: int = wire_field("All detections.", **_COUNT)
    face_efficient_total_resp: int = wire_field("Accepted faces.", **_COUNT)
    face_confidence_neglect_total_resp: int = wire_field(
        "Rejected faces whose first failed gate is confidence.", **_COUNT
    )
    face_blur_neglect_total_resp: int = wire_field("... first failed gate blur.", **_COUNT)
    face_hopenet_neglect_total_resp: int = wire_field("... first failed gate pose.", **_COUNT)
    face_small_neglect_total_resp: int = wire_field("... failed min_face_px.", **_COUNT)
    face_quality_neglect_total_resp: int = wire_field(
        "... rejected by the quality components only (low_resolution, underexposed, "
        "overexposed, cropped).",
        **_COUNT,
    )
    resp: list[FaceEntry] = wire_field("Accepted faces.", ref="Face")
    rejected: list[FaceEntry] | None = wire_field(
        "Rejected faces with their reasons (omitted with rejected=0).",
        omit=True,
        ref="RejectedFace",
    )
    mark_image_face_b64: str | None = wire_field(
        "JPEG of the image with boxes and scores drawn (omitted with mark=0).", omit=True
    )
    pose_estimator: str = wire_field("The head-pose network.", enum=["whenet", "hopenet"])
    timing_ms: dict[str, float] = wire_field(
        "Milliseconds per stage (per image), and per face for the recogniser and the "
        "quality components.",
        keys=(*STAGES, *PER_FACE_STAGES),
        minimum=0,
    )


REASON_VALUES: tuple[str, ...] = REASONS


# --- JSON ------------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """The JSON-ready form of a wire dataclass (fields with ``omit`` left out when None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get("omit"):
                continue
            out[f.name] = to_json(item)
        return out
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


# --- JSON Schema -----------------------------------------------------------------------------

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(tp: Any, schema: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {tp}")
        out = _type_schema(inner[0], schema, meta)
        if meta.get("omit"):
            return out  # left out when None, never null
        if "type" in out:
            out["type"] = [out["type"], "null"]
            return out
        return {"oneOf": [out, {"type": "null"}]}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp], **schema}
    if origin is list:
        extra = dict(schema)
        ref = extra.pop("ref", None)
        items = _type_schema(args[0], {}, {})
        if ref:
            items = {"$ref": f"#/components/schemas/{ref}"}
        items.update(extra.pop("items", {}))
        return {"type": "array", "items": items, **extra}
    if origin is dict:
        value_schema = _type_schema(args[1], schema, {})
        keys = meta.get("keys")
        if keys is None:
            return {"type": "object", "additionalProperties": value_schema}
        notes = meta.get("key_descriptions", {})
        props = {
            k: {**value_schema, **({"description": notes[k]} if k in notes else {})} for k in keys
        }
        return {"type": "object", "properties": props, "required": list(keys)}
    if dataclasses.is_dataclass(tp):
        return json_schema(tp)
    raise TypeError(f"unsupported type {tp}")


def json_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of a wire dataclass: every field described, the non-``omit`` ones
    required."""
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        sub = _type_schema(hints[f.name], meta.get("schema", {}), meta)
        sub["description"] = meta.get("description", "")
        props[f.name] = sub
        if not meta.get("omit"):
            required.append(f.name)
    return {
        "type": "object",
        "description": (cls.__doc__ or "").strip(),
        "properties": props,
        "required": required,
    }
