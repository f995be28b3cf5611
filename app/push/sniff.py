"""Guess which push parser a body belongs to, for the generic ``/push/<token>`` route.

Decided from the body, the Content-Type only telling multipart from the rest:

- multipart with a part named ``eventinfo`` -> ``eventinfo``;
- multipart with a Hikvision part name (``alarmResult``, ``faceCapture``,
  ``AccessControllerEvent``, ``event_log``, ``MoveDetection.xml``, ``Event_Type``...), or a JSON
  part with ``eventType``, or an XML part with ``EventNotificationAlert`` -> ``hikvision``;
- multipart whose field names are Sophon keys (``identity_id``, ``ext_data``...) -> ``sophon_http``;
- a JSON object (or array of objects) with ``eventType``/``ipAddress``+``macAddress`` ->
  ``hikvision``; with a Sophon key -> ``sophon_http``;
- XML with ``EventNotificationAlert`` -> ``hikvision``;
- anything else -> None.
"""

from __future__ import annotations

from typing import Any, Literal

from app.push import hikvision, multipart
from app.push.fields import (
    load_json,
    looks_like_json,
    looks_like_multipart,
    looks_like_xml,
)
from app.push.sophon import EVENT_KEYS as SOPHON_KEYS

Kind = Literal["eventinfo", "hikvision", "sophon_http"]

HIKVISION_PARTS = hikvision.KNOWN_PART_NAMES | {"movedetection.xml", "eventnotificationalert"}


def detect_kind(body: bytes, content_type: str | None) -> Kind | None:
    """Return the parser name for ``body``, or None when it is no known push format."""
    if looks_like_json(body):
        return _json_kind(load_json(body))
    if looks_like_xml(body):
        return "hikvision" if b"EventNotificationAlert" in body[:4096] else None
    if looks_like_multipart(body, content_type):
        return _multipart_kind(multipart.split(body, content_type))
    return None


def _json_kind(value: Any) -> Kind | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, dict)), None)
    if not isinstance(value, dict):
        return None
    if "eventType" in value or ("ipAddress" in value and "macAddress" in value):
        return "hikvision"
    if "EventNotificationAlert" in value:
        return "hikvision"
    if SOPHON_KEYS & set(value):
        return "sophon_http"
    return None


def _multipart_kind(mp: multipart.Multipart) -> Kind | None:
    names = {(p.name or "").lower() for p in mp.parts}
    if "eventinfo" in names:
        return "eventinfo"
    if names & HIKVISION_PARTS:
        return "hikvision"
    for part in mp.parts:
        head = part.data[:4096]
        if looks_like_json(head) and b'"eventType"' in head:
            return "hikvision"
        if looks_like_xml(head) and b"EventNotificationAlert" in head:
            return "hikvision"
    if names & SOPHON_KEYS:
        return "sophon_http"
    return None
