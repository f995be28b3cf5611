"""OpenVINO's CPU plugin behind a small, thread-safe call: one compiled model, a pool of
infer requests (one per concurrent caller), numpy in and out.

Used by the detector's networks (``models.mtcnn_openvino``) and SFace (``models.recognizer``).
``threads`` inference threads are split over ``streams`` streams: a stream runs one request
at a time, so two callers at once need two streams to run side by side (SFace's face and its
mirror: two streams of one thread took 13.6 ms for the pair, one stream of two threads 16.4,
ONNX Runtime's two single-threaded sessions 18.2; same process, alternating). OpenVINO
releases the GIL while a request runs.
"""

from __future__ import annotations

import concurrent.futures
import functools
import queue
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import openvino as ov

from models.pose import are_cores_shared


@functools.cache
def core() -> ov.Core:
    """The process's one OpenVINO ``Core``, kept for its lifetime: every model is read and
    compiled through it. With a throw-away ``Core`` per model (compiled models outliving the
    core that built them), the test suite crashed with SIGSEGV in every full run, in the scan's
    Ctrl-C test or under the OpenAPI fuzzing; with one core, no run has (five full runs, and two
    runs of the sequence that crashed, TensorFlow loaded)."""
    return ov.Core()


PRECISIONS: tuple[str, ...] = ("f32", "bf16")


def cpu_config(threads: int, streams: int = 1, precision: str = "f32") -> dict[str, object]:
    """CPU inference with ``threads`` threads (0: OpenVINO's choice) in ``streams``, in
    ``precision`` (``f32``; ``bf16`` runs in bfloat16 where the CPU supports it, in float32
    elsewhere).

    Raises:
        ValueError: ``precision`` is not one of ``PRECISIONS``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision, "NUM_STREAMS": streams}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


class CompiledNetwork:
    """A model compiled for the CPU; ``__call__`` may be used from several threads at once."""

    def __init__(
        self, model: ov.Model, threads: int = 0, streams: int = 1, precision: str = "f32"
    ) -> None:
        config = cpu_config(threads, streams, precision)
        self._compiled = core().compile_model(model, "CPU", config)
        self._outputs = len(self._compiled.outputs)
        self._requests: queue.SimpleQueue[ov.InferRequest] = queue.SimpleQueue()
        self._pool = (
            concurrent.futures.ThreadPoolExecutor(streams, thread_name_prefix="openvino")
            if streams > 1
            else None
        )

    @property
    def precision(self) -> str:
        """The precision the model runs in: ``f32``, or ``bf16`` where it was asked for and
        the CPU has it (OpenVINO resolves the hint when it compiles)."""
        return str(self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())

    @contextmanager
    def _request(self) -> Iterator[ov.InferRequest]:
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            yield request
        finally:
            self._requests.put(request)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """Run the model's one input; every output, copied out of the request's buffers."""
        with self._request() as request:
            request.infer({0: x})
            return [request.get_output_tensor(i).data.copy() for i in range(self._outputs)]

    def each(self, batch: np.ndarray) -> np.ndarray:
        """The first output of every item of ``batch``, each run as its own batch of one: up
        to ``streams`` side by side, one after another while other images are in progress
        (``models.pose.cores_shared``), when the cores are busy anyway."""

        def one(item: np.ndarray) -> np.ndarray:
            return self(item[None])[0][0]

        if self._pool is None or len(batch) < 2 or are_cores_shared():
            return np.stack([one(item) for item in batch])
        return np.stack(list(self._pool.map(one, batch)))
