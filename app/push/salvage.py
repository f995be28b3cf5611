"""Helpers every parser shares: images out of multipart parts, and the never-raise guard."""

from __future__ import annotations

import logging
from collections.abc import Callable

from app.push import multipart
from app.push.event import CameraEvent, PushedImage, image_complete, sha256_hex, sniff_image
from app.push.fields import looks_like_multipart

log = logging.getLogger(__name__)

Parser = Callable[[bytes, str | None], list[CameraEvent]]


def part_label(part: multipart.Part) -> str:
    """Return a short label for a part in problem strings: its name, filename or '?'."""
    return part.name or part.filename or part.content_id or "?"


def image_from_part(part: multipart.Part, role: str) -> tuple[PushedImage | None, str | None]:
    """Return the part as a ``PushedImage`` (type from magic bytes), or (None, problem).

    A part cut off by a truncated body is kept only when its bytes end like a whole image.
    """
    content_type = sniff_image(part.data)
    if content_type is None:
        return None, f"not_an_image:{part_label(part)}"
    if part.truncated and not image_complete(part.data):
        return None, f"truncated_image:{part_label(part)}"
    name = part.filename or part.name or part.content_id or ""
    return PushedImage(role=role, data=part.data, content_type=content_type, name=name), None


def guarded(source: str, parse: Parser, body: bytes, content_type: str | None) -> list[CameraEvent]:
    """Run ``parse``; on a parser bug log it and salvage the images of a multipart body."""
    try:
        return parse(body, content_type)
    except Exception:  # a parser bug must not cost the device's event
        log.exception("%s parser failed on a %d-byte body; salvaging images", source, len(body))
        return salvage(source, body, content_type, "parser_error")


def salvage(source: str, body: bytes, content_type: str | None, problem: str) -> list[CameraEvent]:
    """Return one face event holding every complete image part of a multipart body, or []."""
    if not looks_like_multipart(body, content_type):
        return []
    try:
        parts = multipart.split(body, content_type).parts
    except Exception:  # the splitter is written not to raise; this is the last line
        log.exception("multipart split failed during salvage")
        return []
    images = []
    for part in parts:
        image, _ = image_from_part(part, "picture")
        if image is not None:
            images.append(image)
    if not images:
        return []
    return [
        CameraEvent(
            source=source,
            kind="face",
            device_id=None,
            event_time=None,
            dedupe_key=None,
            payload_hash=sha256_hex(body),
            metadata={"problems": [problem]},
            images=tuple(images),
        )
    ]
