"""``eval-verdicts``: how often the pipeline's verdict matches a labelled set.

Usage::

    python -m app eval-verdicts --labels bench/out/verdicts/labels.csv \\
        --images bench/out/verdicts [--json]

The labels CSV (``bench/make_verdict_set.py`` writes one) has the columns ``file,expect,reason``
and optionally ``kind`` (what was done to the image; the breakdown groups by it, else by the
expected reason) and ``source``. ``expect`` is ``accept`` or ``reject``; ``reason`` names the
gate a rejected image should fail (empty for ``accept``).

Each image goes through the service's own pipeline and gates (settings from
``config/config.yaml`` and ``FACEQ_*``), in-process. The face judged is the largest detection
(the subject of a portrait; the most confident one among boxes of equal size). An image with no
face is rejected with the reason ``no_face``; one that cannot be read, with ``unreadable``.

Three shares are reported, each with its counts:

- *clean accepted*: images labelled ``accept`` whose face is accepted;
- *degraded rejected*: images labelled ``reject`` whose face is rejected;
- *reason right*: among those rejected, the ones whose reasons include the expected reason.

Output: a table with the breakdown by kind and every miss, or with ``--json`` one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from models.decode import ImageError, decode_image
from models.pipeline import Assessment, FaceResult, Policy

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("file", "expect", "reason")
EXPECTATIONS = ("accept", "reject")
NO_FACE = "no_face"
UNREADABLE = "unreadable"
# The targets for the three shares.
TARGETS = {"clean_accepted": 0.95, "degraded_rejected": 0.95, "reason_right": 0.90}


class Assessor(Protocol):
    """What the evaluation needs of a pipeline (``models.pipeline.Pipeline`` fits)."""

    max_pixels: int

    def assess_image(self, image: Any, policy: Policy) -> Assessment: ...


Builder = Callable[[], tuple[Assessor, Policy]]


@dataclass(frozen=True)
class VerdictLabel:
    """One labelled image."""

    file: str
    expect: str  # accept | reject
    reason: str  # expected reason of a rejection; "" for accept
    kind: str  # what was done to the image (the breakdown's key)
    source: str = ""


@dataclass(frozen=True)
class Outcome:
    """The verdict on one labelled image's face."""

    label: VerdictLabel
    accepted: bool
    reasons: tuple[str, ...]  # the judged face's reasons, or (no_face,) / (unreadable,)

    @property
    def verdict_right(self) -> bool:
        return self.accepted == (self.label.expect == "accept")

    @property
    def reason_right(self) -> bool:
        """Whether a rejected face carries the expected reason (False for accepted faces)."""
        return not self.accepted and self.label.reason in self.reasons

    @property
    def missed(self) -> bool:
        return not self.verdict_right or (self.label.expect == "reject" and not self.reason_right)


def read_labels(labels_csv: Path) -> list[VerdictLabel]:
    """Read the labels CSV (see the module docstring).

    Raises:
        ValueError: a required column is missing, an ``expect`` is neither accept nor reject,
            or a ``reject`` row names no reason.
    """
    with open(labels_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{labels_csv}: missing column(s) {', '.join(missing)}")
        labels = []
        for line, row in enumerate(reader, start=2):
            expect = (row["expect"] or "").strip()
            reason = (row["reason"] or "").strip()
            if expect not in EXPECTATIONS:
                raise ValueError(f"{labels_csv}:{line}: expect must be accept or reject")
            if expect == "reject" and not reason:
                raise ValueError(f"{labels_csv}:{line}: a reject row needs a reason")
            kind = (row.get("kind") or "").strip() or (reason if expect == "reject" else "clean")
            labels.append(
                VerdictLabel(
                    file=row["file"],
                    expect=expect,
                    reason=reason if expect == "reject" else "",
                    kind=kind,
                    source=(row.get("source") or "").strip(),
                )
            )
    return labels


def judged_face(assessment: Assessment) -> FaceResult | None:
    """The face an image is judged by: the largest box, then the most confident."""
    if not assessment.faces:
        return None
    return max(assessment.faces, key=lambda f: (f.face.box[2] * f.face.box[3], f.face.confidence))


def judge(label: VerdictLabel, images_dir: Path, pipeline: Assessor, policy: Policy) -> Outcome:
    """Run the pipeline on one labelled image and return the verdict on its judged face."""
    try:
        image = decode_image((images_dir / label.file).read_bytes(), pipeline.max_pixels)
    except (OSError, ImageError) as exc:
        log.warning("cannot read %s: %s", label.file, exc)
        return Outcome(label, False, (UNREADABLE,))
    face = judged_face(pipeline.assess_image(image, policy))
    if face is None:
        return Outcome(label, False, (NO_FACE,))
    return Outcome(label, face.accepted, face.reasons)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The figures of a run: the three shares with counts, the breakdown by kind, the misses."""
    clean = [o for o in outcomes if o.label.expect == "accept"]
    degraded = [o for o in outcomes if o.label.expect == "reject"]
    rejected = [o for o in degraded if not o.accepted]
    figures: dict[str, Any] = {
        "images": len(outcomes),
        "clean_accepted": _counted(sum(o.accepted for o in clean), len(clean)),
        "degraded_rejected": _counted(len(rejected), len(degraded)),
        "reason_right": _counted(sum(o.reason_right for o in rejected), len(rejected)),
    }
    figures["targets_met"] = all(
        figures[k]["share"] is not None and figures[k]["share"] >= t for k, t in TARGETS.items()
    )
    by_kind: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        entry = by_kind.setdefault(
            o.label.kind,
            {"expect": o.label.expect, "reason": o.label.reason, "n": 0, "right": 0},
        )
        entry["n"] += 1
        if o.label.expect == "accept":
            entry["right"] += o.accepted
        else:
            entry.setdefault("rejected", 0)
            entry["rejected"] += not o.accepted
            entry["right"] += o.reason_right
    figures["by_kind"] = by_kind
    figures["misses"] = [
        {
            "file": o.label.file,
            "kind": o.label.kind,
            "expect": o.label.expect,
            "reason": o.label.reason,
            "verdict": "accept" if o.accepted else "reject",
            "reasons": list(o.reasons),
        }
        for o in outcomes
        if o.missed
    ]
    return figures


def _counted(part: int, whole: int) -> dict[str, Any]:
    return {"count": int(part), "of": whole, "share": _share(part, whole)}


def evaluate(
    labels_csv: Path, images_dir: Path, pipeline: Assessor, policy: Policy
) -> dict[str, Any]:
    """Judge every labelled image and return ``summarise``'s figures.

    Raises:
        ValueError: the labels file is malformed (see ``read_labels``).
    """
    outcomes = []
    for label in read_labels(labels_csv):
        outcome = judge(label, images_dir, pipeline, policy)
        log.debug("%s: %s %s", label.file, outcome.accepted, outcome.reasons)
        outcomes.append(outcome)
    return summarise(outcomes)


def _percent(counted: dict[str, Any]) -> str:
    share = counted["share"]
    text = "n/a" if share is None else f"{100.0 * share:.1f}%"
    return f"{text:>7}  ({counted['count']}/{counted['of']})"


def format_table(figures: dict[str, Any]) -> str:
    """The human-readable report of ``summarise``'s figures."""
    lines = [
        f"images              {figures['images']}",
        f"clean accepted     {_percent(figures['clean_accepted'])}"
        f"   target >= {TARGETS['clean_accepted']:.0%}",
        f"degraded rejected  {_percent(figures['degraded_rejected'])}"
        f"   target >= {TARGETS['degraded_rejected']:.0%}",
        f"reason right       {_percent(figures['reason_right'])}"
        f"   target >= {TARGETS['reason_right']:.0%}  (among degraded rejected)",
        f"targets met        {'yes' if figures['targets_met'] else 'no'}",
        "",
        f"{'kind':<16} {'expect':<7} {'reason':<16} {'n':>4} {'rejected':>9} {'right':>6}",
    ]
    for kind, e in figures["by_kind"].items():
        rejected = str(e["rejected"]) if "rejected" in e else "-"
        lines.append(
            f"{kind:<16} {e['expect']:<7} {e['reason'] or '-':<16} {e['n']:>4} "
            f"{rejected:>9} {e['right']:>6}"
        )
    lines.append("(right: accepted for clean, rejected with the expected reason for the others)")
    lines.append("")
    lines.append(f"misses: {len(figures['misses'])}")
    for m in figures["misses"]:
        expected = "accept" if m["expect"] == "accept" else f"reject {m['reason']}"
        got = "accept" if m["verdict"] == "accept" else f"reject {','.join(m['reasons'])}"
        lines.append(f"  {m['file']}: expected {expected}, got {got}")
    return "\n".join(lines)


def build_models() -> tuple[Assessor, Policy]:
    """The service's pipeline and default policy from the settings (models loaded, warmed)."""
    from app.models_state import load_models
    from app.runtime import configure_logging
    from app.settings import load_settings

    settings = load_settings()
    configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    return load_models(settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app eval-verdicts",
        description="Share of clean faces accepted, degraded faces rejected and rejections "
        "with the expected reason, over a labelled set (bench/make_verdict_set.py).",
    )
    parser.add_argument("--labels", type=Path, required=True, help="labels CSV")
    parser.add_argument("--images", type=Path, required=True, help="folder of the images")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser


def main(
    argv: Sequence[str] | None = None, build: Builder | None = None, out: TextIO | None = None
) -> int:
    """Run the ``eval-verdicts`` command.

    Args:
        argv: arguments after ``eval-verdicts`` (default: ``sys.argv[1:]``).
        build: returns ``(pipeline, policy)``; default ``build_models`` (tests pass theirs).
        out: where the report goes (default: ``sys.stdout``).

    Returns:
        0 when the run completed (whether or not the targets are met), 1 when the models
        cannot be loaded, 2 on bad arguments or labels.
    """
    from app.settings import SettingsError

    stream = sys.stdout if out is None else out
    try:
        args = _parser().parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # argparse has printed usage or help
        return exc.code if isinstance(exc.code, int) else 2
    if not args.labels.is_file():
        sys.stderr.write(f"eval-verdicts: error: no labels file {args.labels}\n")
        return 2
    if not args.images.is_dir():
        sys.stderr.write(f"eval-verdicts: error: no images folder {args.images}\n")
        return 2
    try:
        read_labels(args.labels)  # a malformed file fails before the models load
    except ValueError as exc:
        sys.stderr.write(f"eval-verdicts: error: {exc}\n")
        return 2
    try:
        pipeline, policy = (build or build_models)()
    except SettingsError as exc:
        sys.stderr.write(f"eval-verdicts: error: {exc}\n")
        return 2
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"eval-verdicts: error: cannot load the models: {exc}\n")
        return 1
    figures = evaluate(args.labels, args.images, pipeline, policy)
    stream.write((json.dumps(figures) if args.json else format_table(figures)) + "\n")
    stream.flush()
    return 0
