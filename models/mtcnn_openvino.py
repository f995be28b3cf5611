"""MTCNN's three networks on OpenVINO, built from the ``mtcnn`` package's weight files.

The package (1.0.0) keeps each network's Keras weights in a joblib file
(``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``); the file is found with
``importlib.util.find_spec`` (the package, which imports TensorFlow, is never imported) and read
with ``joblib``. The layers are rebuilt with OpenVINO's operations in the order of the package's
``call`` methods:

- convolutions ``valid``, stride 1, kernels HWIO -> OIHW;
- PReLU with one slope per channel (RNet's and ONet's dense PReLU: one per unit), OpenVINO's
  ``PRelu``, fused into the layer before it;
- max pooling with Keras' ``same`` (TensorFlow's: the extra padding row at the end, padded
  cells ignored) or ``valid`` padding;
- ``Permute((2, 1, 3))`` + ``Flatten``: the NHWC map read in (W, H, C) order before the dense
  layers;
- the two-class softmax's face probability: for PNet the sigmoid of the face-minus-background
  logit (one 1x1 output channel, as ``models.detector_tf.FaceLogit`` does it), for RNet and ONet the
  softmax itself.

Inputs are NHWC uint8 images (PNet, any size) or float32 patches already normalised to
``(v - 127.5) / 128`` (RNet 24x24, ONet 48x48, any count); PNet's normalisation is folded into
its first convolution.

Why not TensorFlow at serving time: per call, TensorFlow's executor costs about as much as
these small networks' arithmetic (RNet's 135 candidates of the astronaut: 11 ms against a few
ms of work), its import and graph tracing take seconds of start-up and hundreds of MB, and its
thread pool competes with the other runtimes'. The TensorFlow networks (``models.detector_tf``)
stay as the reference the tests compare these against.

Thread safety: ``OpenVINONetworks``' methods may be called from several threads
(``models.openvino_net.CompiledNetwork``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import os
from collections.abc import Generator, Iterator
from pathlib import Path

import joblib
import numpy as np
import openvino as ov
import openvino.opset13 as ops

from models.area import area_levels
from models.detector import _CELL, Patches, Pyramid
from models.openvino_net import ShapeCompiled, run_all, run_each

_NORM_SHIFT = 127.5
_NORM_SCALE = 0.0078125  # 1 / 128


class MTCNNWeightsError(RuntimeError):
    """The mtcnn package's weight files are missing or not the expected layers."""


def weights_folder() -> Path:
    """The ``mtcnn`` package's ``assets/weights`` folder, located without importing it.

    Raises:
        MTCNNWeightsError: the package is not installed or has no weight files.
    """
    spec = importlib.util.find_spec("mtcnn")
    for root in list(spec.submodule_search_locations or []) if spec else []:
        folder = Path(root) / "assets" / "weights"
        if (folder / "pnet.lz4").is_file():
            return folder
    raise MTCNNWeightsError("mtcnn's weight files not found: install mtcnn==1.0.0")


def load_weights(name: str, folder: Path | None = None) -> list[np.ndarray]:
    """Read one network's Keras weight list (``pnet``, ``rnet`` or ``onet``)."""
    path = (folder or weights_folder()) / f"{name}.lz4"
    try:
        weights = joblib.load(path)
    except (OSError, ValueError, EOFError) as exc:
        raise MTCNNWeightsError(f"cannot read {path}: {exc}") from None
    return [np.asarray(w, dtype=np.float32) for w in weights]


def _const(value: np.ndarray) -> ov.Node:
    return ops.constant(np.ascontiguousarray(value, dtype=np.float32))


def _conv(x: ov.Node, kernel: np.ndarray, bias: np.ndarray) -> ov.Node:
    """Keras ``Conv2D`` (valid, stride 1) on an NCHW tensor; ``kernel`` is HWIO."""
    y = ops.convolution(x, _const(kernel.transpose(3, 2, 0, 1)), [1, 1], [0, 0], [0, 0], [1, 1])
    return ops.add(y, _const(bias.reshape(1, -1, 1, 1)))


def _prelu(x: ov.Node, alpha: np.ndarray) -> ov.Node:
    """Keras ``PReLU`` (``relu(x) - alpha * relu(-x)``), one slope per channel (or dense
    unit): OpenVINO's ``PRelu``, ``x`` where positive and ``alpha * x`` elsewhere (PNet's and
    RNet's outputs bit-identical to the written-out form, ONet's within 1.2e-7). The CPU
    plugin fuses it into the convolution or matmul before it. Written out as ``relu``,
    ``min``, a multiply and an add, it ran as two more passes over every activation, which
    took about as long as the convolutions themselves (PNet on the astronaut's 308x308 level,
    one thread, AVX2 VM: 16.1 ms written out, 10.9 fused; RNet on 64 patches 8.7 -> 6.4 ms,
    ONet on 16 11.2 -> 9.4).
    """
    return ops.prelu(x, _const(alpha.reshape(-1)))


def _pool(x: ov.Node, size: int, same: bool) -> ov.Node:
    """Keras ``MaxPooling2D`` with stride 2."""
    pad = "same_upper" if same else "valid"
    return ops.max_pool(x, [2, 2], [1, 1], [0, 0], [0, 0], [size, size], "floor", pad).output(0)


def _dense(x: ov.Node, weights: np.ndarray, bias: np.ndarray) -> ov.Node:
    return ops.add(ops.matmul(x, _const(weights), False, False), _const(bias))


def _flatten_whc(x: ov.Node) -> ov.Node:
    """Keras ``Permute((2, 1, 3))`` then ``Flatten`` of the NHWC map, from NCHW: (N, W*H*C)."""
    x = ops.transpose(x, ops.constant(np.array([0, 3, 2, 1], dtype=np.int64)))
    return ops.reshape(x, ops.constant(np.array([0, -1], dtype=np.int64)), True)


def _nchw(x: ov.Node) -> ov.Node:
    return ops.transpose(x, ops.constant(np.array([0, 3, 1, 2], dtype=np.int64)))


def _face_probability(x: ov.Node, kernel: np.ndarray, bias: np.ndarray) -> ov.Node:
    """The face output of a two-class 1x1 softmax convolution: sigmoid(face - background)."""
    diff_kernel = kernel[..., 1:] - kernel[..., :1]
    diff_bias = bias[1:] - bias[:1]
    return ops.sigmoid(_conv(x, diff_kernel, diff_bias))


def pnet_model(w: list[np.ndarray]) -> ov.Model:
    """PNet on a (1, H, W, 3) uint8 image: [regression (1, h, w, 4), face prob (1, h, w)]."""
    image = ops.parameter([1, -1, -1, 3], ov.Type.u8, name="image")
    x = _nchw(ops.convert(image, ov.Type.f32))
    # The input's normalisation, (v - 127.5) / 128, folded into the first convolution (valid,
    # so every tap sees a pixel): conv(W, (v - s) * k) + b = conv(W * k, v) + b - s * k * sum(W).
    # The same values to float32 rounding (up to 3e-6 on a level's outputs); as its own pass
    # over the level it took 10% of the call (10.9 -> 9.8 ms on that level).
    kernel = w[0] * np.float32(_NORM_SCALE)
    bias = w[1] - np.float32(_NORM_SHIFT * _NORM_SCALE) * w[0].sum(axis=(0, 1, 2))
    x = _pool(_prelu(_conv(x, kernel, bias), w[2]), 2, same=True)
    x = _prelu(_conv(x, w[3], w[4]), w[5])
    x = _prelu(_conv(x, w[6], w[7]), w[8])
    reg = ops.transpose(_conv(x, w[9], w[10]), ops.constant(np.array([0, 2, 3, 1], np.int64)))
    prob = ops.squeeze(_face_probability(x, w[11], w[12]), ops.constant(np.array([1], np.int64)))
    return ov.Model([reg.output(0), prob.output(0)], [image], "pnet")


def rnet_model(w: list[np.ndarray]) -> ov.Model:
    """RNet on (N, 24, 24, 3) normalised patches: [regression (N, 4), probabilities (N, 2)]."""
    patches = ops.parameter([-1, 24, 24, 3], ov.Type.f32, name="patches")
    x = _nchw(patches)
    x = _pool(_prelu(_conv(x, w[0], w[1]), w[2]), 3, same=True)
    x = _pool(_prelu(_conv(x, w[3], w[4]), w[5]), 3, same=False)
    x = _prelu(_conv(x, w[6], w[7]), w[8])
    x = _prelu(_dense(_flatten_whc(x), w[9], w[10]), w[11])
    reg = _dense(x, w[12], w[13])
    prob = ops.softmax(_dense(x, w[14], w[15]), 1)
    return ov.Model([reg.output(0), prob.output(0)], [patches], "rnet")


def onet_model(w: list[np.ndarray]) -> ov.Model:
    """ONet on (N, 48, 48, 3) normalised patches: [regression (N, 4), landmarks (N, 10),
    probabilities (N, 2)]."""
    patches = ops.parameter([-1, 48, 48, 3], ov.Type.f32, name="patches")
    x = _nchw(patches)
    x = _pool(_prelu(_conv(x, w[0], w[1]), w[2]), 3, same=True)
    x = _pool(_prelu(_conv(x, w[3], w[4]), w[5]), 3, same=False)
    x = _pool(_prelu(_conv(x, w[6], w[7]), w[8]), 2, same=True)
    x = _prelu(_conv(x, w[9], w[10]), w[11])
    x = _prelu(_dense(_flatten_whc(x), w[12], w[13]), w[14])
    reg = _dense(x, w[15], w[16])
    marks = _dense(x, w[17], w[18])
    prob = ops.softmax(_dense(x, w[19], w[20]), 1)
    return ov.Model([reg.output(0), marks.output(0), prob.output(0)], [patches], "onet")


def _bounded(model: ov.Model, size: int, chunk: int) -> ov.Model:
    """The patch network with its batch bounded to ``chunk``: the intermediate buffers an infer
    request keeps for reuse stay the size of one chunk, not of the largest call seen."""
    model.reshape({model.input(0): ov.PartialShape([ov.Dimension(1, chunk), size, size, 3])})
    return model


def pnet_bands(height: int, width: int, max_pixels: int) -> list[tuple[int, int]]:
    """Cut a pyramid level into bands of input rows ``[first, end)`` of at most about
    ``max_pixels`` pixels, whose PNet outputs, one after the other, are the whole level's.

    PNet's output rows ``[a, b)`` read input rows ``[2a, 2b + 10)`` (a 12-row window, stride
    2); a band starting at an even row pools the same row pairs as the whole level, so its
    outputs are those rows of the whole level's. A level under ``max_pixels`` is one band.
    """
    rows = (height - 2 + 1) // 2 - 4  # PNet's output rows (models.detector._pnet_output_shapes)
    step = max(1, (max_pixels // max(1, width) - (_CELL - 2)) // 2)
    if rows <= step:
        return [(0, height)]
    return [(2 * a, min(height, 2 * min(a + step, rows) + _CELL - 2)) for a in range(0, rows, step)]


class PatchNetwork:
    """RNet or ONet over any number of patches, in chunks of at most ``chunk``.

    Up to one chunk runs as one call on ``threads`` threads; more run chunk by chunk,
    ``threads`` chunks side by side on as many single-threaded streams (famous-selfie's 1317
    RNet candidates, 2-core VM: 56 ms in chunks of 64 against 57 ms in one call; its 332 ONet
    candidates 87 ms in chunks of 16 against 95; the astronaut's 7 ONet candidates 1.9 ms in
    one call on two threads against 4.1 on one). Bounded chunks also bound memory: one call on
    all of famous-selfie's candidates left the service 620 MB larger.

    Both run on models compiled for the batch sizes they keep seeing (``ShapeCompiled``: a
    full chunk always, and an image's remainder when the same image comes again), at most
    ``SHAPES`` each; a patch's outputs do not depend on the batch it is in (RNet) or on the
    model being compiled for its batch size (both).
    """

    SHAPES = 8

    def __init__(
        self,
        model: ov.Model,
        size: int,
        chunk: int,
        threads: int,
        compiler: concurrent.futures.Executor,
    ) -> None:
        self.chunk = chunk
        bounded = _bounded(model, size, chunk)
        self._whole = ShapeCompiled(bounded, threads, 1, compiler, capacity=self.SHAPES)
        self._split = ShapeCompiled(
            bounded.clone(), threads, threads, compiler, capacity=self.SHAPES
        )

    def __call__(self, patches: Patches) -> list[np.ndarray]:
        if len(patches) <= self.chunk:
            return self._whole(patches.cut())
        # Each chunk is cut as its run can start: the cutting overlaps the runs before it.
        parts = (patches.cut(i, i + self.chunk) for i in range(0, len(patches), self.chunk))
        results = run_all(self._split, parts, 2 * self._split.streams)
        return [np.concatenate(outputs) for outputs in zip(*results, strict=True)]


class OpenVINONetworks:
    """PNet, RNet and ONet compiled for the CPU (``models.detector.Networks``).

    PNet: the largest level is resized first (``models.area``) and its run started, the other
    levels are resized while it runs, and each level (or band of one, ``pnet_bands``) is its
    own run (largest first, at most ``2 * threads`` going: ``models.openvino_net.run_each``)
    on a model with ``threads`` single-threaded streams, compiled for each recurring level
    shape (``ShapeCompiled``); each level's maps go to the detector's candidate handling as
    soon as they are done, while the later levels run. RNet and ONet in chunks
    (``PatchNetwork``), each chunk cut while the runs before it go. Measured on the 2-core VM
    (same process, alternating; ms): resize + PNet astronaut 22 / famous-selfie 77 with every
    level run at once against 23-29 / 90-113 for the levels one after another on two threads
    (TensorFlow's banded call: 26 / 83); famous-selfie's 1317 RNet and 332 ONet candidates 56
    and 87 ms (TensorFlow 65 / 108); the astronaut's 7 ONet candidates 1.9 ms (TensorFlow
    5.2). Overlapping the resizing, the cutting and the candidate handling with the runs: the
    astronaut's whole detection 26.4 -> 25.0 and 25.9 -> 24.8 ms, famous-selfie's 167 -> 165
    and 172 -> 169 ms (two processes, each alternating the two flows, medians of 100 and 20).
    """

    RNET_CHUNK = 64
    ONET_CHUNK = 16
    # PNet runs on bands of at most about this many input pixels (whole levels below it): an
    # infer request keeps buffers the size of the largest input it has seen, and PNet's first
    # activations are 13 floats a pixel (a 40 MP image's first level: 14 MP). Bands bound the
    # service's peak memory: 40 MP peaked at 4988 MB on whole levels.
    BAND_PIXELS = 1_000_000

    name = "openvino"

    def __init__(self, threads: int = 0, folder: Path | None = None) -> None:
        folder = folder or weights_folder()
        self.threads = threads or os.cpu_count() or 1
        self._compiler = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ov-compile")
        self._pnet = ShapeCompiled(
            pnet_model(load_weights("pnet", folder)),
            self.threads,
            streams=self.threads,
            compiler=self._compiler,
        )
        self._rnet = PatchNetwork(
            rnet_model(load_weights("rnet", folder)),
            24,
            self.RNET_CHUNK,
            self.threads,
            self._compiler,
        )
        self._onet = PatchNetwork(
            onet_model(load_weights("onet", folder)),
            48,
            self.ONET_CHUNK,
            self.threads,
            self._compiler,
        )

    def pnet_levels(
        self, image: np.ndarray, levels: Pyramid
    ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
        """``models.detector.Networks.pnet_levels``: the largest level is resized and started
        first, and the other levels are resized while it runs; each level's maps are yielded
        as soon as its bands are done, while the later levels' runs go on."""
        shapes = [(int(h), int(w)) for h, w in levels.shapes]  # largest first
        cuts = [pnet_bands(h, w, self.BAND_PIXELS) for h, w in shapes]

        def bands() -> Iterator[np.ndarray]:
            for part in (slice(0, 1), slice(1, None)):
                for level, rows in zip(area_levels(image, shapes[part]), cuts[part], strict=True):
                    for first, end in rows:
                        yield level[None, first:end]

        with contextlib.closing(run_each(self._pnet, bands(), 2 * self.threads)) as outputs:
            for rows in cuts:
                parts = [next(outputs) for _ in rows]
                reg = np.concatenate([r for r, _ in parts], axis=1)[0]
                prob = np.concatenate([p for _, p in parts], axis=1)[0]
                yield prob, reg

    def rnet(self, patches: Patches) -> list[np.ndarray]:
        return self._rnet(patches)

    def onet(self, patches: Patches) -> list[np.ndarray]:
        return self._onet(patches)

    def warm_up(self) -> None:
        image = np.zeros((64, 64, 3), np.uint8)
        for network, size in ((self._rnet, 24), (self._onet, 48)):
            for count in (2, network.chunk * self.threads):
                windows = np.tile(np.array([[0, 0, 30, 30]], np.int64), (count, 1))
                network(Patches(image, windows, size))
