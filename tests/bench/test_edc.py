"""``bench/edc.py``'s arithmetic on numbers worked out by hand (the bench itself runs on real
images: ``bench/RESULTS.md``, "Error versus discard")."""

from __future__ import annotations

import numpy as np
import pytest

from bench.edc import Photo, Sample, edc, make_pairs, pair_quality, threshold_at_fmr


def test_threshold_leaves_at_most_the_fmr_share_of_impostors_above_it():
    impostor = np.linspace(0.1, 1.0, 10)
    assert threshold_at_fmr(impostor, 0.1) == pytest.approx(0.9)  # only 1.0 is above
    assert threshold_at_fmr(impostor, 0.05) == pytest.approx(1.0)  # none above
    assert threshold_at_fmr(impostor, 0.35) == pytest.approx(0.7)  # 0.8, 0.9, 1.0 above
    with pytest.raises(ValueError, match="no impostor pairs"):
        threshold_at_fmr(np.array([]), 0.1)


def test_edc_steps_and_partial_area():
    # misses (score <= 0.5) at qualities 1 and 3
    curve = edc(np.array([3.0, 1.0, 4.0, 2.0]), np.array([0.0, 0.0, 1.0, 1.0]), 0.5)
    assert curve.discarded.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert curve.fnmr.tolist() == pytest.approx([2 / 4, 1 / 3, 1 / 2, 0.0])
    assert curve.partial_area(0.3) == pytest.approx(0.25 * 0.5 + 0.05 / 3)
    assert curve.partial_area(1.0) == pytest.approx(0.25 * (0.5 + 1 / 3 + 0.5 + 0.0))
    assert curve.at(0.0) == 0.5
    assert curve.at(0.3) == pytest.approx(1 / 3)


def test_edc_discards_ties_together():
    curve = edc(np.array([1.0, 1.0, 2.0, 2.0]), np.array([0.0, 0.0, 1.0, 0.0]), 0.5)
    assert curve.discarded.tolist() == [0.0, 0.5]
    assert curve.fnmr.tolist() == [0.75, 0.5]
    assert curve.partial_area(0.3) == pytest.approx(0.75 * 0.3)
    assert curve.at(0.49) == 0.75
    assert curve.at(0.5) == 0.5


def test_pairs_skip_copies_of_one_photo_and_take_the_lower_quality():
    def sample(identity: str, capture: str, vector: list[float]) -> Sample:
        photo = Photo(f"{capture}.jpg", identity, capture)
        v = np.asarray(vector, np.float32)
        return Sample(photo, "clean", "", 1.0, 100.0, None, True, v / np.linalg.norm(v))

    samples = [
        sample("A", "a1", [1, 0]),
        sample("A", "a1", [1, 1]),  # a copy of a1: never paired with it
        sample("A", "a2", [0, 1]),
        sample("B", "b1", [-1, 0]),
    ]
    pairs, genuine, scores = make_pairs(samples)
    assert pairs.tolist() == [[0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert genuine.tolist() == [True, False, True, False, False]
    assert scores == pytest.approx([0.0, -1.0, np.sqrt(0.5), -np.sqrt(0.5), 0.0])
    assert pair_quality(np.array([3.0, 1.0, 2.0, 5.0]), pairs).tolist() == [2, 3, 1, 1, 2]
