"""Five-point similarity alignment to the ArcFace 112x112 template."""

from __future__ import annotations

import cv2
import numpy as np

# ArcFace/InsightFace 112x112 template, points in LANDMARK_NAMES order (image-left eye first).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
ALIGNED_SIZE = 112


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Umeyama's least squares over all points (deterministic, unlike a RANSAC fit, and exact
    when the points are a similar copy of the template), in its closed form for the plane:
    with both point sets centred, ``a = sum(s . d)`` and ``b = sum(s x d)``, the best rotation
    and scale are ``[[a, -b], [b, a]] / sum(|s|^2)``; no reflection can come out of it. The
    same matrix as the SVD route (``tests/models/test_geometry.py``) at about a quarter of its
    cost, which matters as it runs three times per face (famous-selfie's 38 faces, one call
    each: 1.9 ms against 7.7, medians of 40).

    Args:
        src: (N, 2) points in the image.
        dst: (N, 2) target points.

    Returns:
        (2, 3) float64 affine matrix for ``cv2.warpAffine``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    norm = float((s0**2).sum())
    matrix = np.empty((2, 3), dtype=np.float64)
    if norm < 1e-12 * len(src):  # all points in one place: no rotation or scale to fit
        matrix[:, :2] = np.eye(2)
    else:
        a = float((s0 * d0).sum()) / norm
        b = float((s0[:, 0] * d0[:, 1] - s0[:, 1] * d0[:, 0]).sum()) / norm
        matrix[:, :2] = ((a, -b), (b, a))
    matrix[:, 2] = mu_d - matrix[:, :2] @ mu_s
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Warp a face to the 112x112 ArcFace template.

    Args:
        image: (H, W, 3) uint8 RGB.
        landmarks: (5, 2) points in ``models.types.LANDMARK_NAMES`` order, image pixels.

    Returns:
        (112, 112, 3) uint8 RGB aligned crop (outside the image is black).
    """
    matrix = similarity_transform(landmarks, ARCFACE_TEMPLATE)
    return cv2.warpAffine(
        image, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR, borderValue=0
    )
