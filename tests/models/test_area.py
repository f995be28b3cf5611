"""``models.area``: MTCNN's pyramid levels are OpenCV's ``INTER_AREA`` pixels, bit for bit."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models import area
from models.area import area_crops, area_levels
from models.detector import pyramid

pytestmark = pytest.mark.models


def opencv(image: np.ndarray, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    return [cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA) for h, w in shapes]


def assert_same(image: np.ndarray, shapes: list[tuple[int, int]]) -> None:
    for (h, w), ours, ref in zip(
        shapes, area_levels(image, shapes), opencv(image, shapes), strict=True
    ):
        assert ours.shape == (h, w, 3) and ours.dtype == np.uint8
        assert np.array_equal(ours, ref), (image.shape, (h, w), int((ours != ref).sum()))


def test_the_compiled_pyramid_is_built():
    """pip builds ``models._area`` with the package: without it every level falls back to
    OpenCV (the same pixels, five times slower), which this test does not let pass unseen."""
    assert area.NATIVE


@pytest.mark.shared_data
def test_every_level_of_every_shared_face_image_is_opencvs(data_dir: Path):
    paths = sorted((data_dir / "faces").rglob("*.jpg")) + sorted(
        (data_dir / "faces").rglob("*.png")
    )
    assert len(paths) >= 40
    compared = 0
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for min_face_size in (12, 20, 57):
            levels = pyramid(*rgb.shape[:2], min_face_size, 0.709)
            shapes = [(int(h), int(w)) for h, w in levels.shapes]
            assert_same(rgb, shapes)
            compared += len(shapes)
    assert compared > 1000


def test_random_sizes_and_scales_are_opencvs():
    """Noise and smooth images, sizes from 1 px up, scales from just under 1 to over 100,
    one axis a whole multiple and the other not, levels given in any order."""
    rng = np.random.default_rng(7)
    for trial in range(150):
        height, width = (int(v) for v in rng.integers(1, 420, size=2))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        if trial % 2:
            image = cv2.GaussianBlur(image, (0, 0), 2.5)
        shapes = [
            (int(rng.integers(1, height + 1)), int(rng.integers(1, width + 1))) for _ in range(6)
        ]
        if height % 2 == 0 and width > 2:
            shapes.append((height // 2, width - 1))  # whole multiple on one axis only
        assert_same(image, shapes)


def test_the_paths_opencv_takes_otherwise_are_left_to_it():
    """The same size, whole-number scales on both axes (OpenCV's integer path), and a level
    larger than the image: OpenCV's own answer, whatever it is."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    assert_same(image, [(120, 90), (60, 45), (40, 30), (120, 45), (240, 180), (121, 91)])
    assert area_levels(image, []) == []


def test_a_white_image_stays_white_and_a_black_one_black():
    """Weights that sum to a hair over 1 round to 255, not past it; zeros stay zero."""
    for value in (0, 255):
        image = np.full((97, 131, 3), value, dtype=np.uint8)
        for level in area_levels(image, [(41, 53), (13, 17), (1, 1)]):
            assert (level == value).all()


def test_a_view_of_an_image_is_resized_as_the_image():
    """A crop or a channel-reversed view (not contiguous) gives the contiguous copy's levels."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    view = base[10:190, 20:280, ::-1]
    shapes = [(100, 150), (37, 61)]
    for ours, ref in zip(
        area_levels(view, shapes), opencv(np.ascontiguousarray(view), shapes), strict=True
    ):
        assert np.array_equal(ours, ref)


def test_the_compiled_function_refuses_what_it_cannot_resize():
    from models import _area

    image = np.zeros((20, 30, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        _area.area_pyramid(np.zeros((20, 30, 4), dtype=np.uint8), [np.empty((10, 10, 4), np.uint8)])
    with pytest.raises(ValueError, match="no larger than src"):
        _area.area_pyramid(image, [np.empty((21, 30, 3), np.uint8)])
    with pytest.raises(ValueError, match="no larger than src"):
        _area.area_pyramid(image, [np.empty((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="not C-contiguous"):
        _area.area_pyramid(image, [np.empty((10, 10, 3), np.uint8)[:, ::2]])
    frozen = np.empty((10, 10, 3), np.uint8)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _area.area_pyramid(image, [frozen])
    with pytest.raises(TypeError, match="sequence of buffers"):
        _area.area_pyramid(image, 5)


def reference_crop(image: np.ndarray, window: tuple[int, int, int, int], size: int) -> np.ndarray:
    """The reference's crop: a float window, black outside the image, area-resized."""
    x, y, w, h = window
    padded = np.zeros((image.shape[0] + 2 * h, image.shape[1] + 2 * w, 3), dtype=np.float32)
    padded[h : h + image.shape[0], w : w + image.shape[1]] = image
    crop = padded[y + h : y + 2 * h, x + w : x + 2 * w] if -w < x and -h < y else None
    if crop is None or crop.shape[:2] != (h, w):
        crop = np.zeros((h, w, 3), np.float32)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def test_crops_are_opencvs_float_crops_inside_across_and_outside_the_image():
    """Windows of every kind: inside, across an edge or a corner, wholly outside; square and
    not; larger than the crop size (the compiled path), whole multiples of it, the same size
    and smaller (OpenCV's own paths), in one batch."""
    rng = np.random.default_rng(11)
    image = cv2.GaussianBlur(rng.integers(0, 256, (180, 240, 3), dtype=np.uint8), (0, 0), 1.5)
    for size in (24, 48):
        windows = [
            (-5, -7, size + 13, size + 13),
            (230, 170, 3 * size, 3 * size),
            (500, 10, 60, 60),
        ]
        windows += [
            (30, 40, 2 * size, 2 * size),
            (30, 40, size, size),
            (30, 40, size - 5, size - 5),
        ]
        windows += [(10, 20, size + 30, 2 * size + 7)]
        for _ in range(60):
            side = int(rng.integers(size - 10, 4 * size))
            other = side if rng.random() < 0.7 else int(rng.integers(size - 10, 4 * size))
            windows.append(
                (int(rng.integers(-side, 240)), int(rng.integers(-other, 180)), side, other)
            )
        batch = area_crops(image, np.asarray(windows), size)
        assert batch.shape == (len(windows), size, size, 3) and batch.dtype == np.float32
        for window, crop in zip(windows, batch, strict=True):
            assert np.array_equal(crop, reference_crop(image, window, size)), (window, size)
    assert area_crops(image, np.empty((0, 4)), 24).shape == (0, 24, 24, 3)


@pytest.mark.shared_data
def test_the_detectors_crops_of_a_crowd_are_opencvs(data_dir: Path):
    """famous-selfie's RNet and ONet candidates (1317 and 332 boxes), each crop compared."""
    from models.detector import MTCNNDetector, _crops

    bgr = cv2.imread(str(data_dir / "faces" / "mtcnn_demo" / "famous-selfie.jpg"), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    detector = MTCNNDetector()
    boxes = detector._stage_pnet(rgb, pyramid(*rgb.shape[:2], 20, 0.709))
    onet_boxes = np.fix(detector._stage_rnet(rgb, boxes)[:, 0:4])
    assert len(boxes) > 1000 and len(onet_boxes) > 200
    for candidates, size in ((boxes, 24), (onet_boxes, 48)):
        cut, kept = _crops(rgb, candidates, size)
        patches = cut.cut()
        assert len(kept) == len(candidates)
        for box, patch in zip(candidates.astype(np.int64), patches, strict=True):
            window = (box[0] - 1, box[1] - 1, box[2] - box[0] + 1, box[3] - box[1] + 1)
            expected = (reference_crop(rgb, window, size) - np.float32(127.5)) * np.float32(
                0.0078125
            )
            assert np.array_equal(patch, expected), window


def test_the_compiled_crops_refuse_windows_smaller_than_the_crop():
    from models import _area

    image = np.zeros((50, 50, 3), dtype=np.uint8)
    out = np.zeros((1, 24, 24, 3), np.float32)
    with pytest.raises(ValueError, match="is not at least 24 x 24"):
        _area.area_crops(image, np.asarray([[0, 0, 23, 30]], np.int64), out)
    with pytest.raises(ValueError, match=r"\(N, 4\) int64"):
        _area.area_crops(image, np.asarray([[0, 0, 30, 30]], np.int32), out)
    with pytest.raises(ValueError, match=r"\(N, S, S, 3\) float32"):
        _area.area_crops(image, np.asarray([[0, 0, 30, 30]], np.int64), out.astype(np.float64))
