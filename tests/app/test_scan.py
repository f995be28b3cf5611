"""``python -m app scan``: exact counts on real images, unique crop names, resume, interruption."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

from app import scan
from models.pipeline import Pipeline

pytestmark = pytest.mark.models


class Counting:
    """The real pipeline, counting calls; optionally interrupted at call ``stop_at``."""

    def __init__(self, pipeline: Pipeline, stop_at: int | None = None, how: str = "raise"):
        self.pipeline = pipeline
        self.calls = 0
        self.stop_at = stop_at
        self.how = how

    def assess_image(self, image, policy):
        self.calls += 1
        if self.calls == self.stop_at:
            if self.how == "raise":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while this image is assessed
        return self.pipeline.assess_image(image, policy)


def blank(path: Path, ext: str = ".png") -> None:
    ok, buf = cv2.imencode(ext, np.full((64, 64, 3), 128, np.uint8))
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.tobytes())


def lines(out: Path) -> list[dict]:
    text = (out / "report.jsonl").read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def run_main(monkeypatch, pipeline, *args: str) -> int:
    monkeypatch.setattr(scan, "build_pipeline", lambda settings: pipeline)
    return scan.main([*args, "--no-progress"])


def test_scan_a_folder_with_subfolders(monkeypatch, pipeline, astronaut_jpeg, data_dir, tmp_path):
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "astronaut.jpg").write_bytes(astronaut_jpeg)
    (src / "sub" / "astronaut.jpg").write_bytes(astronaut_jpeg)  # same stem, other folder
    shutil.copy(data_dir / "faces/deepface/img12.jpg", src / "img12.jpg")
    shutil.copy(
        data_dir / "faces/facenet_pytorch/paul_rudd_1_aligned.png",
        src / "sub/deeper/paul.PNG",  # extension in capitals (kate_siegel_1_aligned.png, an
        # upscaled crop, is now rightly rejected as blurry by the fixed-scale sharpness)
    )
    (src / "broken.jpg").write_text("this is text, not a JPEG\n", encoding="utf-8")
    (src / "notes.txt").write_text("not an image extension: never opened\n", encoding="utf-8")
    blank(src / "blank.png")
    blank(src / "blank.jpg", ".jpg")  # same stem as blank.png in the same folder
    out = tmp_path / "out"

    code = run_main(monkeypatch, pipeline, str(src), "--out", str(out), "--recursive", "--marked")

    assert code == 0
    report = lines(out)
    by_path = {r["path"]: r for r in report}
    assert list(by_path) == [
        "astronaut.jpg", "blank.jpg", "blank.png", "broken.jpg", "img12.jpg",
        "sub/astronaut.jpg", "sub/deeper/paul.PNG",
    ]  # fmt: skip
    assert by_path["broken.jpg"] == {
        "path": "broken.jpg",
        "status": "error",
        "error": {
            "code": "not_an_image",
            "message": "the file is not an image in a supported format",
        },
    }
    counts = {
        p: (r["faces_found"], r["faces_accepted"]) for p, r in by_path.items() if "faces" in r
    }
    assert counts == {
        "astronaut.jpg": (1, 1),
        "blank.jpg": (0, 0),
        "blank.png": (0, 0),
        "img12.jpg": (1, 1),
        "sub/astronaut.jpg": (1, 1),
        "sub/deeper/paul.PNG": (1, 1),
    }
    face = by_path["astronaut.jpg"]["faces"][0]
    assert face["verdict"] == "accepted" and face["reasons"] == []
    assert face["crop"] == "accepted/astronaut_0.png"
    assert {"face_confidence", "face_coordinate", "facie5points", "face_blur", "face_pose"} <= set(
        face
    )
    assert set(by_path["img12.jpg"]["timing_ms"]) == {
        "decode",
        "detect",
        "align",
        "blur",
        "pose",
        "recognizer",
        "recognizer_per_face",
        "quality",
        "quality_per_face",
    }
    assert set(face["quality"]) == {"unified", "components"}
    crops = sorted(p.name for p in (out / "accepted").iterdir())
    assert crops == [
        "astronaut_0.png", "img12_0.png", "sub__astronaut_0.png", "sub__deeper__paul_0.png",
    ]  # fmt: skip
    for name in crops:
        img = cv2.imread(str(out / "accepted" / name))
        assert img is not None and img.shape == (112, 112, 3)
    marked = sorted(p.name for p in (out / "marked").iterdir())
    assert marked == [
        "astronaut.jpg", "blank.jpg", "blank_png.jpg", "img12.jpg", "sub__astronaut.jpg",
        "sub__deeper__paul.jpg",
    ]  # fmt: skip


def test_summary_table_and_non_recursive(pipeline, policy, astronaut_jpeg, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "astronaut.JPEG").write_bytes(astronaut_jpeg)
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    blank(src / "sub" / "ignored.png")  # not scanned without --recursive
    options = scan.ScanOptions(src, tmp_path / "out", progress=False)
    summary = scan.run_scan(options, pipeline, policy)
    assert (summary.images_total, summary.images_done, summary.images_failed) == (2, 1, 1)
    assert (summary.faces_found, summary.faces_accepted, summary.faces_rejected) == (1, 1, 0)
    table = capsys.readouterr().out
    assert "images failed" in table and "faces accepted" in table and "images/s" in table
    assert "rejected: blurry" in table
    bad = lines(tmp_path / "out")[1]
    assert bad["status"] == "error" and bad["error"]["code"] == "undecodable_image"


def test_resume_processes_only_the_rest(pipeline, policy, astronaut_jpeg, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes(astronaut_jpeg)
    blank(src / "b.png")
    (src / "c.jpg").write_bytes(astronaut_jpeg)
    out = tmp_path / "out"
    first = Counting(pipeline)
    scan.run_scan(scan.ScanOptions(src, out, progress=False), first, policy)
    assert first.calls == 3
    full = (out / "report.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    # as if the first run died after one image, in the middle of writing the second line
    (out / "report.jsonl").write_text(full[0] + full[1][:25], encoding="utf-8")

    again = Counting(pipeline)
    summary = scan.run_scan(scan.ScanOptions(src, out, resume=True, progress=False), again, policy)

    assert again.calls == 2
    assert (summary.images_skipped, summary.images_done) == (1, 2)
    assert [r["path"] for r in lines(out)] == ["a.jpg", "b.png", "c.jpg"]
    assert sorted(p.name for p in (out / "accepted").iterdir()) == ["a_0.png", "c_0.png"]


@pytest.mark.parametrize("how", ["raise", "sigint"])
def test_interruption_leaves_a_valid_report(monkeypatch, pipeline, tmp_path, capsys, how):
    src = tmp_path / "in"
    for name in ("1.png", "2.png", "3.png", "4.png"):
        blank(src / name)
    out = tmp_path / "out"
    stopping = Counting(pipeline, stop_at=3 if how == "raise" else 2, how=how)

    code = run_main(monkeypatch, stopping, str(src), "--out", str(out))

    assert code == scan.EXIT_INTERRUPTED
    # KeyboardInterrupt during image 3 loses image 3; a first Ctrl-C during image 2 lets it finish
    assert [r["path"] for r in lines(out)] == ["1.png", "2.png"]
    assert "stopped early" in capsys.readouterr().out
    rest = Counting(pipeline)
    assert run_main(monkeypatch, rest, str(src), "--out", str(out), "--resume") == 0
    assert rest.calls == 2
    assert [r["path"] for r in lines(out)] == ["1.png", "2.png", "3.png", "4.png"]


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert scan.main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert scan.main([str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2


def test_output_names_are_unique_and_stable():
    rels = ["a.jpg", "a.png", "x/a.jpg", "x__a.jpg", "x/y/z.JPG"]
    names = scan.output_names(rels)
    assert names == {
        "a.jpg": "a",
        "a.png": "a_png",
        "x/a.jpg": "x__a",
        "x/y/z.JPG": "x__y__z",
        "x__a.jpg": "x__a_jpg",
    }
    assert scan.output_names(list(reversed(rels))) == names
