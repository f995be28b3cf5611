"""MTCNN's three networks on TensorFlow: the ``mtcnn`` package's own Keras models.

The reference backend of ``models.detector.MTCNNDetector`` (``backend="tensorflow"``): the
package's networks and weights, run as its ``call`` methods run them, with two rewrites that
change speed, not values (``prelu``, ``FaceLogit``). The tests compare the OpenVINO networks
(``models.mtcnn_openvino``, the serving default) against these.

Speed: PNet runs over every pyramid level in one compiled TensorFlow call (the largest levels
cut into bands of rows so that both cores share the work, ``models.detector._pnet_tiles``),
RNet and ONet over all their candidates in one call each (in cache-sized chunks).

Threads: ``inter_op_threads`` inter-op threads and one intra-op thread (set when the first
backend is built, before TensorFlow runs an op). MTCNN's convolutions are small (3 to 64
channels): splitting one op over the cores gains nothing, but the pyramid bands and the
RNet/ONet chunks are independent iterations of ``tf.while_loop``s that run concurrently on the
inter-op pool (2-core VM: detect 15.5 ms astronaut, 68 ms famous-selfie with intra 1 / inter 2,
against 20 and 82 ms with intra 2 / inter 1).

Thread safety: the traced functions may be called from several threads once built.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
from mtcnn.network.onet import ONet  # noqa: E402
from mtcnn.network.pnet import PNet  # noqa: E402
from mtcnn.network.rnet import RNet  # noqa: E402
from mtcnn.utils.tensorflow import load_weights  # noqa: E402

from models.area import area_levels  # noqa: E402
from models.detector import (  # noqa: E402
    _NORM_SCALE,
    _NORM_SHIFT,
    _ONET_SIZE,
    _RNET_SIZE,
    Patches,
    Pyramid,
)

log = logging.getLogger(__name__)

# RNet/ONet candidates go through the network in chunks of about this many: small enough for the
# first layers' activations to stay in cache (2-3x faster than one big batch on CPU), large
# enough that no chunk has a single row (a batch of one takes another, not bit-identical path).
_CHUNK = 64
_PARALLEL = 8  # while_loop iterations (pyramid bands, chunks) that may run concurrently

_FLAT_SPEC = tf.TensorSpec([None], tf.uint8)
_SIZES_SPEC = tf.TensorSpec([None, 2], tf.int32)
_OFFSETS_SPEC = tf.TensorSpec([None], tf.int64)
_TILES_SPEC = tf.TensorSpec([None, 3], tf.int32)
_BOUNDS_SPEC = tf.TensorSpec([None], tf.int32)


def _patches_spec(size: int) -> tf.TensorSpec:
    return tf.TensorSpec([None, size, size, 3], tf.float32)


def configure(inter_op_threads: int) -> None:
    """One intra-op thread, ``inter_op_threads`` inter-op threads (0: the CPU count); a no-op
    once TensorFlow has started (tests build several detectors in one process)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(
            inter_op_threads or os.cpu_count() or 1
        )
    except RuntimeError:
        log.debug("TensorFlow threads already configured")


def _chunk_bounds(count: int) -> tf.Tensor:
    """Near-equal chunks of about ``_CHUNK`` rows, none of one row (when count > 1)."""
    chunks = max(1, -(-count // _CHUNK))
    return tf.constant((np.arange(chunks + 1) * count // chunks).astype(np.int32))


class TensorFlowNetworks:
    """PNet, RNet and ONet as the package's Keras models, each traced into one TF function."""

    name = "tensorflow"

    def __init__(self, inter_op_threads: int = 0) -> None:
        configure(inter_op_threads)
        started = time.perf_counter()
        weights = importlib.resources.files("mtcnn.assets.weights")
        self._pnet = _load(PNet(), weights / "pnet.lz4")
        self._rnet = _load(RNet(), weights / "rnet.lz4")
        self._onet = _load(ONet(), weights / "onet.lz4")
        self._pnet_face = FaceLogit.of(self._pnet.conv4_2)
        self._pnet_fn = tf.function(
            self._pnet_graph,
            input_signature=[_FLAT_SPEC, _SIZES_SPEC, _OFFSETS_SPEC, _TILES_SPEC],
        )
        self._rnet_fn = tf.function(
            self._rnet_graph, input_signature=[_patches_spec(_RNET_SIZE), _BOUNDS_SPEC]
        )
        self._onet_fn = tf.function(
            self._onet_graph, input_signature=[_patches_spec(_ONET_SIZE), _BOUNDS_SPEC]
        )
        # Requests call the traced concrete functions: a tf.function call binds and checks its
        # arguments in Python each time, about 0.25 ms more per call (three calls an image).
        self._pnet_call = self._pnet_fn.get_concrete_function()
        self._rnet_call = self._rnet_fn.get_concrete_function()
        self._onet_call = self._onet_fn.get_concrete_function()
        log.info("MTCNN networks (TensorFlow) loaded in %.2f s", time.perf_counter() - started)

    def pnet_levels(
        self, image: np.ndarray, levels: Pyramid
    ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
        """Resize the image to every level and run PNet on all of them in one call; then each
        level's face probabilities (h, w) and box regressions (h, w, 4), largest first."""
        shapes = [(int(h), int(w)) for h, w in levels.shapes]
        flat = np.concatenate([level.ravel() for level in area_levels(image, shapes)])
        probs, regs = self._pnet_call(
            tf.constant(flat),
            tf.constant(levels.shapes),
            tf.constant(levels.offsets),
            tf.constant(levels.tiles),
        )
        probs, regs = probs.numpy(), regs.numpy()  # every level's, row-major, one after another
        start = 0
        for h, w in levels.out_shapes:
            end = start + int(h) * int(w)
            yield probs[start:end].reshape(h, w), regs[start:end].reshape(h, w, 4)
            start = end

    def rnet(self, patches: Patches) -> list[np.ndarray]:
        """[regression (N, 4), probabilities (N, 2)] of the 24x24 patches."""
        batch = tf.constant(patches.cut())
        return [t.numpy() for t in self._rnet_call(batch, _chunk_bounds(len(patches)))]

    def onet(self, patches: Patches) -> list[np.ndarray]:
        """[regression (N, 4), landmarks (N, 10), probabilities (N, 2)] of the 48x48 patches."""
        batch = tf.constant(patches.cut())
        return [t.numpy() for t in self._onet_call(batch, _chunk_bounds(len(patches)))]

    def warm_up(self) -> None:
        for call, size in ((self._rnet_call, _RNET_SIZE), (self._onet_call, _ONET_SIZE)):
            call(tf.zeros([2, size, size, 3], tf.float32), _chunk_bounds(2))

    def _pnet_graph(
        self, flat: tf.Tensor, sizes: tf.Tensor, offsets: tf.Tensor, tiles: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        """Run PNet on every pyramid level in one call.

        ``flat`` holds the uint8 levels one after the other (level ``i`` of shape
        ``sizes[i] + (3,)`` from ``offsets[i]``); PNet runs on the ``tiles`` side by side: rows
        ``(level, first input row, end input row)`` from ``_pnet_tiles``.

        Returns the tiles' face probabilities and box regressions, each tile flattened
        row-major and concatenated: the tiles are in level and row order, so this is every
        level's map in turn.
        """
        jobs = tf.shape(tiles)[0]
        logits = tf.TensorArray(tf.float32, size=jobs, infer_shape=False, element_shape=[None])
        regs = tf.TensorArray(tf.float32, size=jobs, infer_shape=False, element_shape=[None, 4])

        def tile(j: tf.Tensor, logits: tf.TensorArray, regs: tf.TensorArray) -> tuple:
            level, first, end = tiles[j, 0], tiles[j, 1], tiles[j, 2]
            width = tf.cast(sizes[level, 1], tf.int64)
            start = offsets[level] + tf.cast(first, tf.int64) * width * 3
            stop = offsets[level] + tf.cast(end, tf.int64) * width * 3
            rows = tf.reshape(flat[start:stop], [1, end - first, sizes[level, 1], 3])
            # Exact in float32 (steps of 1/128), so the reference's float64 values.
            rows = (tf.cast(rows, tf.float32) - _NORM_SHIFT) * _NORM_SCALE
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
        return tf.math.sigmoid(logits.concat()), regs.concat()

    def _rnet_graph(self, patches: tf.Tensor, bounds: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return _chunked(lambda x: rnet_forward(self._rnet, x), patches, bounds, (4, 2))

    def _onet_graph(self, patches: tf.Tensor, bounds: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return _chunked(lambda x: onet_forward(self._onet, x), patches, bounds, (4, 10, 2))


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
    patches: tf.Tensor,
    bounds: tf.Tensor,
    widths: tuple[int, ...],
) -> tuple[tf.Tensor, ...]:
    """Run ``network`` on the patches chunk by chunk; the outputs are concatenated back.

    Chunk ``i`` is ``patches[bounds[i]:bounds[i + 1]]``.
    """
    count = tf.shape(bounds)[0] - 1
    outputs = tuple(
        tf.TensorArray(tf.float32, size=count, infer_shape=False, element_shape=[None, w])
        for w in widths
    )

    def chunk(i: tf.Tensor, *outputs: tf.TensorArray) -> tuple:
        results = network(patches[bounds[i] : bounds[i + 1]])
        return i + 1, *(out.write(i, r) for out, r in zip(outputs, results, strict=True))

    _, *outputs = tf.while_loop(
        lambda i, *_: i < count, chunk, [0, *outputs], parallel_iterations=_PARALLEL
    )
    return tuple(out.concat() for out in outputs)
