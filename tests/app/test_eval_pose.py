"""eval-pose: skipping, missed images, sign conversion, exact MAEs and the JSON summary line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.eval_pose import evaluate, main, read_labels
from models.detector import MTCNNDetector
from models.hopenet import SnapshotError
from models.types import Box, Face, HeadPose
from tests.models.headpose_eval import shared_detector

HEADER = "file,yaw_deg,pitch_deg,roll_deg,width,height,hopenet_excluded_gt99,source_repo\n"
SUMMARY_KEYS = ["n", "mae_yaw", "mae_pitch", "mae_roll", "mae", "missed"]


class StubEstimator:
    """Answers the same pose (API convention) for every face and records what it was given."""

    name = "stub"
    effective_precision = "f32"

    def __init__(self, pose: HeadPose) -> None:
        self.pose = pose
        self.calls: list[tuple[tuple[int, ...], list[Box]]] = []

    def estimate(self, image: np.ndarray, boxes: list[Box]) -> list[HeadPose]:
        self.calls.append((image.shape, list(boxes)))
        return [self.pose for _ in boxes]

    def warm_up(self) -> None:
        pass


def _face(box: Box, confidence: float) -> Face:
    return Face(box=box, confidence=confidence, landmarks=np.zeros((5, 2), np.float32))


class FakeDetector:
    """No face in an all-black image; otherwise two faces, the second the more confident."""

    def detect(self, image: np.ndarray) -> list[Face]:
        if not image.any():
            return []
        return [_face((1.0, 1.0, 10.0, 10.0), 0.90), _face((5.0, 6.0, 20.0, 21.0), 0.99)]


@pytest.fixture
def synthetic_set(tmp_path: Path) -> tuple[Path, Path]:
    """Labels + images for FakeDetector: two faces, one skipped, one black, one unreadable."""
    images = tmp_path / "images"
    images.mkdir()
    grey = np.full((40, 50, 3), 128, np.uint8)
    cv2.imwrite(str(images / "a.png"), grey)
    cv2.imwrite(str(images / "b.png"), grey)
    cv2.imwrite(str(images / "big.png"), grey)
    cv2.imwrite(str(images / "black.png"), np.zeros_like(grey))
    (images / "broken.png").write_bytes(b"not an image")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        HEADER
        + "a.png,20,0,-10,50,40,0,x\n"
        + "b.png,-5,15,5,50,40,0,x\n"
        + "big.png,120,0,0,50,40,1,x\n"
        + "black.png,0,0,0,50,40,0,x\n"
        + "broken.png,0,0,0,50,40,0,x\n"
    )
    return labels, images


def test_evaluate_exact_maes(synthetic_set: tuple[Path, Path]) -> None:
    labels, images = synthetic_set
    stub = StubEstimator(HeadPose(yaw=10.0, pitch=5.0, roll=-5.0))
    result = evaluate(labels, images, FakeDetector(), stub)
    # prediction in the labels' convention: yaw -10, pitch 5, roll -5
    # a: |-10-20|=30 |5-0|=5  |-5+10|=5 ; b: |-10+5|=5 |5-15|=10 |-5-5|=10
    assert result == {
        "n": 2,
        "mae_yaw": 17.5,
        "mae_pitch": 7.5,
        "mae_roll": 7.5,
        "mae": 10.833,
        "missed": 2,
    }
    assert list(result) == SUMMARY_KEYS
    # only the most confident face of each measured image reaches the estimator
    assert [boxes for _, boxes in stub.calls] == [[(5.0, 6.0, 20.0, 21.0)]] * 2


def test_evaluate_writes_one_line_per_row(synthetic_set: tuple[Path, Path]) -> None:
    labels, images = synthetic_set
    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.extend(text.splitlines())

    evaluate(labels, images, FakeDetector(), StubEstimator(HeadPose(0.0, 0.0, 0.0)), out=Sink())
    assert [line.split("\t")[0] for line in lines] == [
        "a.png",
        "b.png",
        "big.png",
        "black.png",
        "broken.png",
    ]
    assert lines[0] == (
        "a.png\tpred yaw=+0.00 pitch=+0.00 roll=+0.00\t"
        "label yaw=+20.00 pitch=+0.00 roll=-10.00\terr yaw=20.00 pitch=0.00 roll=10.00"
    )
    assert lines[2] == "big.png\tskipped (|angle| > 99)"
    assert lines[3] == "black.png\tmissed (no face)"
    assert lines[4] == "broken.png\tmissed (unreadable)"


def test_evaluate_nothing_measured(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(HEADER + "x.png,0,-100,0,1,1,1,x\n")
    result = evaluate(labels, tmp_path, FakeDetector(), StubEstimator(HeadPose(0.0, 0.0, 0.0)))
    assert result == {
        "n": 0,
        "mae_yaw": None,
        "mae_pitch": None,
        "mae_roll": None,
        "mae": None,
        "missed": 0,
    }


def test_read_labels_refuses_bad_csv(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,yaw_deg,pitch_deg\nx.png,1,2\n")
    with pytest.raises(ValueError, match="missing column\\(s\\) roll_deg"):
        read_labels(bad)
    bad.write_text("file,yaw_deg,pitch_deg,roll_deg\nx.png,1,two,3\n")
    with pytest.raises(ValueError, match=r"bad\.csv:2: bad angle"):
        read_labels(bad)


def test_main_json_is_the_last_stdout_line(
    synthetic_set: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    labels, images = synthetic_set
    built: list[tuple[str, str | None]] = []

    def build(name: str, snapshot: str | None) -> tuple[FakeDetector, StubEstimator]:
        built.append((name, snapshot))
        return FakeDetector(), StubEstimator(HeadPose(yaw=10.0, pitch=5.0, roll=-5.0))

    argv = ["--labels", str(labels), "--images", str(images)]
    argv += ["--estimator", "hopenet", "--snapshot", "h.pkl"]
    assert main(argv, build=build) == 0
    assert built == [("hopenet", "h.pkl")]
    out, err = capsys.readouterr()
    last = out.strip().splitlines()[-1]
    summary = json.loads(last)
    assert list(summary) == SUMMARY_KEYS
    assert summary == {
        "n": 2,
        "mae_yaw": 17.5,
        "mae_pitch": 7.5,
        "mae_roll": 7.5,
        "mae": 10.833,
        "missed": 2,
    }
    assert last == json.dumps(summary)
    assert "a.png\tpred" in err


def test_main_defaults_to_whenet(synthetic_set: tuple[Path, Path]) -> None:
    labels, images = synthetic_set
    built: list[tuple[str, str | None]] = []

    def build(name: str, snapshot: str | None) -> tuple[FakeDetector, StubEstimator]:
        built.append((name, snapshot))
        return FakeDetector(), StubEstimator(HeadPose(0.0, 0.0, 0.0))

    assert main(["--labels", str(labels), "--images", str(images)], build=build) == 0
    assert built == [("whenet", None)]


def test_main_refuses_bad_input(
    synthetic_set: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels, images = synthetic_set

    def never(name: str, snapshot: str | None) -> tuple[FakeDetector, StubEstimator]:
        raise AssertionError("must not build models")

    base = ["--labels", str(labels), "--images", str(images)]
    assert main(base + ["--estimator", "hopenet"], build=never) == 2
    assert "needs --snapshot" in capsys.readouterr().err
    assert main(base + ["--estimator", "nope"], build=never) == 2
    assert main(["--labels", str(tmp_path / "none.csv"), "--images", str(images)], never) == 2
    assert main(["--labels", str(labels), "--images", str(tmp_path / "none")], never) == 2
    assert main(["--images", str(images)], build=never) == 2
    capsys.readouterr()

    def broken(name: str, snapshot: str | None) -> tuple[FakeDetector, StubEstimator]:
        raise SnapshotError(f"Hopenet snapshot {snapshot}: no such file")

    assert main(base + ["--estimator", "hopenet", "--snapshot", "x.pkl"], build=broken) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "cannot load the models: Hopenet snapshot x.pkl: no such file" in err


# --- real images and the real mtcnn detector ------------------------------------------------


@pytest.fixture(scope="module")
def mtcnn_detector() -> MTCNNDetector:
    return shared_detector()


@pytest.fixture
def aflw_set(data_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """3 AFLW2000 faces with their real labels, one row out of range, one non-face image."""
    images = tmp_path / "images"
    images.mkdir()
    aflw = data_dir / "headpose" / "aflw2000"
    for name in ("image00002.jpg", "image00004.jpg", "image00006.jpg", "image00032.jpg"):
        shutil.copy(aflw / name, images / name)
    shutil.copy(data_dir / "negatives" / "flower.jpg", images / "flower.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        HEADER
        + "image00002.jpg,1.044,-22.874,4.909,450,450,0,XgTu/2DASL\n"
        + "image00004.jpg,68.155,26.933,17.244,450,450,0,XgTu/2DASL\n"
        + "image00032.jpg,-102.959,-300.0,297.596,450,450,1,XgTu/2DASL\n"
        + "image00006.jpg,50.485,-10.58,-13.571,450,450,0,XgTu/2DASL\n"
        + "flower.jpg,0,0,0,480,360,0,python-pillow/Pillow\n"
    )
    return labels, images


@pytest.mark.models
@pytest.mark.shared_data
def test_evaluate_real_detector_exact_maes(
    aflw_set: tuple[Path, Path], mtcnn_detector: MTCNNDetector
) -> None:
    labels, images = aflw_set
    stub = StubEstimator(HeadPose(yaw=10.0, pitch=-5.0, roll=2.0))
    result = evaluate(labels, images, mtcnn_detector, stub)
    # prediction in the labels' convention: yaw -10, pitch -5, roll 2
    # 00002: 11.044 17.874  2.909 ; 00004: 78.155 31.933 15.244 ; 00006: 60.485 5.58 15.571
    assert result == {
        "n": 3,
        "mae_yaw": 49.895,  # 149.684 / 3
        "mae_pitch": 18.462,  # 55.387 / 3
        "mae_roll": 11.241,  # 33.724 / 3
        "mae": 26.533,  # (49.89467 + 18.46233 + 11.24133) / 3
        "missed": 1,
    }
    assert len(stub.calls) == 3
    # image00006 holds two faces, both scored 0.9999 or more: the large one is measured
    (x, y, w, h) = stub.calls[2][1][0]
    assert (round(x), round(y), round(w), round(h)) == (184, 150, 138, 204)


@pytest.mark.models
@pytest.mark.shared_data
def test_evaluate_real_detector_with_hopenet(
    aflw_set: tuple[Path, Path], mtcnn_detector: MTCNNDetector, tmp_path: Path
) -> None:
    import torch

    from models.hopenet import Hopenet, HopenetEstimator

    snapshot = tmp_path / "random.pkl"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(Hopenet().state_dict(), snapshot)
    labels, images = aflw_set
    result = evaluate(labels, images, mtcnn_detector, HopenetEstimator(snapshot))
    assert result["n"] == 3
    assert result["missed"] == 1
    for key in ("mae_yaw", "mae_pitch", "mae_roll", "mae"):
        assert isinstance(result[key], float)
        assert 0.0 <= result[key] <= 200.0
