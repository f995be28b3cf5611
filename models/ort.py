"""Run a PyTorch pose network through ONNX Runtime: same weights, same arithmetic, faster on CPU.

The torch networks stay the source of truth (they load the weights files and define the maths);
at start-up ``OrtNetwork`` traces one into an in-memory ONNX graph (a fraction of a second) and
runs it with ONNX Runtime's CPU provider, whose graph optimisations fuse batch norms and
activations into the convolutions and pick blocked (NCHWc) layouts. On the 2-core development
VM (float32, same run, interleaved), 22 WHENet faces took 105-111 ms against 132-137 ms for the
best torch setting (channels_last, TorchScript-frozen, passes of 3) and 296-310 ms for the
eager torch network; 22 Hopenet (ResNet-50) faces took 489-500 ms against 706-723 ms. The
outputs agree with torch's to about 1e-5 in the logits (a different summation order).

Thread safety: the ``run`` methods may be called from several threads at once (ONNX Runtime
sessions allow concurrent runs).
"""

from __future__ import annotations

import concurrent.futures
import io
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from models.pose import are_cores_shared

log = logging.getLogger(__name__)

OPSET = 17
# From this many inputs (faces) on, ``OrtNetwork.run_chunked`` runs each one single-threaded,
# ``threads`` side by side (measured for both pose networks, see ``OrtNetwork``).
SPLIT_FROM = 4
BATCH_AXIS = "n"  # the name of the inputs' and outputs' variable first dimension


def export_onnx(network: nn.Module, sample: torch.Tensor, outputs: Sequence[str]) -> bytes:
    """Trace ``network`` into an ONNX graph with a variable batch size.

    Args:
        network: a module in eval mode taking one tensor.
        sample: an input to trace with; only its first (batch) dimension may vary later.
        outputs: names of the module's outputs, in order.

    Returns:
        The serialised ONNX model.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter warns that it is deprecated, and tracing warns where
        # the networks turn tensor sizes into Python ints (TF "same" padding): the spatial size
        # is fixed, so the traced constants are right.
        warnings.simplefilter("ignore")
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                network,
                (sample,),
                buffer,
                dynamo=False,
                input_names=["x"],
                output_names=list(outputs),
                dynamic_axes={"x": {0: BATCH_AXIS}, **{name: {0: BATCH_AXIS} for name in outputs}},
                opset_version=OPSET,
            )
    return buffer.getvalue()


def _session(model: bytes, threads: int, batch_of_one: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if batch_of_one:
        # Every shape known when the session is built: ONNX Runtime plans and picks kernels
        # once (one WHENet face: 5.0 -> 4.6 ms on two threads, alternating in one process).
        options.add_free_dimension_override_by_name(BATCH_AXIS, 1)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spin while a run is going on (its many short parallel loops need it: without spinning 22
    # WHENet faces took 1.2x longer), but stop when it ends: a pool left spinning takes a core
    # from TensorFlow's detector of the next image (astronaut: detect 32 -> 26 ms).
    options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3  # errors only: its warnings go to stderr, not logging
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def run_in_chunks(
    run: Callable[[np.ndarray], Sequence[np.ndarray]],
    x: np.ndarray,
    chunk: int,
    map_chunks: Callable[..., Iterable[Sequence[np.ndarray]]] = map,
) -> list[np.ndarray]:
    """Run ``x`` through ``run`` in chunks of at most ``chunk`` inputs; return each output
    concatenated back in input order. ``map_chunks`` runs the chunks: one after another by
    default, side by side with an executor's ``map``."""
    chunk = max(1, chunk)
    results = list(map_chunks(run, (x[i : i + chunk] for i in range(0, len(x), chunk))))
    return [np.concatenate(out) for out in zip(*results, strict=True)]


class OrtNetwork:
    """ONNX Runtime sessions built from a torch network; takes and returns numpy arrays.

    Two ways to use the cores on a batch of several inputs (faces):

    - one session with ``threads`` intra-op threads runs the chunks one after another: best
      for a few faces (one face: 5 ms against 8 ms single-threaded);
    - a single-threaded session runs one input per call on ``threads`` threads of its own,
      side by side (ONNX Runtime releases the GIL): no synchronisation inside the network,
      best from ``split_from`` faces on (22 WHENet faces: 103 ms against 116 ms for the
      best chunk size of the first way, 6 faces 29 against 32 ms; 3 faces 18 against 16 ms;
      22 Hopenet faces 482 against 543 ms; same run, interleaved).

    With ``one_at_a_time``, the first way also runs one input per call, on a session built for
    a batch of exactly one: for WHENet that is faster than any batch (one face 4.6 against
    5.0 ms, 2 faces 10.4 against 10.5 ms, 3 faces 16.6 against 18.5 ms on two threads, same
    process, alternating); not for Hopenet (2 faces 44.9 against 42.6 ms). The single-threaded
    session always takes one input per call, so it is always built for a batch of one.

    Args:
        network: the torch module (eval mode, one input tensor).
        sample: an input to trace with; its batch size (first dimension) may vary at run time,
            its dtype and other dimensions may not.
        outputs: names for the module's outputs, in order.
        threads: threads for one batch; 0 means torch's current thread count, so the pose
            network keeps the thread budget that ``app.runtime.configure_threads`` gave torch.
        split_from: batch size from which the inputs go through single-threaded runs side by
            side (default ``SPLIT_FROM``); 0 never splits.
        one_at_a_time: run every input on its own, also on ``threads`` threads (see above).
    """

    def __init__(
        self,
        network: nn.Module,
        sample: torch.Tensor,
        outputs: Sequence[str],
        threads: int = 0,
        split_from: int = SPLIT_FROM,
        one_at_a_time: bool = False,
    ) -> None:
        started = time.perf_counter()
        model = export_onnx(network, sample, outputs)
        self.threads = threads or torch.get_num_threads()
        self.outputs = list(outputs)
        self.dtype = torch.empty(0, dtype=sample.dtype).numpy().dtype
        self.split_from = split_from if self.threads > 1 else 0
        self.one_at_a_time = one_at_a_time
        self._session = _session(model, self.threads, one_at_a_time)
        self._single = _session(model, 1, True) if self.threads > 1 else None
        self._pool = (
            concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="ort")
            if self.split_from
            else None
        )
        log.info(
            "ONNX Runtime sessions built in %.2f s (%d threads, split from %d inputs)",
            time.perf_counter() - started,
            self.threads,
            self.split_from,
        )

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run one batch (shaped like ``sample``; of one input with ``one_at_a_time``) in one
        call on ``threads`` threads."""
        return self._session.run(self.outputs, {"x": np.ascontiguousarray(x, dtype=self.dtype)})

    def run_chunked(self, x: np.ndarray, chunk: int) -> list[np.ndarray]:
        """Run a batch; return the outputs, concatenated in input order.

        With the cores shared by other images in progress (``models.pose.cores_shared``),
        every input is a single-threaded run, one after another. Alone, from ``split_from``
        inputs on, every input is a single-threaded run and ``threads`` of them go side by
        side; below, chunks of at most ``chunk`` inputs (one with ``one_at_a_time``) run one
        after another with ``threads`` threads each. The results do not depend on the way
        beyond float rounding.
        """
        if self._single is not None and are_cores_shared():
            return run_in_chunks(self._run_single, x, 1)
        if self._pool is not None and len(x) >= self.split_from:
            return run_in_chunks(self._run_single, x, 1, self._pool.map)
        return run_in_chunks(self.run, x, 1 if self.one_at_a_time else chunk)

    def _run_single(self, x: np.ndarray) -> list[np.ndarray]:
        assert self._single is not None  # built whenever threads > 1
        return self._single.run(self.outputs, {"x": np.ascontiguousarray(x, dtype=self.dtype)})
