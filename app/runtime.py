"""Process-wide runtime choices: thread counts, logging."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def configure_threads(tf_threads: int, torch_threads: int) -> tuple[int, int]:
    """Give torch (the pose network's export, and its ONNX Runtime session) its thread count.

    Must be called before torch runs an op; 0 means "the CPU count". ``torch_threads`` is
    torch's thread count, which the pose network's ONNX Runtime session takes as its intra-op
    thread count (``models.ort``). ``tf_threads`` is the detector's (``MTCNNDetector(threads=)``:
    OpenVINO's PNet streams and RNet/ONet threads, or TensorFlow's inter-op threads with
    ``backend: tensorflow``); it is passed to the detector when it is built and only returned
    here (TensorFlow is not imported unless that backend is chosen).

    Returns:
        The (detector, torch) thread counts applied.
    """
    cpus = os.cpu_count() or 1
    tf_n = tf_threads or cpus
    torch_n = torch_threads or cpus
    import torch

    torch.set_num_threads(torch_n)
    return tf_n, torch_n


def configure_logging(level: str) -> None:
    """Standard logging to stderr, one line per record."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # alembic: app.push.schema logs one line per upgrade; the per-step lines say nothing more.
    for noisy in ("absl", "tensorflow", "h5py", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
