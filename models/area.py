"""MTCNN's image pyramid: every level area-resized from the uint8 image, OpenCV's pixels.

The reference resizes each pyramid level from the whole image with ``cv2.resize`` and
``INTER_AREA``. At a fractional scale OpenCV sums every source row with a weight table, one
tap at a time in scalar code, and reads the whole image again for each level: the astronaut's
ten levels take 10 ms of one core. ``models._area`` (C, ``models/_area.c``) does the same
float operations in the same order on transposed bands of rows, every level from one pass
over the image, in vector registers: the same pixels bit for bit, in 1.7 ms (2-core AVX-512
VM, one thread, medians of 30; ``tests/models/test_area.py`` compares it with OpenCV on every
level of thousands of sizes).

RNet's and ONet's candidate crops (``area_crops``) are the same operation on the float crop
of each box, black outside the image, and not rounded: famous-selfie's 1317 RNet crops
took 36.8 ms as one ``cv2.resize`` each; the compiled module cuts and resizes the whole batch
in one call (132 astronaut-sized crops: 3.6 -> 1.6 ms, one thread).

Sizes OpenCV resizes another way (the same size, whole-number scales on both axes: its
integer "area fast" path, and enlargements) and, without the compiled module, every size, are
left to OpenCV.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

try:
    from models import _area
except ImportError:  # pragma: no cover - pip builds it with the package
    _area = None

log = logging.getLogger(__name__)

NATIVE = _area is not None
if not NATIVE:  # pragma: no cover
    log.warning("models._area is not built: the pyramid is resized by OpenCV (same pixels, slower)")


Sizes = int | np.ndarray  # one size, or integer arrays of them


def _general_path(src_h: Sizes, src_w: Sizes, dst_h: Sizes, dst_w: Sizes) -> bool | np.ndarray:
    """Whether OpenCV resizes src to dst by its general area path, where ``models._area``
    applies: a reduction on both axes, not by a whole number on both."""
    whole = (src_h % dst_h == 0) & (src_w % dst_w == 0)
    return (dst_h <= src_h) & (dst_w <= src_w) & ~whole


def area_levels(image: np.ndarray, shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Resize ``image`` to every ``(h, w)`` of ``shapes`` as ``cv2.resize(INTER_AREA)`` does.

    Args:
        image: (H, W, 3) uint8.
        shapes: level sizes, each at least 1x1.

    Returns:
        One (h, w, 3) uint8 array per shape, in order.
    """
    height, width = image.shape[:2]
    levels = [np.empty((h, w, 3), dtype=np.uint8) for h, w in shapes]
    native = [NATIVE and bool(_general_path(height, width, h, w)) for h, w in shapes]
    if any(native):
        picked = [level for level, n in zip(levels, native, strict=True) if n]
        _area.area_pyramid(np.ascontiguousarray(image), picked)
    for level, n, (h, w) in zip(levels, native, shapes, strict=True):
        if not n:
            cv2.resize(image, (w, h), dst=level, interpolation=cv2.INTER_AREA)
    return levels


def _opencv_crop(image: np.ndarray, window: tuple[int, int, int, int], out: np.ndarray) -> None:
    """One window ``(left, top, w, h)`` of the image, black outside it, as a float crop
    resized into ``out`` by OpenCV."""
    height, width = image.shape[:2]
    x, y, w, h = window
    if x >= 0 and y >= 0 and x + w <= width and y + h <= height:
        crop = image[y : y + h, x : x + w].astype(np.float32)
    else:
        crop = np.zeros((h, w, 3), dtype=np.float32)
        sx0, sy0, sx1, sy1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if sx1 > sx0 and sy1 > sy0:
            crop[sy0 - y : sy1 - y, sx0 - x : sx1 - x] = image[sy0:sy1, sx0:sx1]
    cv2.resize(crop, out.shape[1::-1], dst=out, interpolation=cv2.INTER_AREA)


def area_crops(image: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """Cut windows of the image (black outside it) and resize each to ``size`` x ``size`` as
    ``cv2.resize(INTER_AREA)`` resizes the float32 crop.

    Args:
        image: (H, W, 3) uint8.
        windows: (N, 4) integer ``left, top, w, h``, each at least 1x1 (anywhere: a window
            may lie partly or wholly outside the image).
        size: the side of the resized crops.

    Returns:
        (N, size, size, 3) float32, not rounded.
    """
    windows = np.asarray(windows, dtype=np.int64).reshape(-1, 4)
    native = _general_path(windows[:, 3], windows[:, 2], size, size) & NATIVE
    picked = np.flatnonzero(native)
    image = np.ascontiguousarray(image)
    batch = np.empty((len(windows), size, size, 3), dtype=np.float32)
    if picked.size and picked.size == len(windows):
        _area.area_crops(image, np.ascontiguousarray(windows), batch)
    elif picked.size:
        resized = np.empty((picked.size, size, size, 3), dtype=np.float32)
        _area.area_crops(image, np.ascontiguousarray(windows[picked]), resized)
        batch[picked] = resized
    # Plain ints and the preallocated batch: a crop each (famous-selfie's 1317 RNet crops:
    # 36.8 ms, best of 30, against 61.9 with numpy scalars and a stack).
    for k in np.flatnonzero(~native).tolist():
        _opencv_crop(image, tuple(windows[k].tolist()), batch[k])
    return batch
