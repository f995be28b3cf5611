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


def _fractional(height: int, width: int, shape: tuple[int, int]) -> bool:
    """Whether OpenCV takes its general area path for this level: a reduction on both axes,
    not by a whole number on both (where ``models._area`` applies)."""
    h, w = shape
    return h <= height and w <= width and not (height % h == 0 and width % w == 0)


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
    native = [k for k, shape in enumerate(shapes) if NATIVE and _fractional(height, width, shape)]
    if native:
        _area.area_pyramid(np.ascontiguousarray(image), [levels[k] for k in native])
    for k in sorted(set(range(len(levels))) - set(native)):
        h, w = shapes[k]
        cv2.resize(image, (w, h), dst=levels[k], interpolation=cv2.INTER_AREA)
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
    w, h = windows[:, 2], windows[:, 3]
    native = (w >= size) & (h >= size) & ~((w % size == 0) & (h % size == 0)) if NATIVE else w < 0
    picked = np.flatnonzero(native)
    shape = (size, size, 3)
    if picked.size == len(windows):
        batch = np.empty((len(windows), *shape), dtype=np.float32)
        if len(windows):
            _area.area_crops(np.ascontiguousarray(image), np.ascontiguousarray(windows), batch)
        return batch
    batch = np.empty((len(windows), *shape), dtype=np.float32)
    if picked.size:
        resized = np.empty((picked.size, *shape), dtype=np.float32)
        _area.area_crops(
            np.ascontiguousarray(image), np.ascontiguousarray(windows[picked]), resized
        )
        batch[picked] = resized
    # Plain ints and the preallocated batch: a crop each (famous-selfie's 1317 RNet crops:
    # 36.8 ms, best of 30, against 61.9 with numpy scalars and a stack).
    for k in np.flatnonzero(~native).tolist():
        _opencv_crop(image, tuple(windows[k].tolist()), batch[k])
    return batch
