"""Parsers for the Sophgo/Bitmain SE box: HistoryEvent HTTP pushes and WebSocket event frames.

Layouts accepted (PROTOCOLS.md sections B and C), all by the same field lookup:

- ``ext_data`` (V5R3): ``reg_pic`` + ``ext_data.{spot_pic, ir_pic, recognize_face, person_type,
  device_ip, ep_id}``; the ``fiqa`` variant adds ``ext_data.{box,grab}_fiqa_info``;
- ``ep_info`` (V5R4-V5R7, ``api_version`` "1.0"): top-level ``spot_pic``/``recognize_face``/
  ``person_type`` and ``ep_info.{device_id, ep_ip, ep_id}``;
- ``api_v2`` (V6R2, ``api_version`` "2.0"): ``recognize_face_image``/``spot_image``/
  ``reg_image``/``ir_image`` and ``media_device_info``;
- WebSocket v2 (``register_image`` or the doc example's ``reg_pic``, ``media_device_id``) and v1
  (``device_id``, bare base64 under ``reg_pic``/``ext_data.*``).

A body is one JSON object, a JSON array of them (history upload batches up to 100), a
``multipart/form-data`` or urlencoded form (one field per top-level key, nested objects as JSON
text, images as base64 text or as file parts). Base64 may carry a ``data:image/...;base64,``
prefix; empty strings mean the box was told not to upload that image (no image, no problem).

Roles: ``face`` (the recognised face crop), ``snapshot`` (scene), ``library`` (registered
photo), ``infrared``. ``dedupe_key``: ``event_id`` when present, else
``identity_id|timestamp|device`` (the history uploader re-sends batches). ``metadata["score"]``
is the box's score as sent; ``similarity`` is the same on 0-1 (a score > 1 is taken as 0-100).
Each event is ``face``; one without any image gets ``no_images``. An object without any Sophon
key is skipped; an array element's ``payload_hash`` is the hash of its canonical JSON, so batch
neighbours are not mistaken for duplicates of each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from app.push import multipart
from app.push.event import CameraEvent, PushedImage, sha256_hex, sniff_image
from app.push.fields import (
    decode_base64_image,
    decode_text,
    epoch_time,
    load_json,
    looks_like_json,
    looks_like_multipart,
    looks_like_xml,
    media_type,
    scrub,
    to_float,
    to_int,
    to_str,
)
from app.push.salvage import guarded, image_from_part

SOURCE_HTTP: Final = "sophon_http"
SOURCE_WS: Final = "sophon_ws"
USER_TYPES: Final = {1: "employee", 2: "visitor", 3: "blacklist", 4: "stranger", 5: "vip"}
EVENT_KEYS: Final = frozenset(
    {
        "identity_id",
        "event_id",
        "ext_data",
        "ep_info",
        "api_version",
        "media_device_id",
        "media_device_info",
        "recognize_face_image",
        "recognize_face",
        "reg_pic",
    }
)
# (role, ((container, key), ...)): the first non-empty field wins for each role.
IMAGE_FIELDS: Final = (
    ("face", (("", "recognize_face_image"), ("", "recognize_face"), ("ext", "recognize_face"))),
    ("snapshot", (("", "spot_image"), ("", "spot_pic"), ("ext", "spot_pic"))),
    (
        "library",
        (("", "register_image"), ("", "reg_image"), ("", "reg_pic"), ("ext", "reg_pic")),
    ),
    ("infrared", (("", "ir_image"), ("", "ir_pic"), ("ext", "ir_pic"))),
)
_ATTRIBUTES: Final = ("gender", "age", "glasses", "mask", "hat", "expression")


def parse(body: bytes, content_type: str | None) -> list[CameraEvent]:
    """Parse a HistoryEvent body (object, array, or form) into events; [] when not Sophon."""
    return guarded(SOURCE_HTTP, _parse, body, content_type)


def parse_ws_frame(frame: str | bytes) -> CameraEvent | None:
    """Parse one real-time WebSocket text frame; None when it is not a JSON event object."""
    raw = frame.encode("utf-8", errors="surrogatepass") if isinstance(frame, str) else frame
    value = load_json(raw)
    if not isinstance(value, dict):
        return None
    return event_from_dict(value, source=SOURCE_WS, payload_hash=sha256_hex(raw))


def _parse(body: bytes, content_type: str | None) -> list[CameraEvent]:
    kind = media_type(content_type)
    files: dict[str, multipart.Part] = {}
    problems: list[str] = []
    if looks_like_json(body):
        value = load_json(body)
        if isinstance(value, dict):
            objects = [(value, sha256_hex(body))]
        elif isinstance(value, list):
            objects = [(v, _canonical_hash(v)) for v in value if isinstance(v, dict)]
            if len(objects) == 1:
                objects = [(objects[0][0], sha256_hex(body))]
        else:
            return []
    elif looks_like_multipart(body, content_type):
        mp = multipart.split(body, content_type)
        problems.extend(mp.problems)
        form, files = _form_fields(mp)
        objects = [(form, sha256_hex(body))]
    elif kind == "application/x-www-form-urlencoded" or (
        b"=" in body[:256] and not looks_like_xml(body)
    ):
        text = decode_text(body)
        objects = [({k: _maybe_json(v) for k, v in parse_qsl(text, True)}, sha256_hex(body))]
    else:
        return []
    events = []
    for obj, payload_hash in objects:
        event = event_from_dict(
            obj, source=SOURCE_HTTP, payload_hash=payload_hash, files=files, problems=problems
        )
        if event is not None:
            events.append(event)
    return events


def _canonical_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return sha256_hex(text.encode("utf-8", errors="surrogatepass"))


def _maybe_json(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        value = load_json(stripped)
        if value is not None:
            return value
    return stripped


def _form_fields(mp: multipart.Multipart) -> tuple[dict[str, Any], dict[str, multipart.Part]]:
    """Return text fields (JSON-looking values decoded) and image file parts, by field name."""
    fields: dict[str, Any] = {}
    files: dict[str, multipart.Part] = {}
    for part in mp.parts:
        if not part.name:
            continue
        if sniff_image(part.data) is not None:
            files.setdefault(part.name, part)
        else:
            fields.setdefault(part.name, _maybe_json(part.text()))
    return fields, files


def event_from_dict(
    obj: Mapping[str, Any],
    *,
    source: str,
    payload_hash: str,
    files: Mapping[str, multipart.Part] | None = None,
    problems: list[str] | None = None,
) -> CameraEvent | None:
    """Build an event from one decoded Sophon event object; None when it has no Sophon key."""
    if not EVENT_KEYS & set(obj):
        return None
    ext = _dict(obj.get("ext_data"))
    ep = _dict(obj.get("ep_info"))
    device = _dict(obj.get("media_device_info"))
    attrs = _dict(obj.get("recognize_face_attr")) or _dict(ext.get("info"))
    found_problems = list(problems or ())
    images = _images(obj, ext, files or {}, found_problems)
    if not images:
        found_problems.append("no_images")
    device_id = _first(
        device.get("media_device_id"),
        obj.get("media_device_id"),
        ep.get("device_id"),
        obj.get("device_id"),
        ext.get("ep_id"),
        obj.get("ep_id"),
    )
    device_ip = _first(
        device.get("media_device_ip"),
        obj.get("media_device_ip"),
        ep.get("ep_ip"),
        ext.get("device_ip"),
        obj.get("device_ip"),
    )
    device_id = device_id or device_ip
    timestamp = to_int(obj.get("timestamp"))
    identity_id = to_str(obj.get("identity_id"))
    event_id = to_str(obj.get("event_id"))
    dedupe_key = event_id
    if dedupe_key is None and identity_id and timestamp is not None:
        dedupe_key = f"{identity_id}|{timestamp}|{device_id or '-'}"
    score = to_float(obj.get("score"))
    person_type = to_int(obj.get("person_type", ext.get("person_type")))
    metadata: dict[str, Any] = {
        "format": _layout(obj, source, ext, ep, device),
        "api_version": to_str(obj.get("api_version")),
        "event_id": event_id,
        "identity_id": identity_id,
        "identity_name": to_str(obj.get("identity_name")),
        "group_name": to_str(obj.get("group_name")),
        "user_type": to_str(obj.get("user_type")) or USER_TYPES.get(person_type or 0),
        "person_type": person_type,
        "score": score,
        "similarity": None if score is None else (score / 100.0 if score > 1.0 else score),
        "timestamp": timestamp,
        "in_timestamp": to_int(obj.get("in_timestamp")),
        "out_timestamp": to_int(obj.get("out_timestamp")),
        "action": to_str(obj.get("post_action")) or to_str(obj.get("want_action")),
        "device_ip": device_ip,
        "device_type": _first(
            device.get("media_device_type"),
            obj.get("media_device_type"),
            ep.get("ep_type"),
            ext.get("device_type"),
        ),
        "device_name": _first(device.get("media_device_name"), ep.get("ep_name")),
        "ep_id": _first(ep.get("ep_id"), ext.get("ep_id")),
        "dev_sno": _first(obj.get("dev_sno"), ext.get("dev_sno")),
        "face_box": attrs.get("box") or None,
        "face_points": attrs.get("point") or None,
        "attributes": {k: attrs[k] for k in _ATTRIBUTES if attrs.get(k) is not None} or None,
        "box_fiqa": ext.get("box_fiqa_info"),
        "grab_fiqa": ext.get("grab_fiqa_info"),
        "identity_info": _dict(obj.get("identity_info")) or None,
        "problems": found_problems or None,
    }
    return CameraEvent(
        source=source,
        kind="face",
        device_id=device_id,
        event_time=epoch_time(timestamp),
        dedupe_key=dedupe_key,
        payload_hash=payload_hash,
        metadata=scrub({k: v for k, v in metadata.items() if v is not None}),
        images=images,
    )


def _images(
    obj: Mapping[str, Any],
    ext: Mapping[str, Any],
    files: Mapping[str, multipart.Part],
    problems: list[str],
) -> tuple[PushedImage, ...]:
    images: list[PushedImage] = []
    for role, candidates in IMAGE_FIELDS:
        for where, key in candidates:
            label = f"ext_data.{key}" if where == "ext" else key
            if where == "" and key in files:
                image, problem = image_from_part(files[key], role)
                if problem:
                    problems.append(problem)
                if image is not None:
                    images.append(image)
                    break
                continue
            value = (ext if where == "ext" else obj).get(key)
            data, problem = decode_base64_image(value)
            if problem:
                problems.append(f"{problem}:{label}")
            if data is not None:
                content_type = sniff_image(data) or "application/octet-stream"
                images.append(PushedImage(role, data, content_type, label))
                break
    return tuple(images)


def _layout(
    obj: Mapping[str, Any],
    source: str,
    ext: Mapping[str, Any],
    ep: Mapping[str, Any],
    device: Mapping[str, Any],
) -> str:
    if source == SOURCE_WS:
        legacy = "device_id" in obj or bool(ext)
        return "ws_v1" if legacy and "media_device_id" not in obj else "ws_v2"
    if (to_str(obj.get("api_version")) or "").startswith("2") or device:
        return "api_v2"
    if ep:
        return "ep_info"
    if "box_fiqa_info" in ext or "grab_fiqa_info" in ext:
        return "ext_data_fiqa"
    if ext:
        return "ext_data"
    return "flat"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(*values: Any) -> str | None:
    for value in values:
        text = to_str(value)
        if text:
            return text
    return None
