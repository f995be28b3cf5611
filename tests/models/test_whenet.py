"""WHENet estimator: AFLW2000 accuracy, sign convention, batching, mirror symmetry, edge cases."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from models.types import Box, HeadPose
from models.whenet import (
    INPUT_SIZE,
    CropSettings,
    WHENetEstimator,
    WHENetWeightsError,
    crop_faces,
    default_weights_path,
)
from tests.models.headpose_eval import (
    evaluate,
    find_face_box,
    find_faces,
    flip_errors,
    load_flip_set,
    load_headpose_set,
)

pytestmark = pytest.mark.models
# The largest angle difference allowed between bfloat16 (OpenVINO) and float32 (torch).
BF16_DEGREES = 1.0


@pytest.fixture(scope="module")
def estimator() -> WHENetEstimator:
    est = WHENetEstimator()
    est.warm_up()
    return est


@pytest.fixture(scope="module")
def headpose_set(data_dir: Path) -> tuple[list, list]:
    images = load_headpose_set(data_dir)
    return images, [find_face_box(item.rgb) for item in images]


def test_mae_on_aflw2000_subset(estimator: WHENetEstimator, headpose_set: tuple) -> None:
    images, boxes = headpose_set
    mae, missed = evaluate(estimator.estimate, images, boxes)
    print(
        f"\nWHENet on {len(images)} AFLW2000 images (default crop): "
        + ", ".join(f"{k} {v:.2f}" for k, v in mae.items())
        + f"; missed {missed}"
    )
    # image00036 (yaw 68, a profile): found by neither this detector nor mtcnn 0.1.1.
    assert missed == 1
    # The requirement.
    assert all(mae[a] < 10.0 for a in ("yaw", "pitch", "roll")), mae
    # What the tuned default achieves (bench/pose_tuning.md: 2.16 / 3.96 / 2.23, mean 2.78),
    # with room for detector and numeric drift.
    assert mae["mean"] <= 3.3, mae
    assert mae["yaw"] <= 2.8 and mae["pitch"] <= 4.5 and mae["roll"] <= 2.8, mae


def test_signs_follow_the_api_convention(estimator: WHENetEstimator, headpose_set: tuple) -> None:
    found = [(item, box) for item, box in zip(*headpose_set, strict=True) if box is not None]
    images = [item for item, _ in found]
    pred = [estimator.estimate(item.rgb, [box])[0] for item, box in found]
    for angle in ("yaw", "pitch", "roll"):
        p = np.array([getattr(x, angle) for x in pred])
        t = np.array([getattr(item.pose, angle) for item in images])  # labels, API convention
        # Every angle spans tens of degrees in this set, so a flipped sign would correlate < 0.
        assert np.corrcoef(p, t)[0, 1] > 0.8, angle
        assert np.abs(p - t).mean() < np.abs(-p - t).mean() / 3, angle


Faces = tuple[np.ndarray, list[Box]]


@pytest.fixture(scope="module")
def t1(data_dir: Path) -> Faces:
    """insightface/t1.jpg (RGB) and the boxes of its faces."""
    bgr = cv2.imread(str(data_dir / "faces" / "insightface" / "t1.jpg"), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return rgb, [box for box, _ in find_faces(rgb)]


def test_batch_equals_one_at_a_time(estimator: WHENetEstimator, t1: Faces) -> None:
    rgb, found = t1
    height, width = rgb.shape[:2]
    boxes = [*found, (width - 40.0, height - 40.0, 90.0, 90.0)]  # the last partly outside
    assert len(boxes) >= 5
    single = [estimator.estimate(rgb, [box])[0] for box in boxes]
    results = []
    saved = estimator.max_batch
    try:
        for max_batch in (len(boxes), 2):  # one pass with every face, then passes of two
            estimator.max_batch = max_batch
            results.append(estimator.estimate(rgb, boxes))
    finally:
        estimator.max_batch = saved
    results.append(estimator.estimate(rgb, boxes))  # the default
    for result in results:
        assert len(result) == len(boxes)
        for a, b in zip(single, result, strict=True):
            for angle in ("yaw", "pitch", "roll"):
                assert abs(getattr(a, angle) - getattr(b, angle)) < 1e-3, (angle, a, b)


def test_runtimes_match_torch(estimator: WHENetEstimator, t1: Faces) -> None:
    """ONNX Runtime (float32) within 0.01 degree of torch; OpenVINO, the default, in bfloat16
    within BF16_DEGREES (its accuracy on AFLW2000: ``app.eval_pose``, README)."""
    assert estimator.runtime == "openvino"  # the default
    rgb, boxes = t1
    reference = WHENetEstimator(runtime="torch").estimate(rgb, boxes)
    ort = WHENetEstimator(runtime="onnxruntime").estimate(rgb, boxes)
    ours = estimator.estimate(rgb, boxes)
    worst = 0.0
    for a, b, c in zip(ort, ours, reference, strict=True):
        for angle in ("yaw", "pitch", "roll"):
            assert abs(getattr(a, angle) - getattr(c, angle)) < 1e-2, (angle, a, c)
            worst = max(worst, abs(getattr(b, angle) - getattr(c, angle)))
    assert 0 < worst < BF16_DEGREES
    with pytest.raises(ValueError, match="runtime"):
        WHENetEstimator(runtime="tvm")


def test_every_way_of_running_the_faces_agrees(estimator: WHENetEstimator, t1: Faces) -> None:
    from models.pose import cores_shared

    rgb, boxes = t1
    assert len(boxes) >= 4  # enough to take the side-by-side single-threaded way
    alone = estimator.estimate(rgb, boxes)
    few = [p for i in range(0, len(boxes), 3) for p in estimator.estimate(rgb, boxes[i : i + 3])]
    with cores_shared(True):  # another image in progress: one thread, one face after another
        shared = estimator.estimate(rgb, boxes)
    for a, b, c in zip(alone, few, shared, strict=True):
        for angle in ("yaw", "pitch", "roll"):
            assert abs(getattr(a, angle) - getattr(b, angle)) < 1e-3, (angle, a, b)
            assert abs(getattr(a, angle) - getattr(c, angle)) < 1e-3, (angle, a, c)


def test_mirroring_negates_yaw_and_roll(estimator: WHENetEstimator, data_dir: Path) -> None:
    photos = load_flip_set(data_dir)
    err = flip_errors(estimator.estimate, photos)
    print(
        f"\nWHENet flip consistency over {int(err['faces'])} faces in {len(photos)} photos: "
        f"|yaw+yaw'| {err['yaw']:.2f}, |pitch-pitch'| {err['pitch']:.2f}, "
        f"|roll+roll'| {err['roll']:.2f} degrees"
    )
    assert err["faces"] >= 30
    assert err["yaw"] <= 3.0 and err["pitch"] <= 3.0 and err["roll"] <= 3.0, err


def test_no_boxes_skips_the_network(
    estimator: WHENetEstimator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> None:
        raise AssertionError("the network ran")

    monkeypatch.setattr(estimator, "network", boom)
    assert estimator.estimate(np.zeros((50, 60, 3), np.uint8), []) == []


def test_awkward_boxes_do_not_crash(estimator: WHENetEstimator) -> None:
    from skimage import data as skdata

    rgb = skdata.astronaut()  # 512x512, face near (170-240, 60-170)
    boxes = [
        (-60.0, -60.0, 150.0, 150.0),  # partly outside, top-left
        (450.0, 430.0, 120.0, 120.0),  # partly outside, bottom-right
        (600.0, 600.0, 50.0, 50.0),  # wholly outside
        (100.0, 100.0, 0.0, 0.0),  # degenerate
        (100.0, 100.0, 1.0, 1.0),
        (100.0, 100.0, -5.0, 20.0),
        (10.5, 20.25, 300.7, 0.5),
    ]
    poses = estimator.estimate(rgb, boxes)
    assert len(poses) == len(boxes)
    for pose in poses:
        assert isinstance(pose, HeadPose)
        assert all(math.isfinite(v) for v in (pose.yaw, pose.pitch, pose.roll))
    assert -180.0 <= poses[0].yaw <= 180.0 and -99.0 <= poses[0].pitch <= 99.0


def test_crop_pads_outside_the_image_black() -> None:
    rgb = np.full((100, 100, 3), 200, np.uint8)
    plain = CropSettings(margin_x=0.0, margin_y=0.0, square=False, interpolation="nearest")
    crops = crop_faces(rgb, [(-50.0, 0.0, 100.0, 100.0), (0.0, 0.0, 100.0, 100.0)], plain)
    assert crops.shape == (2, INPUT_SIZE, INPUT_SIZE, 3) and crops.dtype == np.uint8
    half = INPUT_SIZE // 2
    assert (crops[0][:, : half - 1] == 0).all() and (crops[0][:, half + 1 :] == 200).all()
    assert (crops[1] == 200).all()


def test_crop_geometry_square_and_margins() -> None:
    rgb = np.zeros((400, 400, 3), np.uint8)
    rgb[100:300, 150:250] = 255  # a 100x200 (w x h) white box
    square = CropSettings(margin_x=0.0, margin_y=0.0, square=True, interpolation="nearest")
    crop = crop_faces(rgb, [(150.0, 100.0, 100.0, 200.0)], square)[0]
    cols = np.flatnonzero(crop[INPUT_SIZE // 2, :, 0])
    # The square crop is 200x200 around the box: the white part is the middle half.
    assert abs(cols[0] - INPUT_SIZE / 4) <= 1 and abs(cols[-1] - 3 * INPUT_SIZE / 4) <= 1
    assert crop[:, INPUT_SIZE // 2, 0].all()


def test_missing_weights_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "WHENet.h5"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        WHENetEstimator(missing)


def test_unreadable_weights_file_names_the_path(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file" * 100)
    with pytest.raises(WHENetWeightsError, match="garbage.h5"):
        WHENetEstimator(garbage)


def test_weights_file_missing_a_layer_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.h5"
    shutil.copyfile(default_weights_path(), broken)
    with h5py.File(broken, "r+") as f:
        names = [n for n in f.attrs["layer_names"] if n != b"roll_new"]
        f.attrs["layer_names"] = np.array(names)
    with pytest.raises(WHENetWeightsError, match="roll_new"):
        WHENetEstimator(broken)
