"""Parser for the "eventinfo" camera's Face Detection HTTP push (PROTOCOLS.md section A).

Body: ``multipart/form-data`` with a part ``eventinfo`` holding a urlencoded query string
(``usn``, ``productid``, ``isotime``...), face thumbnails ``image_1``, ``image_2``... and a full
frame ``snapshot``. ``isotime`` arrives as ``+0800``, ``%2B0800`` or, once url-decoded from a
raw ``+``, `` 0800``; all three parse to the same aware time.

Result: one ``face`` event, ``device_id`` = ``usn``; images ``face`` (in N order), then
``snapshot``, then any other image part as ``picture``. The format has no event id, so
``dedupe_key`` is ``usn|time|digest of the images`` (a re-sent event carries the same images;
two faces in the same second do not). A body without an ``eventinfo`` part but with images is
kept with ``missing_eventinfo``; a body with neither gives [].
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qsl

from app.push import multipart
from app.push.event import CameraEvent, PushedImage, sha256_hex, sniff_image
from app.push.fields import looks_like_multipart, parse_iso_time, scrub
from app.push.salvage import guarded, image_from_part

SOURCE = "eventinfo"
_FACE_PART_RE = re.compile(r"^image_?(\d+)$", re.IGNORECASE)


def parse(body: bytes, content_type: str | None) -> list[CameraEvent]:
    """Parse an eventinfo push body; [] only when it is not a multipart body at all."""
    return guarded(SOURCE, _parse, body, content_type)


def parse_eventinfo(text: str) -> dict[str, str]:
    """Return the first value of each key of the eventinfo query string (``+`` -> space)."""
    text = text.strip().lstrip("?")
    values: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        values.setdefault(key.strip().lower(), value.strip())
    return values


def _parse(body: bytes, content_type: str | None) -> list[CameraEvent]:
    if not looks_like_multipart(body, content_type):
        return []
    mp = multipart.split(body, content_type)
    problems = list(mp.problems)
    info_parts = mp.named("eventinfo")
    info = parse_eventinfo(info_parts[0].text()) if info_parts else {}
    if not info_parts:
        problems.append("missing_eventinfo")
    faces: list[tuple[int, PushedImage]] = []
    others: list[PushedImage] = []
    for part in mp.parts:
        if info_parts and part is info_parts[0]:
            continue
        name = (part.name or "").strip()
        face_match = _FACE_PART_RE.match(name)
        role = "face" if face_match else "snapshot" if name.lower() == "snapshot" else "picture"
        if role == "picture" and sniff_image(part.data) is None:
            continue  # an unknown text field: not ours to judge
        image, problem = image_from_part(part, role)
        if problem:
            problems.append(problem)
        if image is None:
            continue
        if face_match:
            faces.append((int(face_match.group(1)), image))
        else:
            others.append(image)
    faces.sort(key=lambda item: item[0])
    others.sort(key=lambda image: image.role != "snapshot")
    images = tuple(image for _, image in faces) + tuple(others)
    if not info and not images:
        return []
    if not images:
        problems.append("no_images")
    usn = info.get("usn") or None
    isotime = info.get("isotime")
    event_time = parse_iso_time(isotime)
    if isotime and event_time is None:
        problems.append("bad_isotime")
    metadata: dict[str, Any] = {
        "format": "eventinfo",
        "usn": usn,
        "productid": info.get("productid") or None,
        "isotime": isotime,
        "fields": scrub(
            {k: v for k, v in info.items() if k not in ("usn", "productid", "isotime")}
        ),
    }
    if problems:
        metadata["problems"] = problems
    return [
        CameraEvent(
            source=SOURCE,
            kind="face",
            device_id=usn,
            event_time=event_time,
            dedupe_key=_dedupe_key(usn, event_time.isoformat() if event_time else isotime, images),
            payload_hash=sha256_hex(body),
            metadata=metadata,
            images=images,
        )
    ]


def _dedupe_key(usn: str | None, when: str | None, images: tuple[PushedImage, ...]) -> str | None:
    if not usn or not when:
        return None
    digest = hashlib.sha256()
    for image in images:
        digest.update(hashlib.sha256(image.data).digest())
    return f"{usn}|{when}|{digest.hexdigest()[:16]}"
