"""How the quality components' defaults were calibrated: their raw values on a labelled set.

Reads a labels CSV as ``bench/make_verdict_set.py`` writes it (``file,expect,reason,source,
kind``: clean portraits and degraded copies of them) and runs the service's pipeline with the
default settings on each image (its largest face). Prints, per kind of image, the spread of
every component's raw value, then:

- the share of clean faces passing every quality component (every reason except
  ``low_confidence``, the detector's own gate, which the components do not decide);
- the share of degraded faces rejected, and rejected with the expected reason.

Usage: ``.venv/bin/python bench/quality_calibration.py bench/out/verdicts/labels.csv
[--marked DIR]`` (``--marked`` writes each image with its verdict drawn). The last line is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.eval_verdicts import NO_FACE, Outcome, judged_face, read_labels  # noqa: E402
from app.models_state import load_models  # noqa: E402
from app.settings import load_settings  # noqa: E402
from models.decode import decode_image  # noqa: E402
from models.quality.measures import COMPONENT_NAMES  # noqa: E402
from models.report import mark_image  # noqa: E402

DETECTOR_REASONS = frozenset({"low_confidence"})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels", type=Path)
    parser.add_argument("--marked", type=Path, default=None)
    args = parser.parse_args(argv)
    # Every confident face's unified score, refused or not: the calibration compares them all.
    settings = load_settings()
    pipeline, default = load_models(settings)
    policy = replace(default, unified_scope="all")
    folder = args.labels.parent
    raws: dict[str, dict[str, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    outcomes: list[Outcome] = []
    costs: dict[str, list[float]] = collections.defaultdict(list)
    for label in read_labels(args.labels):
        image = decode_image((folder / label.file).read_bytes(), settings.max_pixels)
        assessment = pipeline.assess_image(image, policy)
        for stage in ("quality_per_face", "recognizer_per_face"):
            if assessment.timing_ms.get(stage):
                costs[stage].append(assessment.timing_ms[stage])
        if args.marked:
            args.marked.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.marked / f"{Path(label.file).stem}.jpg"), mark_image(assessment))
        face = judged_face(assessment)
        if face is None:
            outcomes.append(Outcome(label, False, (NO_FACE,)))
            continue
        outcomes.append(Outcome(label, face.accepted, face.reasons))
        for name, m in face.quality.components.items():
            raws[label.kind][name].append(m.raw)
        raws[label.kind]["unified"].append(face.quality.unified.raw)
    for kind, table in raws.items():
        print(f"{kind} ({len(table['unified'])} faces)")
        for name in (*COMPONENT_NAMES, "unified"):
            v = np.array(table[name])
            print(
                f"  {name:<24} min {v.min():9.3f}  median {np.median(v):9.3f}  max {v.max():9.3f}"
            )
    clean = [o for o in outcomes if o.label.expect == "accept"]
    clean_pass = [o for o in clean if not set(o.reasons) - DETECTOR_REASONS]
    degraded = [o for o in outcomes if o.label.expect == "reject"]
    rejected = [o for o in degraded if o.reasons]
    right = [o for o in rejected if o.label.reason in o.reasons]
    figures = {
        "clean": len(clean),
        "clean_pass_components": round(len(clean_pass) / max(1, len(clean)), 4),
        "degraded": len(degraded),
        "degraded_rejected": round(len(rejected) / max(1, len(degraded)), 4),
        "reason_right": round(len(right) / max(1, len(rejected)), 4),
        **{f"{k}_ms_median": round(float(np.median(v)), 2) for k, v in costs.items()},
    }
    for o in outcomes:
        off = (o.label.expect == "accept" and set(o.reasons) - DETECTOR_REASONS) or (
            o.label.expect == "reject" and o.label.reason not in o.reasons
        )
        if off:
            print(
                f"  off: {o.label.file} expect {o.label.expect} {o.label.reason} "
                f"got {list(o.reasons)}"
            )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
