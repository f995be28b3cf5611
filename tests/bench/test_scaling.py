"""The pure helpers of ``bench/scaling.py``: sizes, fits, grid placement."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import scaling  # noqa: E402 - bench/scaling.py


@pytest.mark.parametrize("mp", [0.3, 1.0, 4.0, 12.0, 40.0])
def test_size_for_megapixels_keeps_aspect_and_stays_under(mp: float) -> None:
    h, w = scaling.size_for_megapixels(1728, 2500, mp)
    assert h * w <= mp * 1e6
    assert h * w >= mp * 1e6 * 0.998
    assert abs(w / h - 2500 / 1728) < 0.01


def test_fit_linear_recovers_a_line_and_its_knee() -> None:
    xs = [0.3, 1.0, 4.0, 12.0, 40.0]
    fit = scaling.fit_linear(xs, [20.0 + 5.0 * x for x in xs])
    assert fit.intercept == pytest.approx(20.0)
    assert fit.slope == pytest.approx(5.0)
    assert fit.knee == pytest.approx(4.0)
    assert fit.max_rel_residual == pytest.approx(0.0, abs=1e-9)


def test_fit_linear_weighs_relative_errors() -> None:
    # 10% off at the smallest point counts as much as 10% off at the largest.
    xs, ys = [1.0, 10.0, 100.0], [11.0, 20.0, 110.0]
    fit = scaling.fit_linear(xs, ys)
    rel = [abs(fit(x) - y) / y for x, y in zip(xs, ys, strict=True)]
    assert max(rel) == pytest.approx(fit.max_rel_residual)
    assert max(rel) < 0.25


def test_fit_linear_refuses_too_few_points() -> None:
    with pytest.raises(ValueError):
        scaling.fit_linear([1.0], [2.0])
    with pytest.raises(ValueError):
        scaling.fit_linear([1.0, 2.0], [0.0, 2.0])


def test_knee_is_none_without_a_fixed_part() -> None:
    assert scaling.LinearFit(-1.0, 2.0, 0.0).knee is None


def test_local_exponents() -> None:
    xs = [1.0, 2.0, 4.0]
    assert scaling.local_exponents(xs, [3.0, 3.0, 6.0]) == pytest.approx([0.0, 1.0])
    assert scaling.local_exponents(xs, [1.0, 4.0, 16.0]) == pytest.approx([2.0, 2.0])


@pytest.mark.parametrize("count", [1, 5, 20, 50])
def test_grid_slots_distinct_and_in_range(count: int) -> None:
    slots = scaling.grid_slots(count, 50)
    assert len(slots) == count
    assert all(0 <= s < 50 for s in slots)


def test_grid_slots_too_many() -> None:
    with pytest.raises(ValueError):
        scaling.grid_slots(51, 50)


def test_tile_box_centred_square() -> None:
    x, y, side = scaling.tile_box([100, 200, 50, 80], 1.5)
    assert side == 120
    assert (x + side / 2, y + side / 2) == (125, 240)


def test_crop_square_pads_with_grey() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    crop = scaling.crop_square(image, -5, -5, 10)
    assert crop.shape == (10, 10, 3)
    assert (crop[:5, :5] == 128).all()
    assert (crop[5:, 5:] == 0).all()


def test_stage_names_drop_per_face_averages() -> None:
    timings = [{"detect": 1.0, "recognizer": 2.0, "recognizer_per_face": 1.0}, {"pose": 3.0}]
    assert scaling.stage_names(timings) == ["detect", "recognizer", "pose"]


def test_usable_tile_refuses_neighbours_small_faces_and_padding() -> None:
    box = [100, 100, 60, 60]  # tile square: side 96 at (82, 82)
    assert scaling.usable_tile(box, [], 400, 400)
    assert not scaling.usable_tile(box, [[170, 100, 60, 60]], 400, 400)  # reaches in
    assert scaling.usable_tile(box, [[190, 100, 60, 60]], 400, 400)  # stays out
    assert not scaling.usable_tile([100, 100, 40, 40], [], 400, 400)  # too small
    assert not scaling.usable_tile([0, 0, 60, 60], [], 60, 60)  # mostly padding
