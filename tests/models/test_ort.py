"""OrtNetwork: the torch network's results through ONNX Runtime, in every way of running a batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
from torch import nn

from models.ort import OrtNetwork


def small_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    ).eval()


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((5, 3, 16, 16)).astype(np.float32)


@pytest.mark.parametrize("one_at_a_time", [False, True])
def test_every_way_gives_the_torch_results(inputs: np.ndarray, one_at_a_time: bool) -> None:
    network = small_network()
    with torch.inference_mode():
        expected = network(torch.from_numpy(inputs)).numpy()
    ort_network = OrtNetwork(
        network, torch.zeros(2, 3, 16, 16), ["y"], threads=2, one_at_a_time=one_at_a_time
    )
    for count in (1, 3, 5):  # below SPLIT_FROM (one session, both threads), then side by side
        (out,) = ort_network.run_chunked(inputs[:count], 2)
        assert out.shape == (count, 5)
        assert np.abs(out - expected[:count]).max() < 1e-5


def test_sessions_for_one_input_take_only_one(inputs: np.ndarray) -> None:
    network = small_network()
    one = OrtNetwork(network, torch.zeros(2, 3, 16, 16), ["y"], threads=2, one_at_a_time=True)
    batched = OrtNetwork(network, torch.zeros(2, 3, 16, 16), ["y"], threads=2)
    # Built for a batch of exactly one: a batch of two is refused, not silently run.
    with pytest.raises(InvalidArgument):
        one.run(inputs[:2])
    with pytest.raises(InvalidArgument):
        batched._run_single(inputs[:2])  # the single-threaded session, in both
    (out,) = batched.run(inputs[:3])  # the default keeps a variable batch
    assert out.shape == (3, 5)
    assert one.run(inputs[:1])[0].shape == (1, 5)
