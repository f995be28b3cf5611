"""Load the camera push samples of ``data/cameras/``, optionally with a real face JPEG inside.

``.http`` files are raw HTTP requests: the request line and headers are split off here, the
way a server would. Image placeholders (the 4 bytes ``FF D8 FF D9`` in multipart parts, the
base64 ``/9j/2Q==`` in JSON and form fields) can be replaced by a real JPEG; a part's own
``Content-Length: 4`` in front of a placeholder and the request's ``Content-Length`` are then
fixed to match. ``build`` and ``JPEG`` make small synthetic multipart bodies for edge cases.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

PLACEHOLDER_JPEG = b"\xff\xd8\xff\xd9"
PLACEHOLDER_B64 = b"/9j/2Q=="
FACE_JPEG = Path("faces/deepface/img5.jpg")
_PART_LENGTH_RE = re.compile(rb"(?i)content-length:[ \t]*4(\r?\n\r?\n)(?=\xff\xd8\xff\xd9)")


@dataclass(frozen=True)
class Sample:
    """One sample request: method and target (None for bare bodies), headers, body."""

    name: str
    method: str | None
    target: str | None
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def camera_files(data_dir: Path) -> list[Path]:
    """Return every sample file of ``data/cameras`` (the README excluded), sorted."""
    folder = data_dir / "cameras"
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name != "README.md")


def face_jpeg(data_dir: Path) -> bytes:
    """Return the real face JPEG used in place of the placeholders."""
    return (data_dir / FACE_JPEG).read_bytes()


def substitute(body: bytes, jpeg: bytes) -> bytes:
    """Replace both placeholder forms by ``jpeg``, fixing per-part ``Content-Length: 4``."""
    body = _PART_LENGTH_RE.sub(lambda m: b"Content-Length: %d" % len(jpeg) + m.group(1), body)
    body = body.replace(PLACEHOLDER_JPEG, jpeg)
    return body.replace(PLACEHOLDER_B64, base64.b64encode(jpeg))


def split_http(raw: bytes) -> tuple[str, str, dict[str, str], bytes]:
    """Split a raw HTTP/1.1 request into method, target, lower-case headers and body."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        head, _, body = raw.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers, body


def load(path: Path, jpeg: bytes | None = None) -> Sample:
    """Load one sample; with ``jpeg`` the placeholders are replaced and lengths fixed."""
    raw = path.read_bytes()
    if path.suffix == ".http":
        method, target, headers, body = split_http(raw)
        declared = int(headers.get("content-length", len(body)))
        body = body[:declared]
    else:
        method = target = None
        kind = "application/json" if path.suffix == ".json" else 'application/xml; charset="UTF-8"'
        headers, body = {"content-type": kind}, raw
    if jpeg is not None:
        body = substitute(body, jpeg)
    headers = dict(headers, **{"content-length": str(len(body))})
    return Sample(path.name, method, target, headers, body)


# A tiny JPEG-shaped payload for synthetic bodies: SOI, an APP0 segment, bytes with CR LF and
# '--' lines, EOI.
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\r\n--\r\n\n--x\r\n\x00\xff"
    + bytes(range(256))
    + b"\xff\xd9"
)


def build(
    parts: list[tuple[bytes, bytes]],
    *,
    boundary: bytes = b"MIME_boundary",
    eol: bytes = b"\r\n",
    close: bool = True,
) -> bytes:
    """Build a body from (header block, data) pairs; headers are joined with ``eol``."""
    out = b""
    for headers, data in parts:
        out += b"--" + boundary + eol + headers.replace(b"\r\n", eol) + eol + eol + data + eol
    if close:
        out += b"--" + boundary + b"--" + eol
    return out
