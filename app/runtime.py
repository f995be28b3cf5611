"""Process-wide runtime choices: thread counts for TensorFlow and torch, logging."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def configure_threads(tf_threads: int, torch_threads: int) -> tuple[int, int]:
    """Give TensorFlow and torch thread counts that do not fight over the cores.

    Requests run one at a time per executor worker and the stages run one after another, so
    each framework may use every core while it runs; 0 means "the CPU count". Must be called
    before either framework runs an op.

    Returns:
        The (tf, torch) thread counts applied.
    """
    cpus = os.cpu_count() or 1
    tf_n = tf_threads or cpus
    torch_n = torch_threads or cpus
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import torch

    try:
        tf.config.threading.set_intra_op_parallelism_threads(tf_n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
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
    for noisy in ("absl", "tensorflow", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
