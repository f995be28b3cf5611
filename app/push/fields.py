"""Tolerant field coercion shared by the push parsers: text, JSON, numbers, times, base64.

Devices send numbers as strings, times with odd offsets, text in GBK despite ``charset=UTF-8``
and base64 with or without a ``data:`` prefix. Every helper here returns None (or a problem
string) instead of raising.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from app.push.event import sane_time, sniff_image

# Keys whose values are biometric templates or image data: never copied into metadata.
BLOB_KEYS: Final = frozenset(
    {
        "modeldata",
        "feature",
        "feature_base64_str",
        "reg_pic",
        "spot_pic",
        "ir_pic",
        "recognize_face",
        "register_image",
        "reg_image",
        "spot_image",
        "ir_image",
        "recognize_face_image",
    }
)
MAX_META_STRING: Final = 512
MAX_META_DEPTH: Final = 8

_ISO_RE = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|z|[+\- ]?\s*\d{2}(?::?\d{2})?)?\s*$"
)
_DATA_URL_RE = re.compile(r"^\s*data:[^,;]*(?:;[^,;]*)*?(;base64)?,", re.IGNORECASE)


def decode_text(data: bytes) -> str:
    """Decode as UTF-8 (BOM dropped), then GB18030 (a GBK superset), then UTF-8 with U+FFFD."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def load_json(data: bytes | str) -> Any | None:
    """Parse the first JSON value in ``data`` (trailing garbage ignored); None when invalid."""
    text = decode_text(data) if isinstance(data, bytes) else data
    text = text.lstrip("\ufeff \t\r\n\x00")
    try:
        value, _ = json.JSONDecoder(strict=False).raw_decode(text)
    except ValueError:
        return None
    return value


def to_str(value: Any) -> str | None:
    """Return a stripped non-empty string for str/int/float input, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def to_int(value: Any) -> int | None:
    """Return an int from an int, an integral float or a numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = to_float(text)
            return int(number) if number is not None and number.is_integer() else None
    return None


def to_float(value: Any) -> float | None:
    """Return a finite float from a number or numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if number == number and abs(number) != float("inf") else None


def to_bool(value: Any) -> bool | None:
    """Return a bool from a bool, 0/1 or the strings true/false/yes/no; else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
    return None


def parse_iso_time(text: Any) -> datetime | None:
    """Parse an ISO-8601-ish device time into an aware datetime, sanity-bounded.

    Accepts ``2022-09-07T10:20:30+0800``, ``+08:00``, ``Z``, a space where a url-decoded ``+``
    was (``10:20:30 0800``), fractional seconds and a space instead of ``T``. A time without a
    UTC offset returns None: guessing the device's zone would silently shift events.
    """
    if not isinstance(text, str):
        return None
    match = _ISO_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, frac, offset = match.groups()
    if offset is None:
        return None
    if offset in ("Z", "z"):
        tz = UTC
    else:
        sign = -1 if offset.lstrip().startswith("-") else 1
        digits = re.sub(r"\D", "", offset)
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 14 or minutes > 59:
            return None
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        value = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((frac or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None
    return sane_time(value)


def epoch_time(value: Any) -> datetime | None:
    """Turn a Unix timestamp in milliseconds (or seconds, when small) into an aware UTC time."""
    number = to_float(value)
    if number is None or number <= 0:
        return None
    if number > 1e11:  # milliseconds: 1e11 s would be the year 5138
        number /= 1000.0
    try:
        return sane_time(datetime.fromtimestamp(number, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def normalize_rect(rect: Any) -> dict[str, float] | None:
    """Return ``{x, y, width, height}`` as fractions of the frame from a 0-1 or 0-1000 rect."""
    if not isinstance(rect, dict):
        return None
    lowered = {str(k).lower(): v for k, v in rect.items()}
    values = {k: to_float(lowered.get(k)) for k in ("x", "y", "width", "height")}
    if any(v is None for v in values.values()):
        return None
    numbers = {k: float(v) for k, v in values.items() if v is not None}
    scale = 1000.0 if any(v > 1.0 for v in numbers.values()) else 1.0
    return {k: round(v / scale, 6) for k, v in numbers.items()}


def decode_base64_image(value: Any) -> tuple[bytes | None, str | None]:
    """Decode a base64 image string, with or without a ``data:image/...;base64,`` prefix.

    Returns (bytes, None) for a real image, (None, None) for an empty or absent value (the
    device was told not to upload it) and (None, problem) when it is not base64 or decodes to
    something that is not an image.
    """
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, "not_a_string"
    text = value.strip()
    match = _DATA_URL_RE.match(text)
    if match:
        text = text[match.end() :]
    if not text:
        return None, None
    # A '+' that went through form url-decoding arrives as a space; newlines are MIME wrapping.
    text = re.sub(r"[\r\n\t]", "", text).replace(" ", "+")
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None, "bad_base64"
    if sniff_image(data) is None:
        return None, "not_an_image"
    return data, None


def scrub(value: Any, depth: int = 0) -> Any:
    """Return a JSON-safe copy of a parsed document without blobs, long strings or deep nests."""
    if depth > MAX_META_DEPTH:
        return "<nested too deep>"
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        if len(value) > MAX_META_STRING:
            return f"<{len(value)} chars omitted>"
        return value
    if isinstance(value, dict):
        return {
            str(k): scrub(v, depth + 1) for k, v in value.items() if str(k).lower() not in BLOB_KEYS
        }
    if isinstance(value, (list, tuple)):
        return [scrub(v, depth + 1) for v in value[:256]]
    return str(value)[:MAX_META_STRING]


def media_type(content_type: str | None) -> str:
    """Return the lower-case ``type/subtype`` of a Content-Type header ('' when absent)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def looks_like_json(body: bytes) -> bool:
    """Return True when the body's first significant byte opens a JSON object or array."""
    return body.lstrip(b"\xef\xbb\xbf \t\r\n\x00")[:1] in (b"{", b"[")


def looks_like_xml(body: bytes) -> bool:
    """Return True when the body's first significant byte opens an XML element."""
    return body.lstrip(b"\xef\xbb\xbf \t\r\n\x00")[:1] == b"<"


def looks_like_multipart(body: bytes, content_type: str | None) -> bool:
    """Return True for a multipart Content-Type, or a body that starts with a ``--`` line."""
    if media_type(content_type).startswith("multipart/"):
        return True
    return body.lstrip(b"\r\n \t")[:2] == b"--"
