"""MTCNN face detector: the ``mtcnn`` package's networks and weights, compiled and vectorised.

``MTCNNDetector`` finds what ``mtcnn.MTCNN().detect_faces`` (mtcnn 1.0.0) finds, in the same
order and with the same confidences, but many times faster: the package calls its Keras models
eagerly (heavy per-call overhead) and builds N x N matrices for non-maximum suppression. Here
each network runs inside one ``tf.function`` traced once, with the package's exact ops inside
(AREA resize of the [-1, 1] image to every pyramid level, bilinear ``crop_and_resize``): one
call runs PNet over the whole pyramid (the largest levels cut into bands of rows so that both
cores share the work, ``_pnet_tiles``), one call RNet and one ONet over all their candidates
(in cache-sized chunks). Box decoding and suppression are vectorised numpy that reproduces the
package's arithmetic (float64, and float32 where the package lets TensorFlow compute) and its
non-greedy suppression rule (see ``suppress``). On the shared test images the outputs are
bit-identical to the package's.

The networks run through ``pnet_forward``, ``rnet_forward`` and ``onet_forward``: the package's
layers, called in the order of its ``call`` methods, except that PReLU (about 40% of PNet's
time in the package's form) is evaluated by ``prelu`` on a ``(rows, width * channels)`` view,
so that the per-channel slopes broadcast along one long contiguous axis. Same operations in
the same order, hence the same values; detect 5-10% faster. PNet's face probability, the one
output of its two-class softmax that the detector uses, comes from ``FaceLogit`` instead: the
sigmoid of the face-minus-background logit (the same function, not the same float
operations: within 4e-7 of the package's values; detect about 0.8 ms faster on the astronaut).

One deliberate difference: mtcnn 1.0.0 sizes its scale pyramid without the base scale
``12 / min_face_size``, so for ``min_face_size`` >= 30 (and for some images from about 25) its
smallest levels shrink below what PNet can take and it fails or silently returns nothing. Below
``LEGACY_PYRAMID_BELOW`` we keep the package's pyramid level for level (minus the levels it
would fail on); from there on the pyramid is built correctly: every level whose smaller side is
at least 12 px. ``min_face_size`` is restricted to ``[MIN_FACE_SIZE_MIN, MIN_FACE_SIZE_MAX]``;
below 12 px the pyramid would upscale the image.

Conventions (``models.types``): input images are (H, W, 3) uint8 **RGB**; boxes are
``(x, y, w, h)`` float pixels, clipped to the image as the package's ``fit_to_image`` does
(corners within ``[0, W-1] x [0, H-1]``); landmarks are (5, 2) float32 in ``LANDMARK_NAMES``
order, not clipped, ``left_eye`` being the eye on the image's left.

Thread safety: ``detect`` may be called from several threads once ``warm_up`` has run (the
compiled functions are traced there; calling them concurrently is safe).
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from mtcnn.network.onet import ONet
from mtcnn.network.pnet import PNet
from mtcnn.network.rnet import RNet
from mtcnn.utils.tensorflow import load_weights

from models.types import Face

log = logging.getLogger(__name__)

MIN_FACE_SIZE_MIN = 12
MIN_FACE_SIZE_MAX = 1000
# From this min_face_size on, the corrected pyramid replaces the package's (see module doc).
LEGACY_PYRAMID_BELOW = 30

_CELL = 12  # PNet window, px of a pyramid level
_STRIDE = 2  # PNet output stride, px of a pyramid level
_PNET_MIN_SIDE = 11  # smallest level side that still gives PNet a non-empty output
_RNET_SIZE = 24
_ONET_SIZE = 48
# The package's suppression thresholds (StagePNet nms_pnet1/nms_pnet2, StageRNet, StageONet).
_NMS_PNET_LEVEL = 0.5
_NMS_PNET_ALL = 0.7
_NMS_RNET = 0.7
_NMS_ONET = 0.7

# RNet/ONet candidates go through the network in chunks of about this many: small enough for the
# first layers' activations to stay in cache (2-3x faster than one big batch on CPU), large
# enough that no chunk has a single row (a batch of one takes another, not bit-identical path).
_CHUNK = 64
_PAIRS_PER_BLOCK = 1 << 20  # suppress(): candidate pairs examined at once
_REACH_MARGIN = 1e-9  # suppress(): relative slack on the x-overlap a "union" pair needs
_PARALLEL = 8  # while_loop iterations (pyramid levels, chunks) that may run concurrently
# PNet runs on bands of rows holding at most about 1/_TILE_PARTS of its work each, none
# thinner than _TILE_MIN_ROWS output rows or smaller than _TILE_MIN_PIXELS (see _pnet_tiles).
_TILE_PARTS = 8
_TILE_MIN_ROWS = 16
_TILE_MIN_PIXELS = 10_000

_UINT8_IMAGE_SPEC = tf.TensorSpec([None, None, 3], tf.uint8)
_IMAGE_SPEC = tf.TensorSpec([1, None, None, 3], tf.float32)
_SIZES_SPEC = tf.TensorSpec([None, 2], tf.int32)
_BOXES_SPEC = tf.TensorSpec([None, 4], tf.float32)
_BOUNDS_SPEC = tf.TensorSpec([None], tf.int32)
_TILES_SPEC = tf.TensorSpec([None, 3], tf.int32)


def scale_pyramid(
    height: int, width: int, min_face_size: int, scale_factor: float = 0.709
) -> list[float]:
    """Return the pyramid scales PNet runs at, largest first.

    Below ``LEGACY_PYRAMID_BELOW`` these are mtcnn 1.0.0's scales
    (``utils.images.build_scale_pyramid``), minus any level too small for PNet (the package
    fails on those); from there on, ``12 / min_face_size * scale_factor**k`` for every ``k``
    whose level keeps its smaller side >= 12 px.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        min_face_size: smallest face side to find, pixels.
        scale_factor: ratio between consecutive levels, in (0, 1).

    Returns:
        The scales, possibly empty (image too small for PNet).
    """
    min_dim = min(height, width)
    if min_dim < _CELL:
        return []
    base = _CELL / min_face_size
    if min_face_size < LEGACY_PYRAMID_BELOW:
        # The package's arithmetic, kept as is: level sizes are truncated from these floats.
        count = round(-((np.log(min_dim / _CELL) / np.log(scale_factor)) + 1))
        scales = base * scale_factor ** np.arange(max(count, 0))
        return [float(s) for s in scales if _level_shape(height, width, s).min() >= _PNET_MIN_SIDE]
    count = 0
    while min_dim * (base * scale_factor**count) >= _CELL:
        count += 1
    return [float(s) for s in base * scale_factor ** np.arange(count)]


@dataclass(frozen=True)
class Pyramid:
    """What PNet needs to know of an image size: its levels and the bands they are cut into."""

    scales: tuple[float, ...]  # largest first; empty when the image is too small for PNet
    shapes: np.ndarray  # (L, 2) int32 level (h, w), read-only
    out_shapes: np.ndarray  # (L, 2) PNet output (h, w) per level, read-only
    shapes_tensor: tf.Tensor | None  # ``shapes`` and ``_pnet_tiles(shapes)`` as the PNet
    tiles_tensor: tf.Tensor | None  # graph takes them (None for an empty pyramid)


@functools.lru_cache(maxsize=256)
def pyramid(height: int, width: int, min_face_size: int, scale_factor: float) -> Pyramid:
    """Return the pyramid of an image size, computed once per size (a camera sends one size).

    The scales, level shapes, bands and their tensors are 0.1 ms of Python in a tight loop,
    0.3 ms between the detector's TensorFlow calls; cached, an image of a size seen before
    skips them (astronaut detect, alternating with the uncached form: 0.42 and 0.70 ms faster,
    medians of 300 pairs). Thread-safe (``lru_cache``), and nothing it returns can be
    modified.
    """
    scales = tuple(scale_pyramid(height, width, min_face_size, scale_factor))
    if not scales:
        empty = np.empty((0, 2), dtype=np.int32)
        empty.flags.writeable = False
        return Pyramid(scales, empty, empty, None, None)
    shapes = np.stack([_level_shape(height, width, s) for s in scales])
    out_shapes = _pnet_output_shapes(shapes)
    tiles = tf.constant(_pnet_tiles(shapes))
    shapes_tensor = tf.constant(shapes)
    shapes.flags.writeable = False
    out_shapes.flags.writeable = False
    return Pyramid(scales, shapes, out_shapes, shapes_tensor, tiles)


def _level_shape(height: int, width: int, scale: float) -> np.ndarray:
    """Return a pyramid level's (h, w) as the package gets it: float product, truncated."""
    return (np.asarray([height, width]) * np.float64(scale)).astype(np.int32)


def suppress(
    boxes: np.ndarray,
    threshold: float,
    method: str = "union",
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Return the indices of the boxes that mtcnn 1.0.0's ``nms`` keeps, ascending.

    Not greedy NMS: box ``j`` is dropped when *any* box before it (already dropped or not)
    overlaps it by more than ``threshold``. Overlap is the package's formula, in float64:
    ``inter / (area_i + area_j - inter)`` ("union") or ``inter / min(area_i, area_j)``
    ("min"), areas ``(x2 - x1) * (y2 - y1)`` without the +1. Only pairs that overlap enough
    in x are ever compared (found by a sweep over x1), so this costs far less than the
    package's N x N matrices while deciding every pair the same way: a pair without a
    positive intersection has an overlap of 0 (or NaN), never above a threshold >= 0; and
    for "union", an overlap above ``t`` needs ``inter * (1 + t) > t * (area_i + area_j)``,
    hence (with ``inter <= inter_x * min(h_i, h_j)``) an x-overlap above
    ``t / (1 + t) * (w_i + w_j)``: pairs short of that (less a margin far above float
    rounding) cannot fail, and are not compared. On famous-selfie this leaves about half of
    the pairs (PNet levels 83,382 -> 43,420; RNet stage 26,283 -> 12,304).

    Args:
        boxes: (N, 4) float64 ``x1, y1, x2, y2`` in rank order (best first).
        threshold: overlap above which the later box is dropped, >= 0.
        method: "union" or "min".
        groups: optional (N,) integer labels: boxes are only compared within their group, as
            if each group went through ``nms`` on its own (the PNet stage suppresses every
            pyramid level on its own; one call for all levels saves a call per level).

    Returns:
        (K,) int64 indices into ``boxes``, ascending (so still in rank order).
    """
    if method not in ("union", "min"):
        raise ValueError(f"method must be 'union' or 'min', not {method!r}")
    n = boxes.shape[0]
    if n < 2:
        return np.arange(n)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    # Sorted by group, then x1; the partners of sorted box p are the boxes after it in its
    # group whose x1 lies before its x2.
    if groups is None:
        order, firsts = np.argsort(x1, kind="stable"), [0]
    else:
        order = np.lexsort((x1, groups))
        firsts = np.unique(groups[order], return_index=True)[1].tolist()
    sorted_x1, sorted_x2 = x1[order], x2[order]
    bounds = [*firsts, n]
    # Partners must start before ``reach`` (see above): the x-overlap a "union" pair needs,
    # with the narrowest width of the group (boxes of no positive width never fail).
    reach = sorted_x2
    if method == "union":
        widths = sorted_x2 - sorted_x1
        narrowest = np.maximum(np.minimum.reduceat(widths, firsts), 0.0)
        narrowest = np.repeat(narrowest, np.diff(bounds))
        needed = threshold / (1.0 + threshold) * (widths + narrowest) * (1.0 - _REACH_MARGIN)
        needed -= _REACH_MARGIN * (1.0 + np.abs(sorted_x2))
        reach = sorted_x2 - np.maximum(needed, 0.0)
    end = np.empty(n, dtype=np.int64)
    for lo, hi in itertools.pairwise(bounds):
        end[lo:hi] = lo + np.searchsorted(sorted_x1[lo:hi], reach[lo:hi], side="left")
    counts = np.maximum(end - np.arange(n) - 1, 0)
    ends = np.cumsum(counts)
    dropped = np.zeros(n, dtype=bool)
    # Pairs are made a block of sorted boxes at a time, to bound memory on crowded images.
    cuts = np.searchsorted(ends, np.arange(_PAIRS_PER_BLOCK, int(ends[-1]), _PAIRS_PER_BLOCK))
    for lo, hi in itertools.pairwise([0, *np.unique(cuts).tolist(), n]):
        block = counts[lo:hi]
        total = int(block.sum())
        if total == 0:
            continue
        first = np.repeat(np.arange(lo, hi), block)
        offsets = np.arange(total) - np.repeat(np.cumsum(block) - block, block)
        i, j = order[first], order[first + 1 + offsets]
        inter_x = np.maximum(0, np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j]))
        inter_y = np.maximum(0, np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j]))
        inter = inter_x * inter_y
        with np.errstate(divide="ignore", invalid="ignore"):
            if method == "union":
                overlap = inter / (area[i] + area[j] - inter)
            else:
                overlap = inter / np.minimum(area[i], area[j])
            failed = overlap > threshold
        dropped[np.maximum(i[failed], j[failed])] = True
    return np.flatnonzero(~dropped)


def _sort_by_score(boxes: np.ndarray, column: int = 5) -> np.ndarray:
    """Sort rows by score, best first, exactly as the package (reversed default argsort)."""
    return boxes[np.argsort(boxes[:, column])[::-1]]


def _to_square(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes (columns 1..4 = x1, y1, x2, y2) to squares around their centre (package)."""
    boxes = boxes.copy()
    h = boxes[:, 4] - boxes[:, 2]
    w = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 1] = boxes[:, 1] + w * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 2] + h * 0.5 - side * 0.5
    boxes[:, 3] = boxes[:, 1] + side
    boxes[:, 4] = boxes[:, 2] + side
    return boxes


def _refine(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply RNet/ONet box offsets as the package's ``adjust_bboxes`` does.

    There the offsets are a TensorFlow tensor, so ``boxes += offsets * sizes`` is computed by
    TensorFlow in float32 (numpy defers to the tensor's operators) and stored back into the
    float64 array: both the product and the sum are rounded to float32 here too.
    """
    boxes = boxes.copy()
    w = boxes[:, 3] - boxes[:, 1] + 1
    h = boxes[:, 4] - boxes[:, 2] + 1
    sizes = np.stack([w, h, w, h], axis=-1).astype(np.float32)
    boxes[:, 1:5] = boxes[:, 1:5].astype(np.float32) + offsets.astype(np.float32) * sizes
    return boxes


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


def _pnet_candidates(
    probs: np.ndarray,
    regs: np.ndarray,
    out_shapes: np.ndarray,
    scales: Sequence[float],
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every level's PNet maps into boxes in image pixels, with the package's math.

    Args:
        probs: (M,) float32 face probabilities of all levels, each flattened row-major.
        regs: (M, 4) float32 box regressions, same layout.
        out_shapes: (L, 2) PNet output (h, w) per level.
        scales: the L levels' scales.
        threshold: PNet score threshold (strictly greater passes).

    Returns:
        (K, 6) float64 rows ``[0, x1, y1, x2, y2, score]`` level by level, each level ranked
        best first exactly as the package ranks it (``np.argsort`` of the level's scores,
        reversed), and the (K,) level of each row.
    """
    sizes = out_shapes.prod(axis=1)
    ends = np.cumsum(sizes)
    hits = np.flatnonzero(probs > threshold)  # level by level, row-major: the package's order
    if hits.size == 0:
        return np.empty((0, 6)), np.empty(0, dtype=np.int64)
    level = np.searchsorted(ends, hits, side="right")
    pos = hits - (ends - sizes)[level]
    width = out_shapes[level, 1]
    ys, xs = pos // width, pos % width
    r = regs[hits]
    span = _CELL - 1
    left, top = xs * _STRIDE + 1, ys * _STRIDE + 1
    right, bottom = xs * _STRIDE + _CELL, ys * _STRIDE + _CELL
    boxes = np.stack(
        [
            np.zeros(hits.size),
            left + r[:, 0].astype(np.float64) * span,
            top + r[:, 1].astype(np.float64) * span,
            right + r[:, 2].astype(np.float64) * span,
            bottom + r[:, 3].astype(np.float64) * span,
            probs[hits],
        ],
        axis=1,
    )
    bounds = np.searchsorted(level, np.arange(len(scales) + 1))
    order = np.concatenate(
        [lo + np.argsort(boxes[lo:hi, 5])[::-1] for lo, hi in itertools.pairwise(bounds)]
    )
    boxes, level = boxes[order], level[order]
    boxes[:, 1:5] = boxes[:, 1:5] / np.asarray(scales, dtype=np.float64)[level][:, np.newaxis]
    return boxes, level


def _check_min_face_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"min_face_size must be an integer, not {type(value).__name__}")
    if not MIN_FACE_SIZE_MIN <= value <= MIN_FACE_SIZE_MAX:
        raise ValueError(
            f"min_face_size must be between {MIN_FACE_SIZE_MIN} and {MIN_FACE_SIZE_MAX} "
            f"pixels, got {value}"
        )
    return int(value)


class MTCNNDetector:
    """MTCNN (PNet -> RNet -> ONet) with the ``mtcnn`` package's networks, weights and semantics.

    Args:
        min_face_size: default smallest face side to find, pixels, in
            ``[MIN_FACE_SIZE_MIN, MIN_FACE_SIZE_MAX]``.
        scale_factor: ratio between pyramid levels, in [0.1, 0.95].
        thresholds: PNet, RNet and ONet score thresholds, each in [0, 1]; a candidate passes a
            stage when its score is strictly greater.
    """

    name = "mtcnn"

    def __init__(
        self,
        min_face_size: int = 20,
        scale_factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    ) -> None:
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
        weights = importlib.resources.files("mtcnn.assets.weights")
        self._pnet = _load(PNet(), weights / "pnet.lz4")
        self._rnet = _load(RNet(), weights / "rnet.lz4")
        self._onet = _load(ONet(), weights / "onet.lz4")
        self._pnet_face = FaceLogit.of(self._pnet.conv4_2)
        self._pnet_fn = tf.function(
            self._pnet_graph, input_signature=[_UINT8_IMAGE_SPEC, _SIZES_SPEC, _TILES_SPEC]
        )
        self._rnet_fn = tf.function(
            self._rnet_graph, input_signature=[_IMAGE_SPEC, _BOXES_SPEC, _BOUNDS_SPEC]
        )
        self._onet_fn = tf.function(
            self._onet_graph, input_signature=[_IMAGE_SPEC, _BOXES_SPEC, _BOUNDS_SPEC]
        )
        # Requests call the traced concrete functions: a tf.function call binds and checks its
        # arguments in Python each time, about 0.25 ms more per call (three calls an image).
        self._pnet_call = self._pnet_fn.get_concrete_function()
        self._rnet_call = self._rnet_fn.get_concrete_function()
        self._onet_call = self._onet_fn.get_concrete_function()
        log.info("MTCNN networks loaded in %.2f s", time.perf_counter() - started)

    # -- compiled graphs (each traced once, in __init__) -------------------------------------

    def _pnet_graph(
        self, image: tf.Tensor, sizes: tf.Tensor, tiles: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        """Normalise the image and run PNet on every pyramid level in one call.

        The levels are resized side by side, then PNet runs on the ``tiles`` side by side:
        rows ``(level, first input row, end input row)`` from ``_pnet_tiles``.

        Returns the normalised image (1, H, W, 3) for the later stages, and the tiles' face
        probabilities and box regressions, each tile flattened row-major and concatenated:
        the tiles are in level and row order, so this is every level's map in turn.
        """
        # Exact in float32 (steps of 1/256), so equal to the package's float64 values.
        normalized = ((tf.cast(image, tf.float32) - 127.5) / 128.0)[tf.newaxis]
        count = tf.shape(sizes)[0]
        levels = tf.TensorArray(
            tf.float32, size=count, infer_shape=False, element_shape=[1, None, None, 3]
        )

        def resize(i: tf.Tensor, levels: tf.TensorArray) -> tuple:
            # The package resizes each level from the full normalised image with AREA.
            level = tf.image.resize(normalized, sizes[i], method=tf.image.ResizeMethod.AREA)
            return i + 1, levels.write(i, level)

        _, levels = tf.while_loop(
            lambda i, *_: i < count, resize, [0, levels], parallel_iterations=_PARALLEL
        )
        jobs = tf.shape(tiles)[0]
        logits = tf.TensorArray(tf.float32, size=jobs, infer_shape=False, element_shape=[None])
        regs = tf.TensorArray(tf.float32, size=jobs, infer_shape=False, element_shape=[None, 4])

        def tile(j: tf.Tensor, logits: tf.TensorArray, regs: tf.TensorArray) -> tuple:
            rows = levels.read(tiles[j, 0])[:, tiles[j, 1] : tiles[j, 2]]
            reg, logit = pnet_forward(self._pnet, rows, self._pnet_face)
            logits = logits.write(j, tf.reshape(logit, [-1]))
            regs = regs.write(j, tf.reshape(reg[0], [-1, 4]))
            return j + 1, logits, regs

        _, logits, regs = tf.while_loop(
            lambda j, *_: j < jobs, tile, [0, logits, regs], parallel_iterations=_PARALLEL
        )
        # One sigmoid over every tile: an element's value may depend on where it falls in the
        # tensor (vectorised body or scalar tail), so not per tile, which would make the bands
        # differ from whole levels in the last ulp.
        return normalized, tf.math.sigmoid(logits.concat()), regs.concat()

    def _rnet_graph(
        self, image: tf.Tensor, boxes: tf.Tensor, bounds: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        return _chunked(
            lambda x: rnet_forward(self._rnet, x), image, boxes, bounds, _RNET_SIZE, (4, 2)
        )

    def _onet_graph(
        self, image: tf.Tensor, boxes: tf.Tensor, bounds: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        return _chunked(
            lambda x: onet_forward(self._onet, x), image, boxes, bounds, _ONET_SIZE, (4, 10, 2)
        )

    # -- public API --------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run each compiled stage once, and a whole detection (a second or two)."""
        started = time.perf_counter()
        shapes = np.asarray([[64, 64], [32, 32]], dtype=np.int32)
        normalized, _, _ = self._pnet_fn(
            tf.zeros([64, 64, 3], tf.uint8), tf.constant(shapes), tf.constant(_pnet_tiles(shapes))
        )
        boxes = tf.constant([[0.1, 0.1, 0.6, 0.6], [0.3, 0.2, 0.9, 0.8]], tf.float32)
        bounds = tf.constant([0, 2], tf.int32)
        self._rnet_fn(normalized, boxes, bounds)
        self._onet_fn(normalized, boxes, bounds)
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
            Faces in the package's order (ONet confidence, highest first): boxes ``(x, y, w, h)``
            float pixels with corners clipped to the image, landmarks (5, 2) float32. Empty for
            an image smaller than PNet's 12 px window.

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
        normalized, boxes = self._stage_pnet(image, levels)
        if boxes.shape[0]:
            boxes = self._stage_rnet(normalized, boxes, height, width)
        if boxes.shape[0]:
            boxes = self._stage_onet(normalized, boxes, height, width)
        if not boxes.shape[0]:
            return []
        return _faces(boxes, height, width)

    # -- stages: numpy mirrors of mtcnn.stages, float64 like the package ---------------------

    def _stage_pnet(self, image: np.ndarray, levels: Pyramid) -> tuple[tf.Tensor, np.ndarray]:
        normalized, probs, regs = self._pnet_call(
            tf.constant(image), levels.shapes_tensor, levels.tiles_tensor
        )
        probs, regs = probs.numpy(), regs.numpy()
        boxes, level = _pnet_candidates(
            probs, regs, levels.out_shapes, levels.scales, self.thresholds[0]
        )
        # Each level suppressed on its own (one call for all), then all levels together.
        boxes = _sort_by_score(boxes[suppress(boxes[:, 1:5], _NMS_PNET_LEVEL, groups=level)])
        boxes = boxes[suppress(boxes[:, 1:5], _NMS_PNET_ALL)]
        return normalized, _to_square(boxes)

    def _stage_rnet(
        self, image: tf.Tensor, boxes: np.ndarray, height: int, width: int
    ) -> np.ndarray:
        reg, prob = self._rnet_call(image, *_crop_inputs(boxes, height, width))
        boxes = boxes.copy()
        boxes[:, 5] = prob.numpy()[:, 1]
        boxes = _refine(boxes, reg.numpy())
        boxes = _sort_by_score(boxes[boxes[:, 5] > self.thresholds[1]])
        boxes = boxes[suppress(boxes[:, 1:5], _NMS_RNET)]
        return _to_square(boxes)

    def _stage_onet(
        self, image: tf.Tensor, boxes: np.ndarray, height: int, width: int
    ) -> np.ndarray:
        reg, marks, prob = self._onet_call(image, *_crop_inputs(boxes, height, width))
        # Landmarks come relative to the ONet input box; the package keeps them in float32.
        marks = marks.numpy().copy()
        w = boxes[:, 3:4] - boxes[:, 1:2] + 1
        h = boxes[:, 4:5] - boxes[:, 2:3] + 1
        marks[:, 0:5] = w * marks[:, 0:5] + boxes[:, 1:2] - 1
        marks[:, 5:10] = h * marks[:, 5:10] + boxes[:, 2:3] - 1
        boxes = boxes.copy()
        boxes[:, 5] = prob.numpy()[:, 1]
        boxes = np.concatenate([_refine(boxes, reg.numpy()), marks], axis=-1)
        boxes = _sort_by_score(boxes[boxes[:, 5] > self.thresholds[2]])
        return boxes[suppress(boxes[:, 1:5], _NMS_ONET, method="min")]


def prelu(layer: tf.keras.layers.PReLU, x: tf.Tensor) -> tf.Tensor:
    """Keras' PReLU, ``relu(x) + (-alpha) * relu(-x)``, with the same operations in the same
    order, so the same values.

    For an (N, H, W, C) input the element-wise work runs on an (N * H, W * C) view with the
    slopes tiled W times: broadcasting a C-vector over the last axis of a 4-D tensor is slow in
    TensorFlow's CPU kernels (C is 10 to 128 here), a (W * C)-vector over rows is not
    (PNet's 305x305x10 activation: 0.6 against 1.2-1.9 ms).
    """
    slopes = -layer.alpha
    if len(x.shape) != 4:
        return tf.nn.relu(x) + slopes * tf.nn.relu(-x)
    shape = tf.shape(x)
    rows = tf.reshape(x, [-1, shape[2] * shape[3]])
    tiled = tf.tile(tf.reshape(slopes, [-1]), [shape[2]])
    return tf.reshape(tf.nn.relu(rows) + tiled * tf.nn.relu(-rows), shape)


@dataclass(frozen=True)
class FaceLogit:
    """The face logit of a two-class (background, face) softmax layer: its sigmoid is the face
    probability, the one output of the softmax that the detector uses.

    ``softmax([b, f])[1] == sigmoid(f - b)``, and ``f - b`` is one output channel with the
    difference of the two channels' weights: one convolution output and an element-wise
    sigmoid instead of two outputs and a softmax. oneDNN's softmax over a 2-wide axis took 1.8
    of the 14 ms of CPU time of PNet on the astronaut; the sigmoid takes almost none (detect,
    alternating with the softmax form in one process: astronaut 0.8 ms, famous-selfie 3.7 ms
    faster). The same function, not the same float operations: the probabilities are within
    4e-7 of the package's (``tests/models/test_detector.py``); on the 41 shared face images
    the detections are the same to the last bit as with the softmax.
    """

    kernel: tf.Tensor  # (1, 1, C, 1): face minus background weights
    bias: tf.Tensor  # (1,)

    @classmethod
    def of(cls, layer: tf.keras.layers.Conv2D) -> FaceLogit:
        """Build from the package's 1x1 two-channel softmax convolution (PNet's conv4-2)."""
        kernel, bias = layer.get_weights()
        return cls(tf.constant(kernel[..., 1:] - kernel[..., :1]), tf.constant(bias[1:] - bias[:1]))

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """(N, H, W, C) features -> (N, H, W, 1) face logits; ``tf.math.sigmoid`` of them are
        the face probabilities."""
        return tf.nn.bias_add(tf.nn.conv2d(x, self.kernel, 1, "VALID"), self.bias)


def pnet_forward(net: PNet, x: tf.Tensor, face: FaceLogit) -> list[tf.Tensor]:
    """``PNet.call`` of mtcnn 1.0.0 with ``prelu``, and ``face`` (built from ``net.conv4_2``)
    in place of the softmax: [box regression, face logit (N, H, W, 1)]."""
    x = net.maxpool1(prelu(net.prelu1, net.conv1(x)))
    x = prelu(net.prelu2, net.conv2(x))
    x = prelu(net.prelu3, net.conv3(x))
    return [net.conv4_1(x), face(x)]


def rnet_forward(net: RNet, x: tf.Tensor) -> list[tf.Tensor]:
    """``RNet.call`` of mtcnn 1.0.0 with ``prelu``: [box regression, face probability]."""
    x = net.maxpool1(prelu(net.prelu1, net.conv1(x)))
    x = net.maxpool2(prelu(net.prelu2, net.conv2(x)))
    x = prelu(net.prelu3, net.conv3(x))
    x = prelu(net.prelu4, net.fc4(net.flatten(net.permute(x))))
    return [net.fc5_1(x), net.fc5_2(x)]


def onet_forward(net: ONet, x: tf.Tensor) -> list[tf.Tensor]:
    """``ONet.call`` of mtcnn 1.0.0 with ``prelu``: [box regression, landmarks, probability]."""
    x = net.maxpool1(prelu(net.prelu1, net.conv1(x)))
    x = net.maxpool2(prelu(net.prelu2, net.conv2(x)))
    x = net.maxpool3(prelu(net.prelu3, net.conv3(x)))
    x = prelu(net.prelu4, net.conv4(x))
    x = prelu(net.prelu5, net.fc5(net.flatten(net.permute(x))))
    return [net.fc6_1(x), net.fc6_2(x), net.fc6_3(x)]


def _load(model: tf.keras.Model, path: object) -> tf.keras.Model:
    """Build one of the package's networks and load its weights file by absolute path."""
    model.build()
    model.set_weights(load_weights(str(path)))
    return model


def _chunked(
    network: Callable[[tf.Tensor], list[tf.Tensor]],
    image: tf.Tensor,
    boxes: tf.Tensor,
    bounds: tf.Tensor,
    size: int,
    widths: tuple[int, ...],
) -> tuple[tf.Tensor, ...]:
    """Crop every box to ``size`` x ``size`` (package's crop_and_resize) and run ``network``.

    Chunk ``i`` is ``boxes[bounds[i]:bounds[i + 1]]``; the outputs are concatenated back.
    """
    count = tf.shape(bounds)[0] - 1
    outputs = tuple(
        tf.TensorArray(tf.float32, size=count, infer_shape=False, element_shape=[None, w])
        for w in widths
    )

    def chunk(i: tf.Tensor, *outputs: tf.TensorArray) -> tuple:
        part = boxes[bounds[i] : bounds[i + 1]]
        indices = tf.zeros(tf.shape(part)[:1], dtype=tf.int32)
        patches = tf.image.crop_and_resize(image, part, indices, [size, size])
        results = network(patches)
        return i + 1, *(out.write(i, r) for out, r in zip(outputs, results, strict=True))

    _, *outputs = tf.while_loop(
        lambda i, *_: i < count, chunk, [0, *outputs], parallel_iterations=_PARALLEL
    )
    return tuple(out.concat() for out in outputs)


def _crop_inputs(boxes: np.ndarray, height: int, width: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Return crop_and_resize boxes (normalised exactly as the package does) and chunk bounds."""
    coords = boxes[:, [2, 1, 4, 3]] / np.asarray([[height, width, height, width]])
    count = boxes.shape[0]
    chunks = max(1, -(-count // _CHUNK))
    bounds = np.arange(chunks + 1) * count // chunks  # near-equal chunks, none of one row
    return tf.constant(coords.astype(np.float32)), tf.constant(bounds.astype(np.int32))


def _faces(boxes: np.ndarray, height: int, width: int) -> list[Face]:
    """Clip corners to the image as the package's ``limit_bboxes`` and build ``Face``s."""
    x1 = np.minimum(np.maximum(boxes[:, 1], 0), width - 1)
    y1 = np.minimum(np.maximum(boxes[:, 2], 0), height - 1)
    x2 = np.minimum(np.maximum(boxes[:, 3], 0), width - 1)
    y2 = np.minimum(np.maximum(boxes[:, 4], 0), height - 1)
    marks = np.stack([boxes[:, 6:11], boxes[:, 11:16]], axis=-1).astype(np.float32)
    return [
        Face(
            box=(float(x1[k]), float(y1[k]), float(x2[k] - x1[k]), float(y2[k] - y1[k])),
            confidence=float(boxes[k, 5]),
            landmarks=marks[k],
        )
        for k in range(boxes.shape[0])
    ]
