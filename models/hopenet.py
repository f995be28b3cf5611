"""Hopenet head-pose estimator (Ruiz et al. 2018) in plain PyTorch, official snapshot format.

The network is a ResNet-50 (Bottleneck blocks ``[3, 4, 6, 3]``, stride on the 3x3 convolution as
in torchvision) followed by three ``Linear(2048, 66)`` classification heads over 3-degree bins
from -99 degrees. Module names match the state-dict keys of the official deep-head-pose
snapshots (``hopenet_robust_alpha1.pkl``): ``conv1``, ``bn1``, ``layer1..4`` with
``downsample.0``/``downsample.1``, ``fc_yaw``, ``fc_pitch``, ``fc_roll`` and the vestigial
``fc_finetune`` (unused at inference, kept so that strict loading accepts the file).

torchvision is deliberately not used: its PyPI wheels are built against CUDA torch and fail to
import with the CPU build.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from models.ort import OrtNetwork, run_in_chunks
from models.pose import binned_expectation
from models.types import Box, HeadPose

log = logging.getLogger(__name__)

NUM_BINS = 66
BIN_WIDTH = 3.0
BIN_OFFSET = -99.0
INPUT_SIZE = 224
CROP_MARGIN = 30
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class SnapshotError(ValueError):
    """A pose snapshot is missing, unreadable or does not fit the network."""


class Bottleneck(nn.Module):
    """ResNet bottleneck block with torchvision's attribute names (stride on the 3x3 conv)."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class Hopenet(nn.Module):
    """ResNet-50 with three 66-bin heads; ``forward`` returns the (yaw, pitch, roll) logits.

    The logits are in Hopenet's own convention (300W-LP / AFLW2000: +yaw turns toward the
    image's left); ``HopenetEstimator`` converts to the API convention.
    """

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), num_bins: int = NUM_BINS) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        # The official AvgPool2d(7) equals a global average for 224x224 inputs.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        features = 512 * Bottleneck.expansion
        self.fc_yaw = nn.Linear(features, num_bins)
        self.fc_pitch = nn.Linear(features, num_bins)
        self.fc_roll = nn.Linear(features, num_bins)
        # Vestigial layer of the official code: present in its snapshots, unused here.
        self.fc_finetune = nn.Linear(features + 3, 3)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes,
                    planes * Bottleneck.expansion,
                    kernel_size=1,
                    stride=stride,
                    bias=False,
                ),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the raw (N, 66) yaw, pitch and roll logits for a (N, 3, 224, 224) batch."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc_yaw(x), self.fc_pitch(x), self.fc_roll(x)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """Summarise ``torch.load``'s (often multi-paragraph) error on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        # weights_only refusals bury the reason under a generic paragraph
        if "WeightsUnpickler error:" in line:
            rest = line.split("WeightsUnpickler error:", 1)[1].strip()
            lines = [rest] if rest else lines[i + 1 : i + 2]
            break
    text = lines[0] if lines else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _unwrap_state_dict(obj: Any, path: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise SnapshotError(f"Hopenet snapshot {path}: not a state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        return {k.removeprefix("module."): v for k, v in obj.items()}
    return dict(obj)


def load_snapshot(model: nn.Module, snapshot: str | os.PathLike[str]) -> None:
    """Load an official deep-head-pose snapshot into ``model`` strictly.

    Accepts a bare state dict or one wrapped as ``{"state_dict": ...}``, with or without the
    ``module.`` prefix of DataParallel snapshots. Snapshots saved before PyTorch 0.4.1 lack the
    BatchNorm ``num_batches_tracked`` buffers; PyTorch fills those in (they are unused in eval).

    Args:
        model: a ``Hopenet``.
        snapshot: path of the ``.pkl``/``.pth`` file (``torch.save`` format).

    Raises:
        SnapshotError: the file is missing or unreadable, or its keys or shapes do not fit.
    """
    path = os.fspath(snapshot)
    if not Path(path).is_file():
        problem = "not a file" if Path(path).exists() else "no such file"
        raise SnapshotError(f"Hopenet snapshot {path}: {problem}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for foreign files
        raise SnapshotError(
            f"Hopenet snapshot {path}: not a readable torch state dict ({_one_line(exc)})"
        ) from exc
    state = _unwrap_state_dict(obj, path)
    expected = model.state_dict()
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if wrong:
        raise SnapshotError(
            f"Hopenet snapshot {path}: {len(wrong)} tensor(s) of the wrong shape, e.g. {wrong[0]}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        detail = "; ".join(
            part
            for part in (
                f"missing {len(missing)} key(s) e.g. {missing[0]}" if missing else "",
                f"unexpected {len(unexpected)} key(s) e.g. {unexpected[0]}" if unexpected else "",
            )
            if part
        )
        raise SnapshotError(
            f"Hopenet snapshot {path}: does not fit the network ({detail or exc})"
        ) from exc


def margin_crop(image: np.ndarray, box: Box, margin: int = CROP_MARGIN) -> np.ndarray:
    """Cut the face box grown by ``margin`` pixels on every side, clipped to the image.

    The original service cut ``(x - 30, y - 30, x + w + 30, y + h + 30)``. The crop is at least
    one pixel even for a degenerate box.

    Args:
        image: (H, W, 3) uint8 RGB.
        box: ``(x, y, w, h)`` in pixels of ``image``.
        margin: pixels added on each side.

    Returns:
        A view of ``image``.
    """
    height, width = image.shape[:2]
    x, y, w, h = box
    x0 = min(max(round(x - margin), 0), width - 1)
    y0 = min(max(round(y - margin), 0), height - 1)
    x1 = min(max(round(x + w + margin), x0 + 1), width)
    y1 = min(max(round(y + h + margin), y0 + 1), height)
    return image[y0:y1, x0:x1]


def preprocess(image: np.ndarray, boxes: Sequence[Box], margin: int = CROP_MARGIN) -> np.ndarray:
    """Turn the faces of one image into a Hopenet input batch.

    Each face is a ``margin_crop``, resized (squashed) to 224x224 (area interpolation when
    shrinking, bilinear when enlarging), scaled to [0, 1] and normalised with the ImageNet
    mean/std per RGB channel.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: face boxes ``(x, y, w, h)`` in pixels.
        margin: pixels added on each side of every box.

    Returns:
        (N, 3, 224, 224) float32, RGB channel order.
    """
    batch = np.empty((len(boxes), INPUT_SIZE, INPUT_SIZE, 3), dtype=np.float32)
    for i, box in enumerate(boxes):
        crop = margin_crop(image, box, margin)
        shrink = crop.shape[0] * crop.shape[1] >= INPUT_SIZE * INPUT_SIZE
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        batch[i] = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=interp)
    batch *= 1.0 / 255.0
    batch -= IMAGENET_MEAN
    batch /= IMAGENET_STD
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class HopenetEstimator:
    """Head pose from an official Hopenet snapshot, all faces of an image in one forward pass.

    Preprocessing follows the original ``mtcnn_demo`` service: an RGB crop of the face box with
    a 30 px margin on every side (clipped to the image here; the original padded with black
    where the margin left the image), resized to 224x224, ImageNet mean/std normalisation.

    Decoding: ``angle = sum(softmax(logits) * bin_index) * 3 - 99`` per head.

    Sign convention: Hopenet is trained on 300W-LP and evaluated on AFLW2000, whose +yaw turns
    toward the image's *left*. The API convention (``models.types``) has yaw > 0 toward the
    image's right, pitch > 0 looking up, roll > 0 clockwise as seen, so
    ``api_yaw = -hopenet_yaw`` while pitch and roll are passed through unchanged (as the
    original service did).
    """

    name = "hopenet"
    effective_precision = "f32"  # ONNX Runtime and torch run it in float32 on every CPU

    def __init__(
        self,
        snapshot: str | os.PathLike[str],
        *,
        margin: int = CROP_MARGIN,
        channels_last: bool = True,
        max_batch: int = 8,
        runtime: str = "onnxruntime",
    ) -> None:
        """Build the network and load ``snapshot``.

        Args:
            snapshot: path of an official deep-head-pose snapshot (``torch.save`` state dict).
            margin: pixels added around each face box before resizing.
            channels_last: run the convolutions in NHWC memory format (measured about 1.1x
                faster for one face and 1.5-2x for 22 faces on CPU, float32).
            max_batch: faces per forward pass at most (bounds memory, about 25 MB a face); an
                image with more faces takes several passes. With ONNX Runtime it applies below
                ``models.ort.SPLIT_FROM`` faces; from there on every face is its own
                single-threaded pass, two side by side (22 faces: 482 ms, against 543 ms in
                passes of 2 or 4).
            runtime: ``onnxruntime`` (default; the network exported at start-up, see
                ``models.ort``: 22 faces about 1.5x faster than torch channels_last on the
                2-core development VM) or ``torch``. ``channels_last`` applies to ``torch``.

        Raises:
            SnapshotError: the snapshot is missing, unreadable or does not fit the network.
        """
        if runtime not in ("onnxruntime", "torch"):
            raise ValueError(f"runtime must be 'onnxruntime' or 'torch', not {runtime!r}")
        self.snapshot = os.fspath(snapshot)
        self.margin = margin
        self.channels_last = channels_last
        self.max_batch = max(1, int(max_batch))
        self.runtime = runtime
        model = Hopenet()
        load_snapshot(model, self.snapshot)
        model.eval()
        self._ort: OrtNetwork | None = None
        if runtime == "onnxruntime":
            sample = torch.zeros((2, 3, INPUT_SIZE, INPUT_SIZE), dtype=torch.float32)
            self._ort = OrtNetwork(model, sample, ["yaw", "pitch", "roll"])
        elif channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        log.info(
            "Hopenet loaded from %s (runtime %s, channels_last=%s)",
            self.snapshot,
            runtime,
            channels_last,
        )

    def logits(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run the torch network on a preprocessed (N, 3, 224, 224) batch; return numpy logits."""
        x = torch.from_numpy(batch)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            yaw, pitch, roll = self.model(x)
        return yaw.numpy(), pitch.numpy(), roll.numpy()

    def estimate(self, image: np.ndarray, boxes: Sequence[Box]) -> list[HeadPose]:
        """Return one pose per box.

        Args:
            image: (H, W, 3) uint8 RGB image.
            boxes: face boxes ``(x, y, w, h)`` in pixels of ``image``.

        Returns:
            One ``HeadPose`` per box, same order, degrees, API sign convention; ``[]`` (without
            running the network) for no boxes.
        """
        if len(boxes) == 0:
            return []
        batch = preprocess(image, boxes, self.margin)
        if self._ort is not None:
            yaw_l, pitch_l, roll_l = self._ort.run_chunked(batch, self.max_batch)
        else:
            yaw_l, pitch_l, roll_l = run_in_chunks(self.logits, batch, self.max_batch)
        yaw = binned_expectation(yaw_l, BIN_WIDTH, BIN_OFFSET)
        pitch = binned_expectation(pitch_l, BIN_WIDTH, BIN_OFFSET)
        roll = binned_expectation(roll_l, BIN_WIDTH, BIN_OFFSET)
        return [
            HeadPose(yaw=-float(y), pitch=float(p), roll=float(r))
            for y, p, r in zip(yaw, pitch, roll, strict=True)
        ]

    def warm_up(self) -> None:
        """Run one forward pass on a grey image so that the first request pays no set-up cost."""
        image = np.full((INPUT_SIZE, INPUT_SIZE, 3), 128, dtype=np.uint8)
        self.estimate(image, [(40.0, 40.0, 144.0, 144.0)])

    def describe(self) -> dict[str, Any]:
        """Return the estimator's name, snapshot path and settings (for logs and /readyz)."""
        return {
            "name": self.name,
            "snapshot": self.snapshot,
            "margin": self.margin,
            "channels_last": self.channels_last,
            "runtime": self.runtime,
            "max_batch": self.max_batch,
        }
