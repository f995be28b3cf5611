"""The report's PNG writer: lossless, readable by OpenCV and Pillow, RGB order kept."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from models.png import encode_png


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 5, 3), (112, 112, 3), (97, 131, 3)])
def test_round_trip_is_lossless(shape: tuple[int, int, int]) -> None:
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(rgb)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    np.testing.assert_array_equal(back, rgb)
    with Image.open(io.BytesIO(data)) as img:
        img.load()  # Pillow checks every chunk's CRC and the zlib stream
        assert img.mode == "RGB" and img.size == (shape[1], shape[0])
        np.testing.assert_array_equal(np.asarray(img), rgb)


def test_non_contiguous_views_are_encoded() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    view = rgb[5:30, 10:50]
    back = cv2.imdecode(np.frombuffer(encode_png(view), np.uint8), cv2.IMREAD_COLOR_RGB)
    np.testing.assert_array_equal(back, view)


def test_compresses_smooth_images() -> None:
    ramp = np.tile(np.arange(200, dtype=np.uint8)[None, :, None], (100, 1, 3))
    assert len(encode_png(ramp)) < ramp.size / 10


def test_refuses_other_shapes() -> None:
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 3), np.float32))
