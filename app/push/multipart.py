"""A tolerant, binary-safe multipart splitter for bodies that cameras actually send.

Tornado's own parser answers 400 (or drops the body) on the shapes listed in PROTOCOLS.md, and a
device that gets a 400 re-sends forever. ``split`` never raises and never decodes part bodies:

- the delimiter is CRLF or bare LF, then ``--boundary``, then ``--`` (close) or optional
  blanks and a line end; the same bytes anywhere else (inside a JPEG, after other text on the
  line, or followed by more characters) are data;
- the boundary comes from the Content-Type (quoted or not, with other parameters); a value
  declared with its leading ``--`` is accepted; when none matches the body, the first body line
  that starts with ``--`` is taken as the delimiter;
- parts without a name or filename are kept; empty parts from duplicated delimiter lines are
  skipped;
- a part's own ``Content-Length`` is used only when it lands exactly on a real delimiter (it
  then wins over a fake delimiter inside the data) or trims a final unterminated part;
- a body that stops before the closing delimiter keeps its complete parts; the last one is
  flagged ``truncated`` (the caller decides, e.g. by checking the JPEG end marker); a part cut
  inside its headers is dropped;
- header bytes are decoded as UTF-8, then GB18030/GBK, then UTF-8 with replacement.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from app.push.fields import decode_text, to_int

_BOUNDARY_RE = re.compile(r"""boundary\s*=\s*(?:"([^"]*)"|'([^']*)'|([^;,\s]+))""", re.IGNORECASE)
_PARAM_RE = re.compile(r"""(?:^|;)\s*([\w*.\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)""")
_HEADER_NAME_RE = re.compile(r"^[!#-'*+\-.0-9A-Z^_`a-z|~]+$")


@dataclass(frozen=True)
class Part:
    """One body part: lower-case header names, the parsed disposition and the raw data."""

    headers: Mapping[str, str]
    data: bytes = field(repr=False)
    name: str | None = None
    filename: str | None = None
    truncated: bool = False

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def content_id(self) -> str | None:
        """The Content-ID header without the angle brackets some devices add."""
        value = (self.headers.get("content-id") or "").strip().strip("<>").strip()
        return value or None

    @property
    def declared_length(self) -> int | None:
        return to_int(self.headers.get("content-length"))

    def text(self) -> str:
        """Return the data decoded as text (UTF-8, then GBK, then with replacement)."""
        return decode_text(self.data)


@dataclass(frozen=True)
class Multipart:
    """The parts found, the delimiter used, and what was odd about the body."""

    boundary: str | None
    parts: tuple[Part, ...]
    complete: bool
    problems: tuple[str, ...] = ()

    def named(self, name: str) -> list[Part]:
        """Return the parts whose name equals ``name`` (case-insensitive)."""
        wanted = name.lower()
        return [p for p in self.parts if (p.name or "").lower() == wanted]


@dataclass(frozen=True)
class _Delimiter:
    start: int  # index of the first '-' of the delimiter
    end: int  # index just past the delimiter line's line break
    close: bool


def boundary_param(content_type: str | None) -> str | None:
    """Return the ``boundary`` parameter of a Content-Type header, unquoted, or None."""
    if not content_type:
        return None
    match = _BOUNDARY_RE.search(content_type)
    if not match:
        return None
    value = next(g for g in match.groups() if g is not None)
    return value.strip() or None


def split(body: bytes, content_type: str | None = None) -> Multipart:
    """Split a multipart body into parts; see the module docstring for what is tolerated."""
    problems: list[str] = []
    delimiter = _choose_delimiter(body, boundary_param(content_type), problems)
    if delimiter is None:
        return Multipart(None, (), False, ("no_boundary",))
    delims = list(_iter_delimiters(body, delimiter))
    parts: list[Part] = []
    complete = False
    index = 0
    while index < len(delims):
        current = delims[index]
        if current.close:
            complete = True
            break
        index, part = _read_part(body, delims, index, problems)
        if part is not None:
            parts.append(part)
    if not complete:
        problems.append("no_closing_boundary")
    if not parts:
        problems.append("no_parts")
    boundary = decode_text(delimiter[2:]) if delimiter.startswith(b"--") else decode_text(delimiter)
    return Multipart(boundary, tuple(parts), complete, tuple(problems))


def _choose_delimiter(body: bytes, declared: str | None, problems: list[str]) -> bytes | None:
    if declared:
        raw = declared.encode("utf-8", errors="replace")
        if _first(body, b"--" + raw) is not None:
            return b"--" + raw
        if raw.startswith(b"--") and _first(body, raw) is not None:
            problems.append("boundary_declared_with_dashes")
            return raw
        problems.append("declared_boundary_not_found")
    else:
        problems.append("boundary_missing")
    start = len(body) - len(body.lstrip(b"\r\n\t "))
    newline = body.find(b"\n", start)
    line = body[start : len(body) if newline < 0 else newline].strip()
    if line.startswith(b"--") and len(line) > 2:
        problems.append("boundary_from_body")
        return line
    return None


def _first(body: bytes, delimiter: bytes) -> _Delimiter | None:
    return next(_iter_delimiters(body, delimiter), None)


def _iter_delimiters(body: bytes, delimiter: bytes) -> Iterator[_Delimiter]:
    n = len(body)
    first_significant = n - len(body.lstrip(b"\r\n\t "))
    pos = 0
    while True:
        i = body.find(delimiter, pos)
        if i < 0:
            return
        pos = i + 1
        if i != first_significant and body[i - 1 : i] != b"\n":
            continue  # not at the start of a line
        j = i + len(delimiter)
        if body.startswith(b"--", j):
            yield _Delimiter(i, _line_end(body, j + 2, strict=False), True)
            return
        end = _line_end(body, j, strict=True)
        if end < 0 and j < n:
            continue  # '--boundaryX...': the boundary is a prefix of other text
        yield _Delimiter(i, n if end < 0 else end, False)


def _line_end(body: bytes, k: int, *, strict: bool) -> int:
    """Return the index past the line break at ``k`` (after blanks); -1 when other bytes follow."""
    n = len(body)
    while k < n and body[k] in b" \t":
        k += 1
    if k >= n:
        return n
    if body.startswith(b"\r\n", k):
        return k + 2
    if body[k] in b"\n":
        return k + 1
    if body[k] in b"\r" and k + 1 == n:
        return n
    if strict:
        return -1
    newline = body.find(b"\n", k)
    return n if newline < 0 else newline + 1


def _strip_break_before(body: bytes, start: int, end: int) -> int:
    """Return ``end`` moved back over the CRLF or LF that belongs to the next delimiter."""
    if end - 2 >= start and body[end - 2 : end] == b"\r\n":
        return end - 2
    if end - 1 >= start and body[end - 1 : end] == b"\n":
        return end - 1
    return end


def _read_part(
    body: bytes, delims: list[_Delimiter], index: int, problems: list[str]
) -> tuple[int, Part | None]:
    """Read the part after ``delims[index]``; return the next delimiter index and the part."""
    start = delims[index].end
    following = delims[index + 1] if index + 1 < len(delims) else None
    stop = following.start if following else len(body)
    headers, body_start = _split_headers(body, start, stop)
    next_index = index + 1
    if headers is None:
        if following is None:
            problems.append("truncated_headers")
            return next_index, None
        headers, body_start = {}, start
    declared = to_int(headers.get("content-length"))
    truncated = following is None
    if following is not None:
        end = _strip_break_before(body, body_start, stop)
        if declared is not None and declared != end - body_start:
            jump = _delimiter_after(body, delims, index + 1, body_start + declared)
            if jump is not None:
                end, next_index = body_start + declared, jump
    else:
        end = _end_of_unterminated(body, body_start, delims[index])
        if declared is not None and end - body_start >= declared:
            end, truncated = body_start + declared, False
    data = body[body_start:end]
    if not headers and not data.strip(b"\r\n\t "):
        return next_index, None  # an empty part between duplicated delimiter lines
    name, filename = _disposition(headers.get("content-disposition", ""))
    if truncated:
        problems.append(f"truncated_part:{name or filename or '?'}")
    return next_index, Part(headers, data, name, filename, truncated)


def _delimiter_after(body: bytes, delims: list[_Delimiter], first: int, end: int) -> int | None:
    """Return the index of the delimiter that directly follows ``end`` (after a line break)."""
    for k in range(first, len(delims)):
        start = delims[k].start
        if start in (end, end + 1, end + 2) and body[end:start] in (b"", b"\n", b"\r\n"):
            return k
        if start > end + 2:
            return None
    return None


def _end_of_unterminated(body: bytes, start: int, opening: _Delimiter) -> int:
    """Return where the data of a final part without closing delimiter most likely ends."""
    end = len(body)
    last_break = body.rfind(b"\n", start, end)
    if last_break >= 0:
        tail = body[last_break + 1 : end].rstrip(b"\r")
        delimiter = body[opening.start : opening.end].rstrip(b"\r\n\t ")
        if tail == b"" or delimiter.startswith(tail) or tail.startswith(delimiter):
            end = last_break
            if end > start and body[end - 1 : end] == b"\r":
                end -= 1
    return max(end, start)


def _split_headers(body: bytes, start: int, stop: int) -> tuple[dict[str, str] | None, int]:
    """Parse the header block at ``start``; return (headers, data start) or (None, start)."""
    if body.startswith(b"\r\n", start):
        return {}, start + 2
    if body.startswith(b"\n", start):
        return {}, start + 1
    candidates = [(body.find(sep, start, stop), len(sep)) for sep in (b"\r\n\r\n", b"\n\n")]
    found = [(pos, size) for pos, size in candidates if pos >= 0]
    if not found:
        block = body[start:stop]
        headers = _parse_header_lines(block)
        if headers is not None and stop < len(body):
            return headers, stop  # headers only, no data
        return None, start
    pos, size = min(found)
    headers = _parse_header_lines(body[start:pos])
    if headers is None:
        return None, start
    return headers, pos + size


def _parse_header_lines(block: bytes) -> dict[str, str] | None:
    """Parse ``Name: value`` lines (folded lines joined); None when a line is not a header."""
    headers: dict[str, str] = {}
    last: str | None = None
    for raw_line in decode_text(block).split("\n"):
        line = raw_line.rstrip("\r")
        if not line.strip():
            continue
        if line[0] in " \t" and last is not None:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not _HEADER_NAME_RE.match(name):
            return None
        last = name.lower()
        headers[last] = value.strip()
    return headers


def _disposition(value: str) -> tuple[str | None, str | None]:
    """Return (name, filename) from a Content-Disposition value; RFC 5987 ``filename*`` wins."""
    params: dict[str, str] = {}
    for match in _PARAM_RE.finditer(value):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r'\\(["\\])', r"\1", raw[1:-1])
        else:
            raw = raw.strip('"')
        params[key] = raw
    name = params.get("name") or None
    filename = params.get("filename") or None
    extended = params.get("filename*")
    if extended:
        charset, _, rest = extended.partition("'")
        _, _, encoded = rest.partition("'")
        try:
            filename = unquote(encoded or extended, encoding=charset or "utf-8", errors="replace")
        except LookupError:
            filename = unquote(encoded or extended)
    return name, filename
