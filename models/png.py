"""A fast PNG writer for the report's RGB crops: ``Up`` filter, ISA-L deflate.

The report carries two PNGs per face (the margin crop and the aligned face). Through
``cv2.imencode`` (libpng + zlib level 1, adaptive filters) they were the largest part of the
report's encode time: 39 faces of ``famous-selfie.jpg`` took 26 ms for the margin crops alone.
Here every row gets the ``Up`` filter (a numpy subtraction; about as small as adaptive
filtering on photographs), and the deflate stream comes from ISA-L (``isal``) at level 1,
about 4x faster than zlib for a size within 2% of libpng's (``bench/RESULTS.md``,
"Performance"). Without ``isal`` installed the standard ``zlib`` (level 1) is used. The output
is an ordinary 8-bit RGB PNG that any decoder reads back losslessly.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:  # ISA-L's deflate: same zlib format, several times faster at low levels
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    _deflate = zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2
LEVEL = 1


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode an image as an 8-bit RGB PNG.

    Args:
        rgb: (H, W, 3) uint8, **RGB** channel order (PNG's own, so no conversion).

    Returns:
        The PNG file's bytes.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    height, width = rgb.shape[:2]
    rows = np.ascontiguousarray(rgb).reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", _deflate.compress(filtered.tobytes(), LEVEL)),
            _chunk(b"IEND", b""),
        )
    )
