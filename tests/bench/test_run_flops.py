"""``bench/run.py``'s FLOP count of ONNX graphs (the recogniser's part of ``flop_bound_ms``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import run  # noqa: E402 - bench/run.py


def _model() -> object:
    """x (n, 3, 8, 8) -> Conv 3->4 3x3 pad 1 -> depthwise Conv 3x3 -> Flatten -> Gemm 256->10
    -> MatMul 10->5."""
    inits = [
        numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w1"),
        numpy_helper.from_array(np.zeros((4, 1, 3, 3), np.float32), "w2"),
        numpy_helper.from_array(np.zeros((10, 256), np.float32), "w3"),
        numpy_helper.from_array(np.zeros((10, 5), np.float32), "w4"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2"], ["b"], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Flatten", ["b"], ["c"]),
        helper.make_node("Gemm", ["c", "w3"], ["d"], transB=1),
        helper.make_node("MatMul", ["d", "w4"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_gflop_counts_conv_gemm_matmul_for_one_input() -> None:
    conv = 2 * (4 * 8 * 8) * (3 * 3 * 3)
    depthwise = 2 * (4 * 8 * 8) * (1 * 3 * 3)
    gemm = 2 * 10 * 256
    matmul = 2 * 5 * 10
    assert run.onnx_gflop(_model()) * 1e9 == pytest.approx(conv + depthwise + gemm + matmul)


def test_recognizer_gflop_is_none_or_positive() -> None:
    # None without models.recognizer (the quality branch not merged) or its weights file.
    gflop = run.recognizer_gflop_per_pass()
    assert gflop is None or gflop > 0.1
