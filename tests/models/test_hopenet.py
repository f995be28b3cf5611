"""Hopenet: official snapshot layout, strict loading, decoding, sign convention, batching.

No weights are downloaded: snapshots are generated from a reference list of the official
deep-head-pose key names and shapes written out here (independently of ``models.hopenet``),
filled deterministically from a seeded generator, saved with ``torch.save`` and loaded through
the real path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.hopenet import (
    CROP_MARGIN,
    Hopenet,
    HopenetEstimator,
    SnapshotError,
    margin_crop,
    preprocess,
)
from models.types import HeadPose


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (channels,),
        f"{prefix}.bias": (channels,),
        f"{prefix}.running_mean": (channels,),
        f"{prefix}.running_var": (channels,),
        f"{prefix}.num_batches_tracked": (),
    }


def official_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of ``hopenet_robust_alpha1.pkl`` (torchvision ResNet-50 names + heads)."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    inplanes = 64
    for layer, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        for block in range(blocks):
            p = f"layer{layer}.{block}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            shapes.update(_bn(f"{p}.bn1", planes))
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes.update(_bn(f"{p}.bn2", planes))
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            shapes.update(_bn(f"{p}.bn3", planes * 4))
            if block == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", planes * 4))
            inplanes = planes * 4
    for head in ("fc_yaw", "fc_pitch", "fc_roll"):
        shapes[f"{head}.weight"] = (66, 2048)
        shapes[f"{head}.bias"] = (66,)
    shapes["fc_finetune.weight"] = (3, 2048 + 3)
    shapes["fc_finetune.bias"] = (3,)
    return shapes


def make_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Fill the official layout with deterministic, numerically sane values."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in official_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        elif key.endswith("running_mean"):
            state[key] = torch.randn(shape, generator=gen) * 0.1
        elif ".bn" in key or key.startswith("bn1") or ".downsample.1." in key:
            # a small scale on each residual branch's last BN keeps 16 blocks from blowing up
            base = (0.2 if ".bn3." in key else 1.0) if key.endswith("weight") else 0.0
            state[key] = base + torch.randn(shape, generator=gen) * 0.05
        elif key.endswith("bias"):
            state[key] = torch.randn(shape, generator=gen) * 0.1
        elif key.startswith("fc_"):
            state[key] = torch.randn(shape, generator=gen) * 0.01
        else:  # convolutions: He init keeps activations bounded through 50 layers
            fan_in = math.prod(shape[1:])
            state[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
    return state


def rig_head(state: dict[str, torch.Tensor], head: str, peak_bin: int) -> None:
    """Make ``head`` ignore the features and put (almost) all probability on ``peak_bin``."""
    state[f"{head}.weight"] = torch.zeros(66, 2048)
    bias = torch.zeros(66)
    bias[peak_bin] = 40.0
    state[f"{head}.bias"] = bias


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return make_state_dict()


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("hopenet") / "hopenet_generated.pkl"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def estimator(snapshot: Path) -> HopenetEstimator:
    return HopenetEstimator(snapshot)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)
    img[100:250, 150:300] = (200, 160, 140)  # a flat patch so that crops differ
    return img


BOXES = [
    (150.0, 100.0, 150.0, 150.0),
    (-10.0, -5.0, 80.0, 90.0),  # partly outside: clipped
    (400.0, 280.0, 70.0, 75.0),
    (20.0, 200.0, 300.0, 140.0),
    (200.5, 30.25, 40.0, 44.0),
]


def test_model_layout_matches_official_snapshot() -> None:
    model_shapes = {k: tuple(v.shape) for k, v in Hopenet().state_dict().items()}
    assert model_shapes == official_shapes()
    params = sum(p.numel() for p in Hopenet().parameters())
    assert params == 23_508_032 + 3 * (2048 * 66 + 66) + (2051 * 3 + 3)


def test_estimate_output_and_empty(estimator: HopenetEstimator, image: np.ndarray) -> None:
    assert estimator.name == "hopenet"
    poses = estimator.estimate(image, BOXES)
    assert len(poses) == len(BOXES)
    for pose in poses:
        assert isinstance(pose, HeadPose)
        for angle in (pose.yaw, pose.pitch, pose.roll):
            assert isinstance(angle, float)
            assert -99.0 <= angle <= 99.0
    assert estimator.estimate(image, []) == []
    estimator.warm_up()
    assert estimator.describe()["name"] == "hopenet"


def test_batched_equals_one_at_a_time(estimator: HopenetEstimator, image: np.ndarray) -> None:
    batched = estimator.estimate(image, BOXES)
    single = [estimator.estimate(image, [box])[0] for box in BOXES]
    for b, s in zip(batched, single, strict=True):
        assert b.yaw == pytest.approx(s.yaw, abs=1e-4)
        assert b.pitch == pytest.approx(s.pitch, abs=1e-4)
        assert b.roll == pytest.approx(s.roll, abs=1e-4)
    # the random weights must actually tell the faces apart, or this test proves nothing
    assert np.ptp([p.yaw for p in batched]) > 0.5


def test_max_batch_splits_without_changing_results(
    snapshot: Path, estimator: HopenetEstimator, image: np.ndarray
) -> None:
    whole = estimator.estimate(image, BOXES)
    split = HopenetEstimator(snapshot, max_batch=2).estimate(image, BOXES)
    for a, b in zip(whole, split, strict=True):
        assert a.yaw == pytest.approx(b.yaw, abs=1e-4)
        assert a.pitch == pytest.approx(b.pitch, abs=1e-4)
        assert a.roll == pytest.approx(b.roll, abs=1e-4)


def test_channels_last_matches_contiguous(snapshot: Path, image: np.ndarray) -> None:
    nchw = HopenetEstimator(snapshot, channels_last=False, runtime="torch").estimate(image, BOXES)
    nhwc = HopenetEstimator(snapshot, channels_last=True, runtime="torch").estimate(image, BOXES)
    for a, b in zip(nchw, nhwc, strict=True):
        assert a.yaw == pytest.approx(b.yaw, abs=1e-3)
        assert a.pitch == pytest.approx(b.pitch, abs=1e-3)
        assert a.roll == pytest.approx(b.roll, abs=1e-3)


def test_onnxruntime_matches_torch(
    snapshot: Path, estimator: HopenetEstimator, image: np.ndarray
) -> None:
    assert estimator.runtime == "onnxruntime"  # the default
    reference = HopenetEstimator(snapshot, runtime="torch").estimate(image, BOXES)
    for a, b in zip(estimator.estimate(image, BOXES), reference, strict=True):
        assert a.yaw == pytest.approx(b.yaw, abs=1e-3)
        assert a.pitch == pytest.approx(b.pitch, abs=1e-3)
        assert a.roll == pytest.approx(b.roll, abs=1e-3)
    with pytest.raises(ValueError, match="runtime"):
        HopenetEstimator(snapshot, runtime="tvm")


@pytest.mark.parametrize(("yaw_bin", "pitch_bin", "roll_bin"), [(40, 10, 50), (33, 0, 65)])
def test_decoding_and_sign_convention(
    tmp_path: Path,
    state: dict[str, torch.Tensor],
    image: np.ndarray,
    yaw_bin: int,
    pitch_bin: int,
    roll_bin: int,
) -> None:
    rigged = dict(state)
    rig_head(rigged, "fc_yaw", yaw_bin)
    rig_head(rigged, "fc_pitch", pitch_bin)
    rig_head(rigged, "fc_roll", roll_bin)
    path = tmp_path / "rigged.pkl"
    torch.save(rigged, path)
    poses = HopenetEstimator(path).estimate(image, BOXES[:2])
    for pose in poses:
        # Hopenet's +yaw turns toward the image's left; the API's toward the right.
        assert pose.yaw == pytest.approx(-(yaw_bin * 3 - 99), abs=0.5)
        assert pose.pitch == pytest.approx(pitch_bin * 3 - 99, abs=0.5)
        assert pose.roll == pytest.approx(roll_bin * 3 - 99, abs=0.5)
    if yaw_bin == 40:
        assert poses[0].yaw == pytest.approx(-21.0, abs=0.5)


def test_module_prefix_and_wrapped_snapshots_load(
    tmp_path: Path, state: dict[str, torch.Tensor], estimator: HopenetEstimator, image: np.ndarray
) -> None:
    reference = estimator.estimate(image, BOXES[:1])[0]
    prefixed = tmp_path / "dataparallel.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, prefixed)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 25}, wrapped)
    plain_wrapped = tmp_path / "plain_wrapped.pth"
    torch.save({"state_dict": state}, plain_wrapped)
    for path in (prefixed, wrapped, plain_wrapped):
        pose = HopenetEstimator(path).estimate(image, BOXES[:1])[0]
        assert pose.yaw == pytest.approx(reference.yaw, abs=1e-4)


def test_snapshot_without_num_batches_tracked_loads(
    tmp_path: Path, state: dict[str, torch.Tensor]
) -> None:
    # snapshots saved before PyTorch 0.4.1 (the official ones) lack these buffers
    # (and were written in the legacy, pre-zip serialization format)
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pkl"
    torch.save(old, path, _use_new_zipfile_serialization=False)
    HopenetEstimator(path)


def _refused(path: Path, match: str) -> None:
    with pytest.raises(SnapshotError, match=match) as info:
        HopenetEstimator(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message


def test_missing_path_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.pkl", "no such file")
    _refused(tmp_path, "not a file")


def test_malformed_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "text.pkl"
    path.write_bytes(b"this is not a torch file\n")
    _refused(path, "not a readable torch state dict")
    csv = tmp_path / "labels.csv"
    csv.write_text("file,yaw_deg\nimage00002.jpg,1.0\n")
    _refused(csv, "not a readable torch state dict")


def test_whole_model_pickle_is_refused(tmp_path: Path) -> None:
    # torch.save(model) pickles classes; weights_only loading must refuse to import them
    path = tmp_path / "whole_model.pkl"
    torch.save(torch.nn.Linear(2, 2), path)
    _refused(path, r"Unsupported global: GLOBAL torch\.nn\.modules\.linear\.Linear")


def test_non_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pkl"
    torch.save([1, 2, 3], path)
    _refused(path, "not a state dict")


def test_missing_key_is_refused(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    broken = dict(state)
    del broken["layer3.2.conv2.weight"]
    path = tmp_path / "missing.pkl"
    torch.save(broken, path)
    _refused(path, r"missing 1 key\(s\) e\.g\. layer3\.2\.conv2\.weight")


def test_extra_key_is_refused(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    broken = dict(state)
    broken["fc_angles.weight"] = torch.zeros(3, 2048)
    path = tmp_path / "extra.pkl"
    torch.save(broken, path)
    _refused(path, r"unexpected 1 key\(s\) e\.g\. fc_angles\.weight")


def test_wrong_shape_is_refused(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    broken = dict(state)
    broken["fc_yaw.weight"] = torch.zeros(62, 2048)  # a 62-bin head
    path = tmp_path / "shape.pkl"
    torch.save(broken, path)
    _refused(path, r"wrong shape, e\.g\. fc_yaw\.weight \(62, 2048\) != \(66, 2048\)")


def test_margin_crop_clips_to_image() -> None:
    img = np.zeros((200, 300, 3), dtype=np.uint8)
    assert margin_crop(img, (10, 20, 50, 60)).shape == (110, 90, 3)
    assert margin_crop(img, (100, 50, 50, 60)).shape == (60 + 2 * CROP_MARGIN, 110, 3)
    assert margin_crop(img, (280, 180, 50, 50)).shape == (50, 50, 3)
    assert margin_crop(img, (500, 500, 0, 0)).shape == (1, 1, 3)


def test_preprocess_normalises_rgb() -> None:
    mean_rgb = np.array([0.485, 0.456, 0.406]) * 255
    img = np.empty((100, 100, 3), dtype=np.uint8)
    img[:] = np.round(mean_rgb).astype(np.uint8)
    img[:, :50, 0] = 255  # red on the image's left half
    batch = preprocess(img, [(20, 20, 40, 40)])
    assert batch.shape == (1, 3, 224, 224)
    assert batch.dtype == np.float32
    assert batch[0, 0, 112, 5] == pytest.approx((1.0 - 0.485) / 0.229, abs=1e-5)
    assert batch[0, 0, 112, 220] == pytest.approx(0.0, abs=0.01)
    assert np.abs(batch[0, 1:]).max() < 0.01
