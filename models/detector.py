"""MTCNN face detector: the ``mtcnn`` package's weights with the reference candidate handling.

The networks and weights are those of the ``mtcnn`` package the service depends on (1.0.0);
the candidate handling around them is the reference algorithm's, as mtcnn 0.1.1 (the release
the original service ran) and facenet-pytorch implement it. mtcnn 1.0.0 changed four things
there, and together they cost clean faces most of their confidence (one candidate per face
reaches ONet instead of 3-7, and the face's score is the best of far fewer tries; on the shared
portraits 41 of 93 faces fall under the 0.995 gate, against 11 with the reference handling).
What this module does, stage by stage, as 0.1.1 does it:

1. **PNet** on a pyramid of the image: levels of ``ceil(side * scale)`` pixels, resized from
   the uint8 image with OpenCV's area interpolation (rounded to uint8), scales
   ``12 / min_face_size * scale_factor**k`` while the smaller side stays >= 12 px. Windows
   scoring >= the PNet threshold become boxes ``fix((2 * cell + 1) / scale)`` to
   ``fix((2 * cell + 12) / scale)``; each level is **suppressed before** its box regression is
   applied (greedy NMS at 0.5), then all levels together (0.7); then the regression, squaring,
   and truncation to integers.
2. **RNet** on 24x24 crops of those integer boxes: the reference's padded crop (one pixel up
   and left of the box, black outside the image) resized with area interpolation; candidates
   scoring > the RNet threshold are suppressed (0.7) **before** their regression is applied,
   then squared.
3. **ONet** on 48x48 crops of the truncated boxes the same way; candidates scoring > the ONet
   threshold get their landmarks and regression, then a last suppression ("min" overlap, 0.7).

Suppression is the reference's greedy NMS (``nms``): the best remaining box is kept and removes
every box overlapping it by more than the threshold; only kept boxes suppress, and areas count
``+1`` pixel as in the reference. The one deliberate difference: where the reference gives up
on the whole image because one crop is empty (a box of no width), that box alone is dropped.

Runtimes (``backend``): the networks run on OpenVINO by default (``models.mtcnn_openvino``: the
same weights and layers, no TensorFlow in the process: a faster start, less memory, ONet 3x
faster on few candidates), or on TensorFlow as the package's own Keras models
(``models.detector_tf``), the reference the tests compare the OpenVINO networks against. The
candidate handling here is the same for both.

Conventions (``models.types``): input images are (H, W, 3) uint8 **RGB**; boxes are
``(x, y, w, h)`` float pixels with corners clipped to ``[0, W-1] x [0, H-1]``; landmarks are
(5, 2) float32 in ``LANDMARK_NAMES`` order, not clipped, ``left_eye`` being the eye on the
image's left. ``min_face_size`` is restricted to ``[MIN_FACE_SIZE_MIN, MIN_FACE_SIZE_MAX]``.

Thread safety: ``detect`` may be called from several threads once ``warm_up`` has run.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from models.area import area_crops
from models.types import Face

log = logging.getLogger(__name__)

MIN_FACE_SIZE_MIN = 12
MIN_FACE_SIZE_MAX = 1000

_CELL = 12  # PNet window, px of a pyramid level
_STRIDE = 2  # PNet output stride, px of a pyramid level
_RNET_SIZE = 24
_ONET_SIZE = 48
# The reference's suppression thresholds: PNet per level, PNet over all levels, RNet, ONet.
_NMS_PNET_LEVEL = 0.5
_NMS_PNET_ALL = 0.7
_NMS_RNET = 0.7
_NMS_ONET = 0.7
_NORM_SHIFT = 127.5
_NORM_SCALE = 0.0078125  # 1 / 128, exact in float32

# PNet runs on bands of rows holding at most about 1/_TILE_PARTS of its work each, none
# thinner than _TILE_MIN_ROWS output rows or smaller than _TILE_MIN_PIXELS (see _pnet_tiles).
_TILE_PARTS = 8
_TILE_MIN_ROWS = 16
_TILE_MIN_PIXELS = 10_000


def scale_pyramid(
    height: int, width: int, min_face_size: int, scale_factor: float = 0.709
) -> list[float]:
    """Return the pyramid scales PNet runs at, largest first, as the reference computes them.

    ``12 / min_face_size * scale_factor**k`` for as long as the image's smaller side, scaled
    (by repeated multiplication, as the reference does it), stays >= 12 px.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        min_face_size: smallest face side to find, pixels.
        scale_factor: ratio between consecutive levels, in (0, 1).

    Returns:
        The scales, possibly empty (image too small for PNet).
    """
    base = _CELL / min_face_size
    min_layer = min(height, width) * base
    scales = []
    count = 0
    while min_layer >= _CELL:
        scales.append(float(base * np.power(scale_factor, count)))
        min_layer *= scale_factor
        count += 1
    return scales


def _level_shape(height: int, width: int, scale: float) -> np.ndarray:
    """Return a pyramid level's (h, w) as the reference sizes it: ``ceil(side * scale)``."""
    return np.asarray([int(np.ceil(height * scale)), int(np.ceil(width * scale))], dtype=np.int32)


@dataclass(frozen=True)
class Pyramid:
    """What PNet needs to know of an image size: its levels and the bands they are cut into."""

    scales: tuple[float, ...]  # largest first; empty when the image is too small for PNet
    shapes: np.ndarray  # (L, 2) int32 level (h, w), read-only
    out_shapes: np.ndarray  # (L, 2) PNet output (h, w) per level, read-only
    offsets: np.ndarray  # (L,) int64 start of each level in the flat level buffer, read-only
    tiles: np.ndarray  # (T, 3) int32 bands ``_pnet_tiles(shapes)``, read-only


@functools.lru_cache(maxsize=256)
def pyramid(height: int, width: int, min_face_size: int, scale_factor: float) -> Pyramid:
    """Return the pyramid of an image size, computed once per size (a camera sends one size).

    Thread-safe (``lru_cache``), and nothing it returns can be modified.
    """
    scales = tuple(scale_pyramid(height, width, min_face_size, scale_factor))
    if scales:
        shapes = np.stack([_level_shape(height, width, s) for s in scales])
        tiles = _pnet_tiles(shapes)
    else:
        shapes = np.empty((0, 2), dtype=np.int32)
        tiles = np.empty((0, 3), dtype=np.int32)
    out_shapes = _pnet_output_shapes(shapes)
    sizes = shapes.astype(np.int64).prod(axis=1) * 3
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    for array in (shapes, out_shapes, offsets, tiles):
        array.flags.writeable = False
    return Pyramid(scales, shapes, out_shapes, offsets, tiles)


def nms(boxes: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression as the reference MTCNN does it.

    The best remaining box (by column 4) is kept, and every remaining box that overlaps it by
    more than ``threshold`` is removed; repeat until none remains. Only kept boxes suppress.
    Overlap counts pixels inclusively, as the reference: areas ``(x2 - x1 + 1) * (y2 - y1 + 1)``,
    intersection sides ``max(0, min(x2) - max(x1) + 1)``; "union" divides by the union, "min"
    by the smaller area. Boxes are ranked once by ``np.argsort`` of the scores, best taken from
    the end, so ties fall as in the reference.

    The reference compares the kept box with every remaining one, a numpy pass per kept box
    (1,317 passes for famous-selfie's PNet candidates). Here only pairs that intersect in x
    are compared, found by a sweep over ``x1``, each once and with the reference's formula
    (symmetric in the pair, so the same float result); the greedy pass then walks the ranks.

    Args:
        boxes: (N, >=5) float ``x1, y1, x2, y2, score, ...``.
        threshold: overlap above which a box is removed.
        method: "union" or "min".

    Returns:
        (K,) int64 indices of the kept boxes, best first.
    """
    if method not in ("union", "min"):
        raise ValueError(f"method must be 'union' or 'min', not {method!r}")
    n = boxes.shape[0]
    if n <= 1:  # nothing to suppress (most of a pyramid's small levels)
        return np.arange(n, dtype=np.int64)
    ranked = np.argsort(boxes[:, 4])[::-1]
    x1, y1, x2, y2 = (boxes[ranked, k] for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    # Box q intersects box p in x when max(x1) < min(x2) + 1: sorted by x1, p's partners are
    # the boxes after it whose x1 lies before p's x2 + 1 (and, checked below, q's own x2 + 1).
    by_x = np.argsort(x1, kind="stable")
    ends = np.searchsorted(x1[by_x], x2[by_x] + 1, side="left")
    counts = np.maximum(ends - np.arange(n) - 1, 0)
    first = np.repeat(np.arange(n), counts)
    second = first + 1 + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    i, j = by_x[first], by_x[second]
    w = np.maximum(0.0, np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j]) + 1)
    h = np.maximum(0.0, np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j]) + 1)
    inter = w * h
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "min":
            overlap = inter / np.minimum(area[i], area[j])
        else:
            overlap = inter / (area[i] + area[j] - inter)
    close = overlap > threshold
    # Each close pair as an edge from the better rank to the worse, grouped by the better.
    better, worse = np.minimum(i[close], j[close]), np.maximum(i[close], j[close])
    order = np.argsort(better, kind="stable")
    better, worse = better[order], worse[order]
    starts = np.searchsorted(better, np.arange(n + 1)).tolist()
    worse_list = worse.tolist()
    removed = bytearray(n)
    keep = []
    for rank in range(n):
        if removed[rank]:
            continue
        keep.append(rank)
        for other in worse_list[starts[rank] : starts[rank + 1]]:
            removed[other] = 1
    return ranked[np.asarray(keep, dtype=np.int64)]


def _window_boxes(prob: np.ndarray, reg: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """Turn one level's PNet maps into candidate boxes, as the reference does.

    Args:
        prob: (h, w) face probabilities of the level's windows.
        reg: (h, w, 4) box regressions (x1, y1, x2, y2 offsets, in window sides).
        scale: the level's scale.
        threshold: windows scoring >= this become candidates.

    Returns:
        (K, 9) float64 rows ``x1, y1, x2, y2, score, dx1, dy1, dx2, dy2`` in image pixels,
        windows in column-major order (the reference walks the transposed map).
    """
    cols, rows = np.nonzero(prob.T >= threshold)
    if cols.size == 0:
        return np.empty((0, 9))
    # The reference flips its (transposed) regression maps upside down when a level has exactly
    # one candidate, so that candidate's offsets are read from the mirrored column.
    reg_cols = prob.shape[1] - 1 - cols if cols.size == 1 else cols
    offsets = reg[rows, reg_cols].astype(np.float64)
    cell = np.stack([cols, rows], axis=1).astype(np.float64)
    top_left = np.fix((_STRIDE * cell + 1) / scale)
    bottom_right = np.fix((_STRIDE * cell + _CELL) / scale)
    score = prob[rows, cols].astype(np.float64)[:, np.newaxis]
    return np.hstack([top_left, bottom_right, score, offsets])


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow ``x1, y1, x2, y2`` (columns 0-3) to squares around their centres (``rerec``)."""
    boxes = boxes.copy()
    height = boxes[:, 3] - boxes[:, 1]
    width = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(width, height)
    boxes[:, 0] = boxes[:, 0] + width * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + height * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply RNet/ONet box offsets (in box sides, counted inclusively) as ``bbreg``."""
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, 0:4] = boxes[:, 0:4] + offsets[:, 0:4].astype(np.float64) * np.stack(
        [w, h, w, h], axis=1
    )
    return boxes


@dataclass(frozen=True)
class Patches:
    """RNet's or ONet's input, cut on demand: for each window ``(left, top, w, h)`` of the
    image, the reference's float crop (black outside the image) area-resized to ``size`` and
    normalised to ``(v - 127.5) / 128``.

    A backend cuts the patches chunk by chunk (``cut``) as its runs can take them, so the
    cutting of one chunk overlaps the network's run on the one before (the astronaut's 142
    RNet crops take 1.5-2.4 ms of one core).
    """

    image: np.ndarray  # (H, W, 3) uint8 RGB
    windows: np.ndarray  # (N, 4) int64 left, top, width, height; width and height >= 1
    size: int  # 24 (RNet) or 48 (ONet)

    def __len__(self) -> int:
        return len(self.windows)

    def cut(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """(M, size, size, 3) float32 normalised patches of windows ``[start, end)``."""
        batch = area_crops(self.image, self.windows[start:end], self.size)
        batch -= np.float32(_NORM_SHIFT)
        batch *= np.float32(_NORM_SCALE)
        return batch


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> tuple[Patches, np.ndarray]:
    """The reference's padded crops of integer boxes, resized for RNet or ONet (``Patches``).

    The reference reads box ``x1..x2`` (inclusive) as image columns ``x1 - 1 .. x2 - 1``, fills
    what lies outside the image with black, and area-resizes the float crop; the crops are then
    normalised to ``(v - 127.5) / 128``.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (N, >=4) integer-valued ``x1, y1, x2, y2``.
        size: 24 (RNet) or 48 (ONet).

    Returns:
        The patches of the M boxes that have a crop, and the (M,) indices of those boxes (a box
        of no width or height has none).
    """
    x1, y1, x2, y2 = boxes[:, 0:4].astype(np.int64).T
    crop_w, crop_h = x2 - x1 + 1, y2 - y1 + 1
    kept = np.flatnonzero((crop_w > 0) & (crop_h > 0))
    windows = np.stack([x1[kept] - 1, y1[kept] - 1, crop_w[kept], crop_h[kept]], axis=1)
    return Patches(image, windows, size), kept


def _pnet_output_shapes(shapes: np.ndarray) -> np.ndarray:
    """PNet's output (h, w) for (h, w) level inputs: valid 3x3 conv, 2x2/2 "same" pool, two
    valid 3x3 convs."""
    return (shapes - 2 + 1) // 2 - 4


def _pnet_tiles(shapes: np.ndarray, parts: int = _TILE_PARTS) -> np.ndarray:
    """Cut the pyramid's PNet work into bands of rows that the cores can share evenly.

    The largest level holds about half of PNet's work: run whole, it keeps one core busy
    while the other finishes every other level and then waits (the astronaut: 6.8 ms for the
    largest level alone, 9.4 ms for all ten). Here a level with more than ``1 / parts`` of
    all output pixels is cut into bands of output rows, none thinner than ``_TILE_MIN_ROWS``
    rows nor smaller than ``_TILE_MIN_PIXELS`` (a band costs a dozen ops and a 5-row overlap).
    Output rows ``[a, b)`` need input rows ``[2a, 2b + 10)`` (a 12-row window, stride 2);
    starting at an even input row, the 2x2 pooling pairs the same rows as on the whole level,
    so a band's outputs are bit-identical to those rows of the whole level's.

    Args:
        shapes: (L, 2) level (h, w); each level gives a non-empty output.
        parts: a tile holds at most about ``1 / parts`` of the work (or one level).

    Returns:
        (T, 3) int32 rows ``(level, first input row, end input row)``, in level and row order.
    """
    out = _pnet_output_shapes(np.asarray(shapes, dtype=np.int64))
    pixels = out.prod(axis=1)
    limit = max(1, int(pixels.sum())) / parts
    tiles = []
    for level, (height, rows, area) in enumerate(zip(shapes[:, 0], out[:, 0], pixels, strict=True)):
        most = min(int(rows) // _TILE_MIN_ROWS, int(area) // _TILE_MIN_PIXELS)
        bands = max(1, min(int(np.ceil(area / limit)), most))
        cuts = [int(rows) * k // bands for k in range(bands + 1)]
        for a, b in itertools.pairwise(cuts):
            tiles.append((level, 2 * a, min(int(height), 2 * b + _CELL - 2)))
    return np.asarray(tiles, dtype=np.int32)


def _check_min_face_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"min_face_size must be an integer, not {type(value).__name__}")
    if not MIN_FACE_SIZE_MIN <= value <= MIN_FACE_SIZE_MAX:
        raise ValueError(
            f"min_face_size must be between {MIN_FACE_SIZE_MIN} and {MIN_FACE_SIZE_MAX} "
            f"pixels, got {value}"
        )
    return int(value)


BACKENDS: tuple[str, ...] = ("openvino", "tensorflow")


class Networks(Protocol):
    """PNet, RNet and ONet on one runtime (``models.mtcnn_openvino``, ``models.detector_tf``)."""

    name: str

    def pnet_levels(
        self, image: np.ndarray, levels: Pyramid
    ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
        """Resize the image to every level and run PNet: each level's face probabilities
        (h, w) and box regressions (h, w, 4), level by level, largest first, each yielded as
        soon as it is known (the caller's work on a level overlaps PNet on the next)."""
        ...

    def rnet(self, patches: Patches) -> list[np.ndarray]:
        """[regression (N, 4), probabilities (N, 2)]."""
        ...

    def onet(self, patches: Patches) -> list[np.ndarray]:
        """[regression (N, 4), landmarks (N, 10), probabilities (N, 2)]."""
        ...

    def warm_up(self) -> None: ...


def _backend(name: str, threads: int) -> Networks:
    """Build a backend; TensorFlow is imported only when it is asked for."""
    if name == "tensorflow":
        from models.detector_tf import TensorFlowNetworks

        return TensorFlowNetworks(threads)
    from models.mtcnn_openvino import OpenVINONetworks

    return OpenVINONetworks(threads)


class MTCNNDetector:
    """MTCNN (PNet -> RNet -> ONet): the ``mtcnn`` package's weights, the reference algorithm.

    Args:
        min_face_size: default smallest face side to find, pixels, in
            ``[MIN_FACE_SIZE_MIN, MIN_FACE_SIZE_MAX]``.
        scale_factor: ratio between pyramid levels, in [0.1, 0.95].
        thresholds: PNet, RNet and ONet score thresholds, each in [0, 1]; a PNet window passes
            at or above its threshold, an RNet or ONet candidate strictly above (reference).
        backend: which runtime runs the three networks (``BACKENDS``): ``openvino``
            (``models.mtcnn_openvino``, the default: no TensorFlow in the process) or
            ``tensorflow`` (``models.detector_tf``, the package's own Keras models: the
            reference the tests compare against).
        threads: the backend's threads (0: the CPU count).
    """

    name = "mtcnn"

    def __init__(
        self,
        min_face_size: int = 20,
        scale_factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        backend: str = "openvino",
        threads: int = 0,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.min_face_size = _check_min_face_size(min_face_size)
        if not 0.1 <= float(scale_factor) <= 0.95:
            raise ValueError(f"scale_factor must be between 0.1 and 0.95, got {scale_factor}")
        self.scale_factor = float(scale_factor)
        if len(thresholds) != 3 or not all(0.0 <= float(t) <= 1.0 for t in thresholds):
            raise ValueError(
                f"thresholds must be three scores in [0, 1] (PNet, RNet, ONet), got {thresholds}"
            )
        pnet, rnet, onet = (float(t) for t in thresholds)
        self.thresholds = (pnet, rnet, onet)

        started = time.perf_counter()
        self.backend = backend
        self._nets = _backend(backend, threads)
        log.info("MTCNN networks (%s) ready in %.2f s", backend, time.perf_counter() - started)

    # -- public API --------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run each compiled stage once, and a whole detection (a second or two)."""
        started = time.perf_counter()
        levels = pyramid(64, 64, 20, self.scale_factor)
        for _ in self._nets.pnet_levels(np.zeros((64, 64, 3), np.uint8), levels):
            pass
        self._nets.warm_up()
        # A textured image of service-like size: primes allocators and oneDNN kernels too.
        rng = np.random.default_rng(0)
        self.detect(rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8))
        log.info("MTCNN warmed up in %.2f s", time.perf_counter() - started)

    def detect(self, image: np.ndarray, min_face_size: int | None = None) -> list[Face]:
        """Find the faces of one image.

        Args:
            image: (H, W, 3) uint8 RGB.
            min_face_size: smallest face side to find, pixels; the detector's default when None.

        Returns:
            Faces, highest ONet confidence first: boxes ``(x, y, w, h)`` float pixels with
            corners clipped to the image, landmarks (5, 2) float32. Empty for an image smaller
            than PNet's 12 px window.

        Raises:
            TypeError: ``image`` is not a numpy array or ``min_face_size`` not an integer.
            ValueError: ``image`` is not (H, W, 3) uint8, or ``min_face_size`` out of range.
        """
        size = self.min_face_size if min_face_size is None else _check_min_face_size(min_face_size)
        if not isinstance(image, np.ndarray):
            raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"image must be (H, W, 3) uint8 RGB, got shape {image.shape} {image.dtype}"
            )
        height, width = image.shape[:2]
        levels = pyramid(height, width, size, self.scale_factor)
        if not levels.scales:
            return []
        boxes = self._stage_pnet(image, levels)
        if not boxes.shape[0]:
            return []
        boxes = self._stage_rnet(image, boxes)
        if not boxes.shape[0]:
            return []
        boxes, marks = self._stage_onet(image, boxes)
        return _faces(boxes, marks, height, width)

    # -- stages: the reference's candidate handling, float64 like the reference ---------------

    def _stage_pnet(self, image: np.ndarray, levels: Pyramid) -> np.ndarray:
        found = []
        with contextlib.closing(self._nets.pnet_levels(image, levels)) as outputs:
            for scale, (prob, reg) in zip(levels.scales, outputs, strict=True):
                boxes = _window_boxes(prob, reg, scale, self.thresholds[0])
                found.append(boxes[nms(boxes, _NMS_PNET_LEVEL)])
        boxes = np.concatenate(found)
        if not boxes.shape[0]:
            return boxes[:, :5]
        boxes = boxes[nms(boxes, _NMS_PNET_ALL)]
        # The window regression is in window sides counted exclusively (no +1), then squared.
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        sides = np.stack([w, h, w, h], axis=1)
        boxes = np.hstack([boxes[:, 0:4] + boxes[:, 5:9] * sides, boxes[:, 4:5]])
        boxes = _square(boxes)
        boxes[:, 0:4] = np.fix(boxes[:, 0:4])
        return boxes

    def _stage_rnet(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        patches, kept = _crops(image, boxes, _RNET_SIZE)
        if not len(patches):
            return boxes[:0]
        reg, prob = self._nets.rnet(patches)
        score = prob[:, 1].astype(np.float64)
        passed = score > self.thresholds[1]
        boxes = np.hstack([boxes[kept[passed], 0:4], score[passed, np.newaxis]])
        offsets = reg[passed]
        pick = nms(boxes, _NMS_RNET)
        return _square(_regress(boxes[pick], offsets[pick]))

    def _stage_onet(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.fix(boxes[:, 0:4])
        patches, kept = _crops(image, boxes, _ONET_SIZE)
        if not len(patches):
            return boxes[:0], np.empty((0, 5, 2), dtype=np.float32)
        reg, marks, prob = self._nets.onet(patches)
        score = prob[:, 1].astype(np.float64)
        passed = score > self.thresholds[2]
        boxes = np.hstack([boxes[kept[passed]], score[passed, np.newaxis]])
        marks = marks[passed].astype(np.float64)
        # Landmarks come relative to the ONet input box (sides counted inclusively).
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        points = np.stack(
            [w * marks[:, 0:5] + boxes[:, 0:1] - 1, h * marks[:, 5:10] + boxes[:, 1:2] - 1],
            axis=-1,
        )
        boxes = _regress(boxes, reg[passed])
        pick = nms(boxes, _NMS_ONET, method="min")
        return boxes[pick], points[pick].astype(np.float32)


def _faces(boxes: np.ndarray, marks: np.ndarray, height: int, width: int) -> list[Face]:
    """Clip corners to the image and build ``Face``s (best first, as ``nms`` returned them)."""
    x1 = np.clip(boxes[:, 0], 0, width - 1)
    y1 = np.clip(boxes[:, 1], 0, height - 1)
    x2 = np.clip(boxes[:, 2], 0, width - 1)
    y2 = np.clip(boxes[:, 3], 0, height - 1)
    return [
        Face(
            box=(float(x1[k]), float(y1[k]), float(x2[k] - x1[k]), float(y2[k] - y1[k])),
            confidence=float(boxes[k, 4]),
            landmarks=marks[k],
        )
        for k in range(boxes.shape[0])
    ]
