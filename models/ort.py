"""Run a PyTorch pose network through ONNX Runtime: same weights, same arithmetic, faster on CPU.

The torch networks stay the source of truth (they load the weights files and define the maths);
at start-up ``OrtNetwork`` traces one into an in-memory ONNX graph (a fraction of a second) and
runs it with ONNX Runtime's CPU provider, whose graph optimisations fuse batch norms and
activations into the convolutions and pick blocked (NCHWc) layouts. On the 2-core development
VM (float32, same batch sizes, same run) that made 22 faces of WHENet 1.3x faster than torch with
channels_last and TorchScript freezing, and 22 faces of Hopenet (ResNet-50) about 1.5x faster
(``bench/RESULTS.md``, "Performance"). The outputs agree with torch's to about 1e-5 in the
logits, the difference of a different summation order.

Thread safety: ``run`` may be called from several threads; ONNX Runtime sessions allow
concurrent ``run`` calls, and concurrent calls share the session's intra-op thread pool instead
of each starting its own.
"""

from __future__ import annotations

import io
import logging
import time
import warnings
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

log = logging.getLogger(__name__)

OPSET = 17


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
                dynamic_axes={"x": {0: "n"}, **{name: {0: "n"} for name in outputs}},
                opset_version=OPSET,
            )
    return buffer.getvalue()


class OrtNetwork:
    """An ONNX Runtime session built from a torch network; ``run`` takes and returns numpy.

    Args:
        network: the torch module (eval mode, one input tensor).
        sample: an input to trace with; its batch size (first dimension) may vary at run time,
            its dtype and other dimensions may not.
        outputs: names for the module's outputs, in order.
        threads: intra-op threads; 0 means torch's current thread count, so the pose network
            keeps the thread budget that ``app.runtime.configure_threads`` gave torch.
    """

    def __init__(
        self,
        network: nn.Module,
        sample: torch.Tensor,
        outputs: Sequence[str],
        threads: int = 0,
        spin: bool = True,
    ) -> None:
        started = time.perf_counter()
        model = export_onnx(network, sample, outputs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: its warnings go to stderr, not logging
        self.threads = options.intra_op_num_threads
        self.outputs = list(outputs)
        self.dtype = torch.empty(0, dtype=sample.dtype).numpy().dtype
        self._session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        log.info(
            "ONNX Runtime session built in %.2f s (%d threads)",
            time.perf_counter() - started,
            self.threads,
        )

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run one batch (shaped like ``sample``); return the module's outputs, each (N, ...)."""
        return self._session.run(self.outputs, {"x": np.ascontiguousarray(x, dtype=self.dtype)})
