"""OpenVINO's CPU plugin behind a small, thread-safe call: one compiled model, a pool of
infer requests (one per run in progress), numpy in and out; runs started asynchronously
(``CompiledNetwork.start``, ``run_all``), and PNet compiled again for each level shape it keeps
meeting (``ShapeCompiled``).

Used by the detector's networks (``models.mtcnn_openvino``) and SFace (``models.recognizer``).
``threads`` inference threads are split over ``streams`` streams: a stream runs one request
at a time, so two callers at once need two streams to run side by side (SFace's face and its
mirror: two streams of one thread took 13.6 ms for the pair, one stream of two threads 16.4,
ONNX Runtime's two single-threaded sessions 18.2; same process, alternating). OpenVINO
releases the GIL while a request runs.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import openvino as ov

from models.pose import are_cores_shared

log = logging.getLogger(__name__)


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
    config: dict[str, object] = {
        "INFERENCE_PRECISION_HINT": precision,
        "NUM_STREAMS": streams,
        # Pinned, every compiled model's first stream sits on the first core: two models
        # called at once from two threads (PNet's levels, each compiled for its shape; two
        # images' networks) then share one core while the other waits. Two single-stream
        # PNet models on a 218x218 level, 1.8 ms a call: 3.7-5.2 ms side by side pinned,
        # 2.1-2.6 ms unpinned (2-core VM, medians of 60).
        "ENABLE_CPU_PINNING": False,
    }
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


class Pending:
    """A run started on one of a compiled model's infer requests; ``result`` waits for it
    (once) and hands the request back."""

    def __init__(self, network: CompiledNetwork, request: ov.InferRequest, x: np.ndarray) -> None:
        self._network = network
        self._request: ov.InferRequest | None = request
        self._input: np.ndarray | None = x  # read in place: kept alive until the run is done

    def result(self) -> list[np.ndarray]:
        """Every output, copied out of the request's buffers.

        Raises:
            RuntimeError: called a second time (the request went back the first time).
        """
        request = self._request
        if request is None:
            raise RuntimeError("this run's result was already taken")
        self._request = None
        try:
            request.wait()
            self._input = None
            return [request.get_output_tensor(i).data.copy() for i in range(self._network.outputs)]
        finally:
            self._network.give_back(request)


class CompiledNetwork:
    """A model compiled for the CPU; ``__call__`` and ``start`` may be used from several
    threads at once."""

    def __init__(
        self, model: ov.Model, threads: int = 0, streams: int = 1, precision: str = "f32"
    ) -> None:
        config = cpu_config(threads, streams, precision)
        self._compiled = core().compile_model(model, "CPU", config)
        self.outputs = len(self._compiled.outputs)
        self.streams = streams
        self._requests: queue.SimpleQueue[ov.InferRequest] = queue.SimpleQueue()

    @property
    def precision(self) -> str:
        """The precision the model runs in: ``f32``, or ``bf16`` where it was asked for and
        the CPU has it (OpenVINO resolves the hint when it compiles)."""
        return str(self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())

    def _take(self) -> ov.InferRequest:
        try:
            return self._requests.get_nowait()
        except queue.Empty:
            return self._compiled.create_infer_request()

    def give_back(self, request: ov.InferRequest) -> None:
        """Return a request to the pool once nothing runs on it."""
        self._requests.put(request)

    @contextmanager
    def _request(self) -> Iterator[ov.InferRequest]:
        request = self._take()
        try:
            yield request
        finally:
            self.give_back(request)

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """Run the model's one input (read in place); every output, copied out of the
        request's buffers."""
        with self._request() as request:
            request.infer({0: x}, share_inputs=True)
            return [request.get_output_tensor(i).data.copy() for i in range(self.outputs)]

    def start(self, x: np.ndarray) -> Pending:
        """Start a run on ``x`` and return at once; ``x`` is read in place, so it must stay
        alive and unchanged until ``result``. Runs started together go side by side on the
        model's streams, OpenVINO's threads doing the work and the waiting (the astronaut's
        ten PNet levels, each on its own compiled model: 5.7-6.6 ms started at once against
        6.6-8.0 ms through a two-thread Python pool, 2-core VM, medians of 60)."""
        request = self._take()
        try:
            request.start_async({0: x}, share_inputs=True)
        except BaseException:
            self.give_back(request)
            raise
        return Pending(self, request, x)

    def each(self, batch: np.ndarray) -> np.ndarray:
        """The first output of every item of ``batch``, each run as its own batch of one, up
        to ``streams`` side by side (``run_all``); one after another while other images are in
        progress (``models.pose.cores_shared``), when the cores are busy anyway."""
        if self.streams < 2 or len(batch) < 2 or are_cores_shared():
            return np.stack([self(item[None])[0][0] for item in batch])
        return np.stack([out[0][0] for out in run_all(self, batch[:, None], 2 * self.streams)])


def run_each(
    network: CompiledNetwork | ShapeCompiled, inputs: Iterable[np.ndarray], window: int
) -> Iterator[list[np.ndarray]]:
    """Every output of ``network`` on every input, in order, each yielded as soon as its run
    is done, at most ``window`` runs started at a time (each started run holds an infer
    request and its buffers: famous-selfie's 21 RNet chunks all at once would keep 21).

    ``inputs`` is read lazily, an input once the one before it has started: an iterable that
    computes its items (the pyramid's levels, RNet's crops) does that work while the runs
    already started are going, and the caller's work on each yielded result overlaps the
    runs after it. If a run fails, or the caller stops early, the runs still going are
    waited for (their requests go back); a failure is raised.
    """
    runs: collections.deque[Pending] = collections.deque()
    try:
        for x in inputs:
            if len(runs) >= window:
                yield runs.popleft().result()
            runs.append(network.start(x))
        while runs:
            yield runs.popleft().result()
    finally:
        for run in runs:
            with contextlib.suppress(RuntimeError):
                run.result()


def run_all(
    network: CompiledNetwork | ShapeCompiled, inputs: Iterable[np.ndarray], window: int
) -> list[list[np.ndarray]]:
    """``run_each``'s results as a list."""
    return list(run_each(network, inputs, window))


class ShapeCompiled:
    """A model with a dynamic input, compiled again for each input shape it keeps being given.

    OpenVINO's CPU plugin pays for a dynamic shape on every call: shape inference, and new
    intermediate buffers whenever the shape changes. PNet meets ten shapes an image (its
    pyramid levels), and a level costs about 1 ms more on the dynamic model than compiled for
    its shape, whatever its size (2-core AVX-512 VM, one thread, medians of 30: 308x308
    5.50 -> 4.40 ms, 218x218 3.08 -> 2.15, 155x155 2.05 -> 1.01; the astronaut's ten levels
    17.6 -> 10.6 ms), with the same outputs bit for bit. A camera sends one size, so its
    levels recur on every image.

    A shape seen ``sightings`` times is compiled on ``compiler`` (one background thread: a
    shape takes 40-60 ms to compile), and until that is done, calls run on the dynamic model:
    no request waits for a compilation. Only shapes of at most ``max_pixels`` (rows x columns)
    are compiled: a compiled shape keeps its own intermediate buffers, about 100 bytes a pixel
    a stream (the 1080p pyramid's levels of up to 95 000 pixels: 34 MB on two streams), and the
    fixed cost matters least on large inputs. At most ``capacity`` shapes are kept, the least
    recently used dropped first.

    ``__call__`` may be used from several threads at once.
    """

    def __init__(
        self,
        model: ov.Model,
        threads: int,
        streams: int,
        compiler: concurrent.futures.Executor,
        max_pixels: int = 100_000,
        capacity: int = 40,
        sightings: int = 2,
    ) -> None:
        self._model = model
        self.threads = threads
        self.streams = streams  # runs that go side by side (each compiled model's streams)
        self._compiler = compiler
        self.max_pixels = max_pixels
        self.capacity = capacity
        self.sightings = sightings
        self.dynamic = CompiledNetwork(model, threads, streams)
        self._lock = threading.Lock()
        self._compiled: collections.OrderedDict[tuple[int, ...], CompiledNetwork] = (
            collections.OrderedDict()
        )
        self._seen: collections.Counter[tuple[int, ...]] = collections.Counter()
        self._pending: dict[tuple[int, ...], concurrent.futures.Future[None]] = {}
        self._failed: set[tuple[int, ...]] = set()

    def compiled_shapes(self) -> list[tuple[int, ...]]:
        """The shapes compiled for, least recently used first."""
        with self._lock:
            return list(self._compiled)

    def wait(self) -> None:
        """Wait for the compilations already asked for (tests, warm-up)."""
        with self._lock:
            pending = list(self._pending.values())
        concurrent.futures.wait(pending)

    def _compile(self, shape: tuple[int, ...]) -> None:
        try:
            model = self._model.clone()
            model.reshape({model.input(0): ov.PartialShape(list(shape))})
            network = CompiledNetwork(model, self.threads, self.streams)
        except RuntimeError as exc:  # OpenVINO's errors; the dynamic model goes on serving it
            log.warning("cannot compile for shape %s, keeping the dynamic model: %s", shape, exc)
            with self._lock:
                self._failed.add(shape)
        else:
            with self._lock:
                self._compiled[shape] = network
                while len(self._compiled) > self.capacity:
                    self._compiled.popitem(last=False)
        finally:
            with self._lock:
                self._pending.pop(shape, None)

    def _network(self, shape: tuple[int, ...]) -> CompiledNetwork:
        with self._lock:
            network = self._compiled.get(shape)
            if network is not None:
                self._compiled.move_to_end(shape)
                return network
            if (
                shape in self._pending
                or shape in self._failed
                or int(np.prod(shape[1:-1])) > self.max_pixels
            ):
                return self.dynamic
            self._seen[shape] += 1
            if self._seen[shape] >= self.sightings:
                del self._seen[shape]
                self._pending[shape] = self._compiler.submit(self._compile, shape)
            elif len(self._seen) > 4 * self.capacity:
                # Shapes seen once (uploads of every size): forget them, not the compiled ones.
                self._seen.clear()
        return self.dynamic

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        """Run the model on ``x``: compiled for its shape where that is done, else dynamic."""
        return self._network(x.shape)(x)

    def start(self, x: np.ndarray) -> Pending:
        """``CompiledNetwork.start`` on the model for ``x``'s shape (or the dynamic one)."""
        return self._network(x.shape).start(x)
