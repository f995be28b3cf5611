"""``models.openvino_net.ShapeCompiled``: PNet compiled for the level shapes it keeps seeing,
the same outputs as the dynamic model, no request waiting for a compilation."""

from __future__ import annotations

import concurrent.futures

import cv2
import numpy as np
import pytest

from models.area import area_levels
from models.detector import MTCNNDetector, Patches, pyramid
from models.mtcnn_openvino import load_weights, pnet_model
from models.openvino_net import ShapeCompiled

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def compiler():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        yield pool


@pytest.fixture(scope="module")
def levels(astronaut_jpeg: bytes) -> list[np.ndarray]:
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(astronaut_jpeg, np.uint8), 1), cv2.COLOR_BGR2RGB)
    shapes = [(int(h), int(w)) for h, w in pyramid(*rgb.shape[:2], 20, 0.709).shapes]
    return [level[None] for level in area_levels(rgb, shapes)]


def test_a_shape_is_compiled_on_its_second_sighting_and_gives_the_same_outputs(levels, compiler):
    net = ShapeCompiled(pnet_model(load_weights("pnet")), 2, 2, compiler)
    first = [net(x) for x in levels]
    net.wait()
    assert net.compiled_shapes() == []  # seen once: nothing compiled
    second = [net(x) for x in levels]  # answered by the dynamic model while they compile
    net.wait()
    assert net.compiled_shapes() == [x.shape for x in levels]
    third = [net(x) for x in levels]
    for a, b, c in zip(first, second, third, strict=True):
        for x, y, z in zip(a, b, c, strict=True):
            assert np.array_equal(x, y) and np.array_equal(x, z)


def test_large_shapes_stay_dynamic_and_the_least_recently_used_go_first(levels, compiler):
    net = ShapeCompiled(
        pnet_model(load_weights("pnet")), 1, 1, compiler, max_pixels=50_000, capacity=3
    )
    small = [x for x in levels if x.shape[1] * x.shape[2] <= 50_000]
    assert len(small) >= 5 and len(small) < len(levels)
    for _ in range(2):
        for x in levels:
            net(x)
        net.wait()
    assert net.compiled_shapes() == [x.shape for x in small[-3:]]
    net(small[-3])  # used again: now the most recent
    assert net.compiled_shapes() == [x.shape for x in (small[-2], small[-1], small[-3])]


def test_the_detector_compiles_its_recurring_levels_and_finds_the_same_faces(astronaut_jpeg):
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(astronaut_jpeg, np.uint8), 1), cv2.COLOR_BGR2RGB)
    detector = MTCNNDetector()
    before = detector.detect(rgb)
    detector.detect(rgb)
    detector._nets._pnet.wait()
    assert len(detector._nets._pnet.compiled_shapes()) == len(pyramid(512, 512, 20, 0.709).scales)
    after = detector.detect(rgb)
    assert [(f.box, f.confidence) for f in after] == [(f.box, f.confidence) for f in before]
    assert all(np.array_equal(a.landmarks, b.landmarks) for a, b in zip(after, before, strict=True))


def test_runs_started_together_give_each_inputs_outputs_and_a_failure_frees_the_rest():
    """``run_all`` keeps at most ``window`` runs going and returns the outputs in order, the
    same as one call at a time; an input the model refuses raises, and the runs started before
    it finish and hand their requests back (the network keeps working)."""
    from models.mtcnn_openvino import _bounded, rnet_model
    from models.openvino_net import CompiledNetwork, run_all

    net = CompiledNetwork(_bounded(rnet_model(load_weights("rnet")), 24, 64), 2, 2)
    rng = np.random.default_rng(4)
    parts = [rng.uniform(-1, 1, (n, 24, 24, 3)).astype(np.float32) for n in (64, 64, 7, 30, 1)]
    together = run_all(net, parts, 2)
    for part, outputs in zip(parts, together, strict=True):
        for a, b in zip(outputs, net(part), strict=True):
            assert np.array_equal(a, b)
    bad = np.zeros((3, 25, 25, 3), np.float32)
    with pytest.raises(RuntimeError):
        run_all(net, [parts[0], parts[1], bad, parts[2]], 4)
    again = run_all(net, parts[:2], 2)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(again, together[:2], strict=True))


def test_run_each_takes_inputs_as_runs_start_and_an_early_stop_frees_the_runs():
    """``run_each`` reads its inputs lazily (an input once the one before it has started, so
    computing it overlaps the runs going), yields each result in order as it is done, and a
    caller that stops early leaves no run holding a request."""
    from models.mtcnn_openvino import _bounded, rnet_model
    from models.openvino_net import CompiledNetwork, run_each

    net = CompiledNetwork(_bounded(rnet_model(load_weights("rnet")), 24, 64), 2, 2)
    rng = np.random.default_rng(5)
    parts = [rng.uniform(-1, 1, (n, 24, 24, 3)).astype(np.float32) for n in (64, 9, 30, 2, 5)]
    taken: list[int] = []

    def inputs():
        for k, part in enumerate(parts):
            taken.append(k)
            yield part

    outputs = run_each(net, inputs(), 2)
    first = next(outputs)
    assert taken == [0, 1, 2]  # two runs going, the third input read while they run
    assert all(np.array_equal(a, b) for a, b in zip(first, net(parts[0]), strict=True))
    second = next(outputs)
    assert taken == [0, 1, 2, 3]
    assert all(np.array_equal(a, b) for a, b in zip(second, net(parts[1]), strict=True))
    outputs.close()  # the run on parts[2] is waited for and its request handed back
    assert net._requests.qsize() == 2  # every request created is back in the pool
    rest = list(run_each(net, iter(parts), 2))
    for part, result in zip(parts, rest, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(result, net(part), strict=True))


def test_a_runs_result_is_taken_once():
    """The request goes back to the pool with the first ``result``: a second would hand it
    back twice (two callers on one request), so it is refused."""
    from models.mtcnn_openvino import _bounded, rnet_model
    from models.openvino_net import CompiledNetwork

    net = CompiledNetwork(_bounded(rnet_model(load_weights("rnet")), 24, 64), 1)
    run = net.start(np.zeros((2, 24, 24, 3), np.float32))
    assert [a.shape for a in run.result()] == [(2, 4), (2, 2)]
    with pytest.raises(RuntimeError, match="already taken"):
        run.result()


def test_rnet_and_onet_give_the_same_outputs_once_their_batch_sizes_are_compiled():
    """A full chunk and a remainder, before (the dynamic models) and after compilation."""
    from models.mtcnn_openvino import OpenVINONetworks

    nets = OpenVINONetworks()
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for network, size, count in ((nets._rnet, 24, 135), (nets._onet, 48, 7), (nets._onet, 48, 37)):
        corners = rng.integers(-10, 130, (count, 2))
        sides = rng.integers(8, 60, (count, 1))
        patches = Patches(image, np.hstack([corners, sides, sides]).astype(np.int64), size)
        first = network(patches)
        network(patches)
        nets._compiler.submit(lambda: None).result()  # the compilations asked for are done
        assert network._whole.compiled_shapes() or network._split.compiled_shapes()
        for a, b in zip(network(patches), first, strict=True):
            assert np.array_equal(a, b)
