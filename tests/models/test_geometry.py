"""Alignment and blur on exact synthetic inputs (no models)."""

from __future__ import annotations

import cv2
import numpy as np

from models.align import ARCFACE_TEMPLATE, align_face, similarity_transform
from models.blur import laplacian_variance


def test_similarity_recovers_a_known_transform():
    angle, scale, shift = np.deg2rad(17.0), 2.5, np.array([40.0, -12.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE @ (scale * rot).T + shift
    matrix = similarity_transform(src, ARCFACE_TEMPLATE)
    mapped = src @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE, atol=1e-9)


def test_align_face_maps_landmarks_onto_the_template():
    image = np.zeros((400, 400, 3), np.uint8)
    points = ARCFACE_TEMPLATE * 2.0 + 100.0  # the template, twice as large, shifted
    for x, y in points:
        cv2.circle(image, (int(round(x)), int(round(y))), 3, (255, 255, 255), -1)
    aligned = align_face(image, points.astype(np.float32))
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    for x, y in ARCFACE_TEMPLATE:
        assert aligned[int(round(y)), int(round(x))].max() > 200


def test_laplacian_variance_orders_sharp_above_blurred():
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    flat = np.full((112, 112, 3), 77, np.uint8)
    assert laplacian_variance(flat) == 0.0
    assert laplacian_variance(sharp) > 10 * laplacian_variance(blurred)


def test_laplacian_variance_equals_the_definition():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)
    padded = np.pad(grey, 1, mode="reflect")
    lap = (
        padded[:-2, 1:-1]
        + padded[2:, 1:-1]
        + padded[1:-1, :-2]
        + padded[1:-1, 2:]
        - 4 * padded[1:-1, 1:-1]
    )
    assert abs(laplacian_variance(rgb) - lap.var()) < 1e-6
