"""Process-wide runtime choices: thread counts, logging."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def configure_threads(torch_threads: int) -> int:
    """Give torch its thread count (0: the CPU count); call it before torch runs an op.

    torch builds and exports the pose networks at start-up, and Hopenet's ONNX Runtime session
    takes this count as its intra-op threads (``models.ort``). The detector's threads are its
    own (``MTCNNDetector(threads=)``, setting ``tf_threads``), and OpenVINO's models take theirs
    when compiled.

    Returns:
        The torch thread count applied.
    """
    torch_n = torch_threads or os.cpu_count() or 1
    import torch

    torch.set_num_threads(torch_n)
    return torch_n


def configure_logging(level: str) -> None:
    """Standard logging to stderr, one line per record."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # alembic: app.push.schema logs one line per upgrade; the per-step lines say nothing more.
    for noisy in ("absl", "tensorflow", "h5py", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
