"""Sharpness: variance of the Laplacian of the grey aligned crop (higher is sharper)."""

from __future__ import annotations

import cv2
import numpy as np


def laplacian_variance(rgb: np.ndarray) -> float:
    """Return the variance of the 3x3 Laplacian of the crop's grey image.

    Args:
        rgb: (H, W, 3) uint8 RGB, normally the 112x112 aligned face.

    Returns:
        The variance (float64); the original service's ``face_blur``.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
