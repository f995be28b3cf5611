"""What every push parser returns: a ``CameraEvent`` carrying zero or more ``PushedImage``.

Conventions:
- ``source`` is the push style: ``eventinfo``, ``hikvision``, ``sophon_http`` or ``sophon_ws``.
- ``kind`` is ``face`` (has, or should have had, face images), ``heartbeat`` (keep-alive: counted,
  never stored) or ``ignored`` (a well-formed event that is not about faces, e.g. motion).
  Heartbeats and ignored events never carry images.
- ``event_time`` is the device's own clock as an aware datetime, or None when the device sent
  none, sent no UTC offset, or sent something outside ``sane_time``'s bounds; the raw text is
  then kept in ``metadata``.
- ``dedupe_key`` identifies the event across re-deliveries (Hikvision ``pId``/``serialNo``,
  Sophon ``event_id`` or identity+timestamp+device); None when the format has no such field,
  in which case ``payload_hash`` (sha256 of the raw body) is the only duplicate detector.
- ``metadata`` is JSON-safe (str/int/float/bool/None, lists, dicts with str keys) and never
  holds image bytes or base64. ``metadata["problems"]`` lists what was salvaged or missing
  (e.g. ``truncated_image:faceImage``, ``no_images``); absent when the input was clean.
- Image ``content_type`` comes from the bytes' magic number (``sniff_image``), never from the
  device's headers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

SOURCES: Final = ("eventinfo", "hikvision", "sophon_http", "sophon_ws")
KINDS: Final = ("face", "heartbeat", "ignored")
ROLES: Final = ("face", "snapshot", "background", "library", "picture", "infrared")

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
GIF: Final = "image/gif"
WEBP: Final = "image/webp"

# Device clocks are often factory-set or wrong; anything outside these bounds is not trusted.
EARLIEST_EVENT_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_AHEAD: Final = timedelta(days=1)


def sniff_image(data: bytes) -> str | None:
    """Return the image MIME type from the leading magic bytes, or None when not an image."""
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def image_complete(data: bytes) -> bool:
    """Return True when the bytes end like a whole image (JPEG EOI, PNG IEND, GIF trailer).

    Used only to decide whether an image at the cut end of a truncated body is usable; WebP
    is judged by its RIFF size field.
    """
    kind = sniff_image(data)
    tail = data.rstrip(b"\r\n\t ")
    if kind == JPEG:
        return tail.endswith(b"\xff\xd9")
    if kind == PNG:
        return b"IEND" in tail[-12:]
    if kind == GIF:
        return tail.endswith(b";")
    if kind == WEBP:
        return len(data) >= int.from_bytes(data[4:8], "little") + 8
    return False


def iso_utc(epoch: float | None) -> str | None:
    """Return a Unix time as ISO 8601 UTC with milliseconds (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def sha256_hex(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sane_time(value: datetime | None, now: datetime | None = None) -> datetime | None:
    """Return ``value`` when it is aware and within [2000-01-01, now + 1 day], else None."""
    if value is None or value.tzinfo is None:
        return None
    now = now or datetime.now(UTC)
    if value < EARLIEST_EVENT_TIME or value > now + MAX_CLOCK_AHEAD:
        return None
    return value


@dataclass(frozen=True)
class PushedImage:
    """One image from a push: its role in the event, the bytes and the sniffed MIME type."""

    role: str
    data: bytes = field(repr=False)
    content_type: str
    name: str = ""

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, kw_only=True)
class CameraEvent:
    """One event from one device, as parsed; see the module docstring for the conventions."""

    source: str
    kind: str
    device_id: str | None
    event_time: datetime | None
    dedupe_key: str | None
    payload_hash: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    images: tuple[PushedImage, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("problems", ()))
