"""MTCNNDetector on real images: exact results, parity with the mtcnn package, edge cases."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from mtcnn import MTCNN

from bench.detect_parity import iou, match_faces
from models import detector as detector_module
from models.detector import (
    LEGACY_PYRAMID_BELOW,
    MTCNNDetector,
    _level_shape,
    _pnet_tiles,
    pyramid,
    scale_pyramid,
    suppress,
)
from models.types import Face

pytestmark = pytest.mark.models

MIN_FACE_SIZES = (12, 20, 29, 30, 31, 40, 64, 100, 200, 400)
PARITY_IMAGES = ("mtcnn_ipazc/ivan.jpg", "insightface/t1.jpg", "mtcnn_demo/famous-selfie.jpg")
SELFIE = "mtcnn_demo/famous-selfie.jpg"
# The project's thresholds; the package's own ONet default is 0.8, so it is always passed.
PACKAGE_KWARGS = {"threshold_pnet": 0.6, "threshold_rnet": 0.7, "threshold_onet": 0.7}


@pytest.fixture(scope="module")
def detector() -> MTCNNDetector:
    det = MTCNNDetector()
    det.warm_up()
    return det


@pytest.fixture(scope="module")
def package() -> MTCNN:
    return MTCNN()


@pytest.fixture(scope="module")
def astronaut(astronaut_jpeg: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(astronaut_jpeg, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def selfie(data_dir: Path) -> np.ndarray:
    return read_rgb(data_dir / "faces" / SELFIE)


def check_faces(faces: list[Face], image: np.ndarray) -> None:
    """Types, shapes, clipping and order that every detection result must have."""
    height, width = image.shape[:2]
    assert all(isinstance(f, Face) for f in faces)
    confidences = [f.confidence for f in faces]
    assert confidences == sorted(confidences, reverse=True)
    for f in faces:
        x, y, w, h = f.box
        assert 0 <= x <= x + w <= width - 1 and 0 <= y <= y + h <= height - 1
        assert 0.7 < f.confidence <= 1.0
        assert f.landmarks.shape == (5, 2) and f.landmarks.dtype == np.float32


def test_astronaut_one_face_as_the_package_finds_it(detector, package, astronaut):
    faces = detector.detect(astronaut)
    (ref,) = package.detect_faces(astronaut, **PACKAGE_KWARGS)
    assert len(faces) == 1
    face = faces[0]
    check_faces(faces, astronaut)
    assert face.confidence > 0.99
    assert abs(face.confidence - float(ref["confidence"])) < 1e-5
    # The package rounds its box to integers; ours keeps the float it rounded.
    assert np.abs(np.round(face.box) - np.asarray(ref["box"])).max() == 0
    x, y, w, h = face.box
    assert 175 < x < 185 and 60 < y < 70 and 80 < w < 90 and 102 < h < 112
    assert face.landmark_dict() == {k: [int(a), int(b)] for k, (a, b) in ref["keypoints"].items()}
    # left_eye is the eye on the image's left; eyes above the nose, the nose above the mouth.
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


@pytest.mark.parametrize("min_face_size", MIN_FACE_SIZES)
def test_astronaut_at_every_min_face_size(detector, astronaut, min_face_size):
    faces = detector.detect(astronaut, min_face_size=min_face_size)
    check_faces(faces, astronaut)
    if min_face_size == 400:  # the face is about 110 px: no pyramid level finds it
        assert faces == []
        return
    (face,) = faces
    assert face.confidence > 0.99
    assert iou(face.box, (180.1, 64.9, 84.7, 107.3)) > 0.85


@pytest.mark.shared_data
@pytest.mark.parametrize("min_face_size", MIN_FACE_SIZES)
def test_selfie_at_every_min_face_size(detector, selfie, min_face_size):
    faces = detector.detect(selfie, min_face_size=min_face_size)
    check_faces(faces, selfie)
    if min_face_size >= 200:  # larger than every face in the picture
        assert faces == []
    else:
        assert sum(f.confidence > 0.99 for f in faces) >= 15


@pytest.mark.shared_data
def test_larger_min_face_size_finds_no_more_faces(detector, astronaut, selfie):
    # Neighbouring sizes may trade one borderline face (confidence < 0.8) as the pyramid
    # samples other scales (the selfie: 39 faces at 20 and 29, 40 at 30 and 31, as mtcnn does),
    # so the selfie is checked on a ladder of clearly different sizes.
    ladder = (12, 20, 64, 100, 200, 400)
    selfie_counts = [len(detector.detect(selfie, min_face_size=m)) for m in ladder]
    assert selfie_counts == sorted(selfie_counts, reverse=True)
    assert selfie_counts[1] == 39 and selfie_counts[-1] == 0
    astronaut_counts = [len(detector.detect(astronaut, min_face_size=m)) for m in MIN_FACE_SIZES]
    assert astronaut_counts == [1] * 9 + [0]


def test_pyramid_is_computed_once_per_size():
    first = pyramid(512, 384, 20, 0.709)
    assert pyramid(512, 384, 20, 0.709) is first  # the same size: nothing computed again
    assert pyramid(384, 512, 20, 0.709) is not first
    assert first.scales == tuple(scale_pyramid(512, 384, 20))
    expected = np.stack([_level_shape(512, 384, s) for s in first.scales])
    assert np.array_equal(first.shapes, expected)
    assert np.array_equal(first.shapes_tensor.numpy(), expected)
    assert np.array_equal(first.tiles_tensor.numpy(), _pnet_tiles(expected))
    assert np.array_equal(first.out_shapes, (expected - 1) // 2 - 4)
    with pytest.raises(ValueError, match="read-only"):
        first.shapes[0, 0] = 1  # shared by every image of the size: nobody may change it
    empty = pyramid(11, 500, 20, 0.709)
    assert empty.scales == () and empty.shapes.shape == (0, 2) and empty.tiles_tensor is None


@pytest.mark.parametrize("shape", [(1, 1, 3), (11, 11, 3), (5, 300, 3), (300, 5, 3), (12, 12, 3)])
def test_images_smaller_than_pnet_give_nothing(detector, shape):
    assert detector.detect(np.full(shape, 200, np.uint8)) == []


def test_plain_images_give_nothing(detector, package):
    grey = np.full((240, 320, 3), 128, np.uint8)
    assert detector.detect(grey) == []
    # The package gets there through its InvalidArgumentError path (RNet given no candidate).
    assert package.detect_faces(grey, **PACKAGE_KWARGS) == []
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((20, 20, 3), 128, np.uint8), min_face_size=12) == []


def test_invalid_arguments_are_refused(detector):
    image = np.zeros((64, 64, 3), np.uint8)
    for size in (0, 11, 1001, -20):
        with pytest.raises(ValueError, match="min_face_size must be between 12 and 1000"):
            detector.detect(image, min_face_size=size)
    for size in (20.0, True, "20"):
        with pytest.raises(TypeError, match="min_face_size must be an integer"):
            detector.detect(image, min_face_size=size)
    for bad in (np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8), image.astype(float)):
        with pytest.raises(ValueError, match=r"image must be \(H, W, 3\) uint8 RGB"):
            detector.detect(bad)
    with pytest.raises(TypeError, match="image must be a numpy array"):
        detector.detect(image.tolist())
    with pytest.raises(ValueError, match="min_face_size"):
        MTCNNDetector(min_face_size=8)
    with pytest.raises(ValueError, match="scale_factor"):
        MTCNNDetector(scale_factor=1.0)
    with pytest.raises(ValueError, match="thresholds"):
        MTCNNDetector(thresholds=(0.6, 0.7))
    assert detector.name == "mtcnn"


@pytest.mark.shared_data
@pytest.mark.parametrize("name", PARITY_IMAGES)
def test_parity_with_the_package(detector, package, data_dir, name):
    image = read_rgb(data_dir / "faces" / name)
    ref = package.detect_faces(image, min_face_size=20, **PACKAGE_KWARGS)
    ours = detector.detect(image, min_face_size=20)
    assert len(ref) >= 2
    assert match_faces(ref, ours) == (len(ref), 0)
    # Same order and, in practice, the same numbers: the package's own float arithmetic.
    assert len(ours) == len(ref)
    for face, r in zip(ours, ref, strict=True):
        assert abs(face.confidence - float(r["confidence"])) < 1e-4
        assert np.abs(np.round(face.box) - np.asarray(r["box"])).max() <= 1


def test_pyramid_is_the_package_below_30_and_fixed_from_30():
    from mtcnn.utils.images import build_scale_pyramid

    # Below 30: the package's scales, level for level (here none falls under PNet's size).
    for height, width, size in [(512, 512, 20), (797, 1200, 12), (561, 561, 25), (886, 1280, 20)]:
        expected = build_scale_pyramid(width, height, min_face_size=size, scale_factor=0.709)
        assert scale_pyramid(height, width, size) == expected.tolist()
    # ...minus the levels PNet cannot take, on which the package fails (here one 9 px level).
    expected = build_scale_pyramid(1280, 886, min_face_size=25, scale_factor=0.709)
    assert int(886 * expected[-1]) == 9
    assert scale_pyramid(886, 1280, 25) == expected[:-1].tolist()
    # From 30 the package's last levels shrink under 12 px (PNet fails on them); ours stop at
    # the last level whose smaller side is still >= 12 px.
    for height, width, size in [(797, 1200, 30), (512, 512, 64), (797, 1200, 400), (100, 50, 30)]:
        broken = build_scale_pyramid(width, height, min_face_size=size, scale_factor=0.709)
        assert min(height, width) * broken[-1] < 12
        scales = scale_pyramid(height, width, size)
        assert scales[0] == pytest.approx(12 / size)
        assert min(height, width) * scales[-1] >= 12 > min(height, width) * scales[-1] * 0.709
        assert np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert LEGACY_PYRAMID_BELOW == 30
    assert scale_pyramid(11, 500, 12) == [] and scale_pyramid(300, 5, 20) == []
    assert scale_pyramid(40, 40, 400) == []  # 12/400 of 40 px is under one PNet window


@pytest.mark.parametrize("pairs_per_block", [1 << 20, 7])
def test_suppress_matches_the_package_nms(monkeypatch, pairs_per_block):
    from mtcnn.utils.bboxes import iou as package_iou
    from mtcnn.utils.bboxes import nms as package_nms

    monkeypatch.setattr(detector_module, "_PAIRS_PER_BLOCK", pairs_per_block)
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 5, 60, 400):
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(-5, 60, (n, 2))  # a few degenerate (inverted) boxes on purpose
        boxes = np.concatenate([xy, xy + wh], axis=1)
        if n > 4:
            boxes[3] = boxes[1]  # an exact duplicate
        for method in ("union", "min"):
            for threshold in (0.5, 0.7):
                ours = suppress(boxes, threshold, method)
                if n == 0:
                    assert ours.size == 0
                    continue
                with np.errstate(divide="ignore", invalid="ignore"):
                    expected = package_nms(package_iou(boxes, method=method), threshold)
                assert ours.tolist() == expected.tolist()


def test_suppress_decides_pairs_at_the_threshold_as_the_package():
    """Pairs the x-overlap bound leaves out could never fail: check it where it is tight."""
    from mtcnn.utils.bboxes import iou as package_iou
    from mtcnn.utils.bboxes import nms as package_nms

    rng = np.random.default_rng(5)
    for threshold in (0.5, 0.7):
        share = threshold / (1 + threshold)
        # Equal squares shifted by just under, exactly and just over the x-shift at which
        # their overlap is the threshold, on rows that also overlap in y by various amounts.
        side = 12.0 / 0.6
        shifts = (1 - share * 2) * side + np.array([-1e-6, -1e-12, 0.0, 1e-12, 1e-6, 0.5])
        boxes = []
        for k, dx in enumerate(shifts):
            for dy in (0.0, 1e-9, 0.3):
                x, y = 50.0 * k, 30.0 * len(boxes)
                boxes += [
                    [x, y, x + side, y + side],
                    [x + dx, y + dy, x + dx + side, y + side + dy],
                ]
        # A PNet-like level: a stride-2 grid of 12 px windows with small regressions, scaled.
        grid = np.stack(np.meshgrid(np.arange(30), np.arange(8)), -1).reshape(-1, 2) * 2.0
        windows = np.concatenate([grid, grid + 11], axis=1) + rng.normal(0, 0.8, (len(grid), 4))
        boxes = np.concatenate([np.asarray(boxes), windows / 0.35])
        order = rng.permutation(len(boxes))
        boxes = boxes[order]
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = package_nms(package_iou(boxes, method="union"), threshold)
        assert suppress(boxes, threshold).tolist() == expected.tolist()
        assert 0 < len(expected) < len(boxes)


@pytest.mark.parametrize("pairs_per_block", [1 << 20, 7])
def test_grouped_suppress_is_each_group_on_its_own(monkeypatch, pairs_per_block):
    monkeypatch.setattr(detector_module, "_PAIRS_PER_BLOCK", pairs_per_block)
    rng = np.random.default_rng(11)
    n = 300
    xy = rng.uniform(0, 120, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 50, (n, 2))], axis=1)
    boxes[7] = boxes[8] = boxes[3]  # exact duplicates
    groups = rng.integers(0, 6, n)
    groups[7], groups[8] = groups[3], (groups[3] + 1) % 6  # one in its group, one in another
    expected = []
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        expected += members[suppress(boxes[members], 0.5)].tolist()
    ours = suppress(boxes, 0.5, groups=groups)
    assert ours.tolist() == sorted(expected)
    # Without groups every pair counts, so fewer boxes survive on these crowded boxes.
    assert len(suppress(boxes, 0.5)) < len(ours)


@pytest.mark.parametrize("name", ["pnet", "rnet", "onet"])
def test_forwards_give_the_package_networks_values(detector, astronaut, name):
    """The PReLU rewrite only changes speed: every output equals the package's own call, but
    PNet's face probability (``FaceLogit``), which is within float rounding of it."""
    image = tf.constant(((astronaut.astype(np.float32) - 127.5) / 128.0)[np.newaxis])
    if name == "pnet":
        inputs = [tf.image.resize(image, [s, s], method="area") for s in (307, 154, 13)]
    else:
        # The face, a background patch and boxes reaching past the image's edges.
        boxes = tf.constant(
            [
                [0.12, 0.35, 0.33, 0.52],
                [0.6, 0.1, 0.8, 0.3],
                [-0.1, -0.05, 0.2, 0.2],
                [0.9, 0.85, 1.2, 1.1],
            ]
        )
        size = 24 if name == "rnet" else 48
        inputs = [tf.image.crop_and_resize(image, boxes, tf.zeros([4], tf.int32), [size, size])]
    net = getattr(detector, f"_{name}")
    forward = getattr(detector_module, f"{name}_forward")
    for x in inputs:
        ref = net(x, training=False)
        if name == "pnet":
            # Box regression as the package's; the face probability by FaceLogit, the same
            # function in other float operations: close to a few float32 ulps, not equal.
            reg, logit = forward(net, x, detector._pnet_face)
            face = tf.math.sigmoid(logit)
            assert np.array_equal(reg.numpy(), ref[0].numpy())
            expected = ref[1].numpy()[..., 1:]
            assert face.shape == expected.shape
            assert np.abs(face.numpy() - expected).max() < 1e-6
            assert not np.array_equal(face.numpy(), expected)  # really computed another way
            continue
        ours = forward(net, x)
        assert len(ours) == len(ref) == (3 if name == "onet" else 2)
        for a, b in zip(ours, ref, strict=True):
            assert a.shape == b.shape
            assert np.array_equal(a.numpy(), b.numpy())


@pytest.mark.shared_data
def test_pnet_bands_give_the_whole_levels_values(detector, selfie, astronaut):
    """Cutting the large levels into bands of rows only changes speed, not one value."""
    for image in (selfie, astronaut, selfie[:701, :1001]):
        height, width = image.shape[:2]
        shapes = np.stack(
            [_level_shape(height, width, s) for s in scale_pyramid(height, width, 20)]
        )
        tiles = _pnet_tiles(shapes)
        whole = np.asarray([(k, 0, h) for k, h in enumerate(shapes[:, 0])], dtype=np.int32)
        assert len(tiles) > len(whole)  # the largest level is cut
        # Every output row of every level is in exactly one band, in level and row order.
        out_rows = (shapes[:, 0] - 1) // 2 - 4
        for level, rows in enumerate(out_rows):
            bands = tiles[tiles[:, 0] == level]
            assert bands[0, 1] == 0 and bands[-1, 2] == shapes[level, 0]
            assert np.all(bands[1:, 1] == bands[:-1, 2] - 10)  # overlap of one 12-row window
            assert sum((b - a - 1) // 2 - 4 for _, a, b in bands) == rows
        args = (tf.constant(image), tf.constant(shapes))
        cut = [t.numpy() for t in detector._pnet_call(*args, tf.constant(tiles))]
        ref = [t.numpy() for t in detector._pnet_call(*args, tf.constant(whole))]
        for a, b in zip(cut, ref, strict=True):
            assert a.shape == b.shape and np.array_equal(a, b)


def test_each_network_is_compiled_once(detector):
    for shape in [(100, 120, 3), (333, 257, 3), (640, 480, 3)]:
        detector.detect(np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8))
    for fn in (detector._pnet_fn, detector._rnet_fn, detector._onet_fn):
        assert fn.experimental_get_tracing_count() == 1
