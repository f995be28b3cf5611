"""Parser for Hikvision ISAPI listening-mode pushes (PROTOCOLS.md section D).

Shapes handled, as a JSON or XML body on its own or as parts of a multipart body:

- ``alarmResult`` / ``faceCapture`` JSON (DeepinView) with ``faceImage``, ``backgroundImage``
  and ``faceLibImage`` parts. Images are linked to the JSON by ``pId`` == Content-ID, filename
  or part name; then by ``contentID`` == part name or Content-ID; then by size (the largest
  goes to the background when there are more images than face references); what is left gets
  a role from its part name. ``dedupe_key`` is the ``pId`` of the background (``targetAttrs``),
  else of the first face. ``isDataRetransmission`` events are kept (marked ``retransmission``).
- ``AccessControllerEvent`` JSON from face terminals (part name ``AccessControllerEvent`` or
  ``event_log``) + ``Picture``: major 5 / sub 9 is a heartbeat; otherwise ``face`` when there is
  a picture, a ``FaceRect`` or a face sub-type (75, 76), else ``ignored``. ``dedupe_key`` is
  ``device|serialNo|dateTime`` (terminals replay their backlog with the same serialNo).
- ``EventNotificationAlert`` XML, direct or in a part (``MoveDetection.xml``, ``Event_Type``):
  ``videoloss`` + ``inactive`` is the alertStream heartbeat, face types (``faceSnap``,
  ``faceDetection``, ``faceCapture``) are ``face`` events with every image part, anything else
  (``VMD`` motion...) is ``ignored``. XML has no event id: ``dedupe_key`` is None.
- ``{"eventType": "heartBeat"}``: a heartbeat.

``device_id`` is the MAC address (lower case; present on every Hikvision push, heartbeats
included), else the IP address. Rects are reported as 0-1 fractions whether the device sent 0-1
or 0-1000. A body that is none of these gives []; one with images but no readable event
document gives a ``face`` event with ``no_event_document``.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.push import multipart
from app.push.event import CameraEvent, PushedImage, sha256_hex, sniff_image
from app.push.fields import (
    decode_text,
    load_json,
    looks_like_json,
    looks_like_multipart,
    looks_like_xml,
    normalize_rect,
    parse_iso_time,
    scrub,
    to_bool,
    to_float,
    to_int,
    to_str,
)
from app.push.salvage import guarded, image_from_part

log = logging.getLogger(__name__)

SOURCE = "hikvision"
LIST_FACE_TYPES = frozenset({"alarmresult", "facecapture"})
XML_FACE_TYPES = frozenset({"facesnap", "facedetection", "facecapture", "facesnapmodeling"})
ACS_FACE_SUBTYPES = frozenset({75, 76})
KNOWN_PART_NAMES = frozenset(
    {"alarmresult", "facecapture", "accesscontrollerevent", "event_log", "event_type"}
)
_RECT_TAGS = frozenset({"targetrect", "facerect", "rect", "regioncoordinates"})
_SIMPLE_TAG_RE = re.compile(r"<([A-Za-z_][\w.\-]*)(?:\s[^>]*)?>([^<]*)</\1>")
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>")


@dataclass(frozen=True)
class _Doc:
    syntax: str  # "json" or "xml"
    fields: dict[str, Any]
    rects: tuple[dict[str, float], ...] = ()

    @property
    def event_type(self) -> str:
        declared = to_str(self.fields.get("eventType"))
        if declared:
            return declared
        for key in ("alarmResult", "faceCapture", "AccessControllerEvent"):
            if key in self.fields:
                return key
        return ""


@dataclass(frozen=True)
class _Ref:
    pid: str | None
    content_id: str | None
    role: str


def parse(body: bytes, content_type: str | None) -> list[CameraEvent]:
    """Parse a Hikvision push body into at most one event; [] when it is not Hikvision-shaped."""
    return guarded(SOURCE, _parse, body, content_type)


def _parse(body: bytes, content_type: str | None) -> list[CameraEvent]:
    problems: list[str] = []
    docs: list[_Doc] = []
    image_parts: list[multipart.Part] = []
    known_parts: list[str] = []
    if looks_like_json(body) or looks_like_xml(body):
        doc = _document(body)
        if doc is not None:
            docs.append(doc)
    elif looks_like_multipart(body, content_type):
        mp = multipart.split(body, content_type)
        problems.extend(mp.problems)
        for part in mp.parts:
            if sniff_image(part.data) is not None:
                image_parts.append(part)
                continue
            doc = _document(part.data)
            if doc is not None:
                docs.append(doc)
                continue
            known = (part.name or "").lower() in KNOWN_PART_NAMES
            if known:
                known_parts.append(part.name or "")
            if known or _declares_document(part):
                problems.append(f"unreadable_document:{part.name or '?'}")
    if not docs:
        if not image_parts and not known_parts:
            return []
        images, image_problems = _collect(image_parts)
        problems += ["no_event_document", *image_problems] + ([] if images else ["no_images"])
        return [_event("face", None, None, None, body, {"problems": problems}, images)]
    primary = _primary(docs)
    others = [d.event_type for d in docs if d is not primary]
    return [_from_document(primary, image_parts, body, problems, others)]


def _document(data: bytes) -> _Doc | None:
    if looks_like_json(data):
        value = load_json(data)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, dict)), None)
        if isinstance(value, dict):
            inner = value.get("EventNotificationAlert")
            return _Doc("json", inner if isinstance(inner, dict) else value)
        return None
    if looks_like_xml(data):
        return _xml_document(decode_text(data))
    return None


def _declares_document(part: multipart.Part) -> bool:
    declared = (part.content_type or "").lower()
    return "json" in declared or "xml" in declared


def _xml_document(text: str) -> _Doc | None:
    """Flatten an EventNotificationAlert; a regex over simple elements when it is not valid XML."""
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        return None  # devices never send DTDs; refuse entity tricks outright
    try:
        root = ET.fromstring(_XML_DECL_RE.sub("", text, count=1))
    except ET.ParseError:
        fields: dict[str, Any] = {}
        for tag, value in _SIMPLE_TAG_RE.findall(text):
            fields.setdefault(tag, value.strip())
        return _Doc("xml", fields) if "eventType" in fields else None
    fields = {}
    for child in root:
        if len(child) == 0:
            fields.setdefault(_local(child.tag), (child.text or "").strip())
    rects: list[dict[str, float]] = []
    for element in root.iter():
        if _local(element.tag).lower() in _RECT_TAGS and len(element):
            rect = normalize_rect({_local(c.tag): (c.text or "").strip() for c in element})
            if rect is not None:
                rects.append(rect)
    return _Doc("xml", fields, tuple(rects))


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _primary(docs: list[_Doc]) -> _Doc:
    """Prefer a face JSON document, then a heartbeat, then an XML face event, then the first."""

    def rank(doc: _Doc) -> int:
        kind = doc.event_type.lower()
        if doc.syntax == "json" and kind in LIST_FACE_TYPES | {"accesscontrollerevent"}:
            return 0
        if doc.syntax == "json" and kind == "heartbeat":
            return 1
        if kind in XML_FACE_TYPES:
            return 2
        return 3

    return min(docs, key=rank)


def _from_document(
    doc: _Doc,
    image_parts: list[multipart.Part],
    body: bytes,
    problems: list[str],
    others: list[str],
) -> CameraEvent:
    fields = doc.fields
    event_type = doc.event_type
    lowered = event_type.lower()
    device_id = (to_str(fields.get("macAddress")) or "").lower() or to_str(fields.get("ipAddress"))
    event_time = parse_iso_time(fields.get("dateTime"))
    metadata = _common_metadata(doc)
    if others:
        metadata["other_documents"] = others
    if lowered == "heartbeat":
        return _event("heartbeat", device_id, event_time, None, body, metadata, ())
    if doc.syntax == "json" and lowered in LIST_FACE_TYPES:
        return _list_face_event(doc, image_parts, body, problems, metadata, device_id, event_time)
    if lowered == "accesscontrollerevent":
        return _acs_event(doc, image_parts, body, problems, metadata, device_id, event_time)
    state = (to_str(fields.get("eventState")) or "").lower()
    if lowered == "videoloss" and state == "inactive":
        return _event("heartbeat", device_id, event_time, None, body, metadata, ())
    if lowered in XML_FACE_TYPES:
        if doc.rects:
            metadata["rects"] = list(doc.rects)
        images, image_problems = _collect(image_parts)
        problems = problems + image_problems + ([] if images else ["no_images"])
        if problems:
            metadata["problems"] = problems
        return _event("face", device_id, event_time, None, body, metadata, images)
    return _event("ignored", device_id, event_time, None, body, metadata, ())


def _common_metadata(doc: _Doc) -> dict[str, Any]:
    fields = doc.fields
    metadata: dict[str, Any] = {
        "format": "EventNotificationAlert" if doc.syntax == "xml" else doc.event_type,
        "event_type": doc.event_type or None,
        "event_state": to_str(fields.get("eventState")),
        "event_description": to_str(fields.get("eventDescription")),
        "ip_address": to_str(fields.get("ipAddress")),
        "mac_address": (to_str(fields.get("macAddress")) or "").lower() or None,
        "channel_id": to_int(fields.get("channelID")),
        "channel_name": to_str(fields.get("channelName")),
        "date_time": to_str(fields.get("dateTime")),
        "active_post_count": to_int(fields.get("activePostCount")),
    }
    retransmission = to_bool(fields.get("isDataRetransmission"))
    if retransmission is not None:
        metadata["retransmission"] = retransmission
    return metadata


def _list_face_event(
    doc: _Doc,
    image_parts: list[multipart.Part],
    body: bytes,
    problems: list[str],
    metadata: dict[str, Any],
    device_id: str | None,
    event_time: datetime | None,
) -> CameraEvent:
    fields = doc.fields
    results = fields.get(doc.event_type)
    if results is None:
        results = next((v for k, v in fields.items() if k.lower() == doc.event_type.lower()), None)
    if isinstance(results, dict):
        results = [results]
    if not isinstance(results, list):
        results = []
        problems.append("no_results")
    refs: list[_Ref] = []
    faces: list[dict[str, Any]] = []
    device_uuid = None
    for result in results:
        if not isinstance(result, dict):
            continue
        target = result.get("targetAttrs") if isinstance(result.get("targetAttrs"), dict) else {}
        device_uuid = device_uuid or to_str(target.get("deviceId"))
        event_time = event_time or parse_iso_time(target.get("faceTime"))
        metadata.setdefault("face_time", to_str(target.get("faceTime")))
        metadata.setdefault("device_name", to_str(target.get("deviceName")))
        refs.append(_Ref(_pid(target), to_str(target.get("contentID")), "background"))
        for face in result.get("faces") or []:
            if not isinstance(face, dict):
                continue
            refs.append(_Ref(_pid(face), to_str(face.get("contentID")), "face"))
            faces.append(_face_metadata(face, result))
            for library_pid, content_id in _library_refs(face):
                refs.append(_Ref(library_pid, content_id, "library"))
    metadata["device_uuid"] = device_uuid
    metadata["faces"] = faces
    pid = next((r.pid for r in refs if r.role == "background" and r.pid), None)
    pid = pid or next((r.pid for r in refs if r.role == "face" and r.pid), None)
    roles, link_problems = _link(refs, image_parts)
    images, image_problems = _collect(image_parts, roles)
    problems = problems + link_problems + image_problems
    if problems:
        metadata["problems"] = problems
    return _event("face", device_id or device_uuid, event_time, pid, body, metadata, images)


def _pid(obj: dict[str, Any]) -> str | None:
    # 'pld' is a typo seen in a published Hikvision capture.
    return to_str(obj.get("pId")) or to_str(obj.get("pid")) or to_str(obj.get("pld"))


def _library_refs(face: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    refs = []
    for identify in _dicts(face.get("identify")):
        for candidate in _dicts(identify.get("candidate")):
            for human in _dicts(candidate.get("human_data")):
                pid = _pid(human)
                if pid:
                    refs.append((pid, to_str(human.get("contentID"))))
    return refs


def _dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _face_metadata(face: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    score = face.get("score")
    if isinstance(score, dict):
        score = score.get("value")
    if score is None:
        score = face.get("faceScore")
    candidates = []
    similarity = None
    for identify in _dicts(face.get("identify")):
        similarity = to_float(identify.get("maxsimilarity"))
        for candidate in _dicts(identify.get("candidate")):
            reserve = candidate.get("reserve_field")
            reserve = reserve if isinstance(reserve, dict) else {}
            candidates.append(
                {
                    "human_id": to_str(candidate.get("human_id")),
                    "name": to_str(reserve.get("name")),
                    "similarity": to_float(candidate.get("similarity")),
                    "list_type": to_str(candidate.get("listType")),
                    "library": to_str(candidate.get("FDLibName")),
                }
            )
    return {
        "pid": _pid(face),
        "face_id": to_int(face.get("faceId")),
        "rect": normalize_rect(face.get("faceRect")),
        "picture_rect": normalize_rect(
            face.get("FacePictureRect") or face.get("recommendFaceRect")
        ),
        "score": _number(score),
        "max_similarity": similarity,
        "candidates": candidates,
        "error_code": to_int(result.get("errorCode")),
        "error_msg": to_str(result.get("errorMsg")),
        "stay_duration_ms": to_int(face.get("stayDuration")),
    }


def _number(value: Any) -> int | float | None:
    number = to_float(value)
    if number is None:
        return None
    return int(number) if number.is_integer() else number


def _acs_event(
    doc: _Doc,
    image_parts: list[multipart.Part],
    body: bytes,
    problems: list[str],
    metadata: dict[str, Any],
    device_id: str | None,
    event_time: datetime | None,
) -> CameraEvent:
    acs = doc.fields.get("AccessControllerEvent")
    acs = acs if isinstance(acs, dict) else {}
    major, sub = to_int(acs.get("majorEventType")), to_int(acs.get("subEventType"))
    serial = to_int(acs.get("serialNo"))
    current = to_bool(acs.get("currentEvent", doc.fields.get("currentEvent")))
    metadata.update(
        {
            "major_event_type": major,
            "sub_event_type": sub,
            "serial_no": serial,
            "device_name": to_str(acs.get("deviceName")),
            "employee_no": to_str(acs.get("employeeNoString")) or to_str(acs.get("employeeNo")),
            "person_name": to_str(acs.get("name")),
            "user_type": to_str(acs.get("userType")),
            "verify_mode": to_str(acs.get("currentVerifyMode")),
            "mask": to_str(acs.get("mask")),
            "face_rect": normalize_rect(acs.get("FaceRect")),
        }
    )
    if current is not None:
        metadata["current_event"] = current
    if major == 5 and sub == 9:
        return _event("heartbeat", device_id, event_time, None, body, metadata, ())
    images, image_problems = _collect(image_parts)
    problems = problems + image_problems
    is_face = bool(images) or sub in ACS_FACE_SUBTYPES or metadata["face_rect"] is not None
    if is_face and not images:
        problems.append("no_images")
    if problems:
        metadata["problems"] = problems
    key = None
    if serial is not None:
        key = f"{device_id or '-'}|{serial}|{to_str(doc.fields.get('dateTime')) or '-'}"
    if not is_face:
        return _event("ignored", device_id, event_time, key, body, metadata, ())
    return _event("face", device_id, event_time, key, body, metadata, images)


def _link(refs: list[_Ref], parts: list[multipart.Part]) -> tuple[dict[int, str], list[str]]:
    """Map image part index -> role by pId, then contentID, then size; report missing ones."""
    roles: dict[int, str] = {}
    unmatched: list[_Ref] = []
    for ref in refs:
        found = _find_part(
            parts, roles, lambda p, ref=ref: ref.pid is not None and ref.pid in _ids(p)
        )
        if found is None:
            unmatched.append(ref)
        else:
            roles[found] = ref.role
    still: list[_Ref] = []
    for ref in unmatched:
        wanted = (ref.content_id or "").lower()
        found = _find_part(
            parts, roles, lambda p, w=wanted: bool(w) and w in {i.lower() for i in _ids(p)}
        )
        if found is None:
            still.append(ref)
        else:
            roles[found] = ref.role
    left = sorted(
        (i for i in range(len(parts)) if i not in roles), key=lambda i: len(parts[i].data)
    )
    background = [r for r in still if r.role == "background"]
    small = [r for r in still if r.role == "face"] + [r for r in still if r.role == "library"]
    if background and left and (len(left) > len(small) or not small):
        roles[left.pop()] = "background"
        background = background[1:]
    missing = list(background)
    for position, ref in enumerate(small):
        if position < len(left):
            roles[left[position]] = ref.role
        else:
            missing.append(ref)
    problems = []
    if parts:
        problems = [f"missing_image:{r.content_id or r.role}" for r in missing if r.pid]
    elif any(r.pid for r in refs):
        problems = ["no_images"]
    return roles, problems


def _find_part(parts: list[multipart.Part], taken: dict[int, str], match: Any) -> int | None:
    for index, part in enumerate(parts):
        if index not in taken and match(part):
            return index
    return None


def _ids(part: multipart.Part) -> set[str]:
    return {v for v in (part.content_id, part.filename, part.name) if v}


def _role_from_name(part: multipart.Part) -> str:
    label = " ".join(v for v in (part.name, part.filename, part.content_id) if v).lower()
    if "lib" in label:
        return "library"
    if "background" in label or "bkg" in label or "scene" in label:
        return "background"
    if "face" in label:
        return "face"
    return "picture"


def _collect(
    parts: list[multipart.Part], roles: Mapping[int, str] | None = None
) -> tuple[tuple[PushedImage, ...], list[str]]:
    """Every image part with its role: from ``roles`` (linked from the document) where given,
    else guessed from the part's names."""
    images: list[PushedImage] = []
    problems: list[str] = []
    for index, part in enumerate(parts):
        role = (roles or {}).get(index) or _role_from_name(part)
        image, problem = image_from_part(part, role)
        if problem:
            problems.append(problem)
        if image is not None:
            images.append(image)
    return tuple(images), problems


def _event(
    kind: str,
    device_id: str | None,
    event_time: datetime | None,
    dedupe_key: str | None,
    body: bytes,
    metadata: dict[str, Any],
    images: tuple[PushedImage, ...],
) -> CameraEvent:
    return CameraEvent(
        source=SOURCE,
        kind=kind,
        device_id=device_id,
        event_time=event_time,
        dedupe_key=dedupe_key,
        payload_hash=sha256_hex(body),
        metadata=scrub({k: v for k, v in metadata.items() if v is not None}),
        images=images,
    )
