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

    Umeyama's closed form over all points: deterministic, unlike a RANSAC fit, and exact when
    the points are a similar copy of the template.

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
    var_s = (s0**2).sum() / len(src)
    if var_s < 1e-12:
        scale, rot = 1.0, np.eye(2)
    else:
        cov = d0.T @ s0 / len(src)
        u, sig, vt = np.linalg.svd(cov)
        d = np.ones(2)
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            d[-1] = -1.0
        rot = u @ np.diag(d) @ vt
        scale = float((sig * d).sum() / var_s)
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
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
