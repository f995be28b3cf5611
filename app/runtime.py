"""Process-wide runtime choices: thread counts for TensorFlow and torch, logging."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def configure_threads(tf_threads: int, torch_threads: int) -> tuple[int, int]:
    """Give TensorFlow and the pose network thread counts that do not fight over the cores.

    Must be called before either framework runs an op; 0 means "the CPU count".

    TensorFlow runs the MTCNN detector with ``tf_threads`` *inter-op* threads and one intra-op
    thread. MTCNN's convolutions are small (3 to 64 channels): splitting one op over the cores
    gains nothing, but the pyramid levels and the RNet/ONet chunks are independent iterations
    of ``tf.while_loop``s that run concurrently on the inter-op pool. On the 2-core VM, detect
    took 15.5 ms (astronaut) and 68 ms (famous-selfie) with intra 1 / inter 2, against 20 and
    82 ms with the former intra 2 / inter 1, and 17 and 70 ms with 2 / 2; from 512x512 to
    4000x3000 pixels, 1 / 2 was the fastest (``bench/RESULTS.md``, "Performance").

    ``torch_threads`` is torch's thread count, which the pose network's ONNX Runtime session
    takes as its intra-op thread count (``models.ort``).

    Returns:
        The (TensorFlow inter-op, torch) thread counts applied.
    """
    cpus = os.cpu_count() or 1
    tf_n = tf_threads or cpus
    torch_n = torch_threads or cpus
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import torch

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(tf_n)
    except RuntimeError:  # already initialised (tests build several apps in one process)
        log.debug("TensorFlow threads already configured")
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
