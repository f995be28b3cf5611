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


def _umeyama_svd(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama's similarity through the SVD of the covariance (the general-dimension route)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d0.T @ s0 / len(src))
    d = np.array([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / ((s0**2).sum() / len(src))
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def test_similarity_is_umeyamas_least_squares_fit():
    """The closed form gives the SVD route's matrix on noisy, rotated, even mirrored points
    (a mirrored face still gets the best proper rotation), and the identity for one point."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.05, 20.0)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        src = ARCFACE_TEMPLATE @ (scale * rot).T + rng.uniform(-500, 500, 2)
        src += rng.normal(0.0, rng.uniform(0.0, 10.0), src.shape)
        if rng.random() < 0.2:
            src[:, 0] = -src[:, 0]
        expected = _umeyama_svd(src, ARCFACE_TEMPLATE)
        np.testing.assert_allclose(similarity_transform(src, ARCFACE_TEMPLATE), expected, atol=1e-9)
    same = np.full((5, 2), 7.0)
    matrix = similarity_transform(same, ARCFACE_TEMPLATE)
    np.testing.assert_array_equal(matrix[:, :2], np.eye(2))
    np.testing.assert_allclose(matrix[:, 2], ARCFACE_TEMPLATE.mean(axis=0) - 7.0)


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
