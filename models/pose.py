"""Pose-estimator interface and the binned-expectation decoding shared by Hopenet and WHENet."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from models.types import Box, HeadPose


class PoseEstimator(Protocol):
    """Estimates head pose for every face of one image in one batched forward pass."""

    name: str
    effective_precision: str  # what the network runs in on this CPU: "f32" or "bf16"

    def estimate(self, image: np.ndarray, boxes: Sequence[Box]) -> list[HeadPose]:
        """Return one pose per box.

        Args:
            image: (H, W, 3) uint8 RGB image.
            boxes: face boxes ``(x, y, w, h)`` in pixels of ``image`` (detector output).

        Returns:
            One ``HeadPose`` per box, same order, degrees, API sign convention.
        """
        ...

    def warm_up(self) -> None:
        """Run one forward pass so that the first request pays no compilation cost."""
        ...


_CORES_SHARED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pose_cores_shared", default=False
)


@contextlib.contextmanager
def cores_shared(shared: bool) -> Iterator[None]:
    """Tell the pose estimators called inside whether other images are in progress meanwhile.

    With the cores shared, one thread per network call does more work per second than
    intra-op parallelism (which also contends with the other image's TensorFlow threads):
    8 clients on the astronaut gave 37 images/s with one thread against 34 with two. Alone,
    an image's faces use every core. Set per thread (a context variable), so each executor
    worker tells its own calls.
    """
    token = _CORES_SHARED.set(shared)
    try:
        yield
    finally:
        _CORES_SHARED.reset(token)


def are_cores_shared() -> bool:
    """Whether the current call runs while other images are in progress (``cores_shared``)."""
    return _CORES_SHARED.get()


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def binned_expectation(logits: np.ndarray, bin_width: float, offset: float) -> np.ndarray:
    """Decode classification logits over angle bins into degrees (Hopenet-style expectation).

    ``angle = sum(softmax(logits) * bin_index) * bin_width + offset``; Hopenet and WHENet's
    pitch/roll use 66 bins of 3 degrees from -99 (``bin_width=3, offset=-99``).

    Args:
        logits: (N, bins) raw scores.
        bin_width: degrees per bin.
        offset: the angle of bin index 0's lower edge as the models were trained.

    Returns:
        (N,) angles in degrees, in the model's own sign convention.
    """
    probs = softmax(np.asarray(logits, dtype=np.float64), axis=1)
    idx = np.arange(probs.shape[1], dtype=np.float64)
    return (probs * idx).sum(axis=1) * bin_width + offset
