"""The issue's acceptance run: eval-pose with the default estimator on the shared AFLW2000 set."""

from __future__ import annotations

import json

import pytest

from app.eval_pose import main

pytestmark = [pytest.mark.models, pytest.mark.shared_data]


def test_default_estimator_beats_hopenet_paper_on_aflw(data_dir, capsys):
    code = main(
        [
            "--labels",
            str(data_dir / "headpose/labels.csv"),
            "--images",
            str(data_dir / "headpose/aflw2000"),
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    figures = json.loads(out[-1])
    print("\neval-pose (whenet):", figures)
    # 40 rows, one beyond 99 degrees skipped; image00036 (yaw 68, a profile) is found by
    # neither this detector nor mtcnn 0.1.1, the reference.
    assert figures["n"] == 38
    assert figures["missed"] == 1
    assert figures["mae"] <= 6.0
    assert max(figures["mae_yaw"], figures["mae_pitch"], figures["mae_roll"]) <= 7.0
    # Measured 2.159 / 3.960 / 2.232 (mean 2.784); a regression of half a degree shows here.
    assert figures["mae"] <= 3.3
