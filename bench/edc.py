"""Error-versus-discard characteristic (EDC) of the service's face-quality orders, SFace as the
comparator, as FIQA papers and OFIQ report it (ISO/IEC 29794-1 style).

Faces: the single-face photos of ``faces/faces_info.csv`` that carry a person's identity (the
deepface clusters and the named facenet-pytorch / insightface / mtcnn photos; facenet-pytorch's
``angelina_jolie`` is deepface's cluster A, as the file's notes say), each normalised to at
most ``--max-side`` pixels, plus degraded copies that keep the identity (``LADDER``: Gaussian
and motion blur, down-scaling, darkening, washing out, JPEG compression, of several
strengths; ``bench/degrade.py``). Every sample goes through the service's pipeline and default
gates; its face is the largest detection (``app.eval_verdicts.judged_face``); a sample where no
face is found is left out (counted). SFace (``models.recognizer``) in float32 embeds the
pipeline's aligned crop, whatever precision the service's unified score runs in
(``quality.recognizer_precision``); a pair's score is the cosine similarity.

Pairs: every two samples from different photos (a photo's degraded copies, its mirrored copy
and its aligned crop are one photo: such pairs are left out); *genuine* when the identities
agree, *impostor* otherwise. The threshold is set on the impostor scores for each ``--fmr`` (a pair
matches when its score is above it) and kept fixed while the genuine pairs whose quality (the
lower of the two faces') is worst are discarded; the EDC is FNMR against the share of genuine
pairs discarded. Quality ties are discarded together, so the curve is a step function with a
point wherever the quality threshold moves; its partial area up to ``--upto`` (30%) discarded
is the figure of merit, lower is better.

Orders: the unified score (``quality.unified.score`` of the report's face), the blur alone
(``face_blur``), the detector confidence alone (``face_confidence``) and random (a fixed seed
for the curve; the table also gives the mean and spread of the area over ``RANDOM_SEEDS``
seeds). The verdict's own point: FNMR among the genuine pairs whose two faces are accepted,
and the share of genuine pairs kept.

Usage: ``.venv/bin/python bench/edc.py [--data DIR] [--fmr 1e-3 1e-2] [--plot bench/edc.png]
[--json bench/out/edc.json] [--photos N]``. Prints a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import degrade  # noqa: E402
from bench.degrade import Eyes  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402

log = logging.getLogger("edc")

UPTO = 0.30
# FMR 1e-3 leaves about 90 of the ~90000 impostor pairs above the threshold; 1e-2 about 900.
DEFAULT_FMRS = [1e-3, 1e-2]
RANDOM_SEEDS = 20
MAX_SIDE = 1024
# facenet-pytorch's folder name -> the deepface cluster of the same person (faces_info.csv notes)
SAME_PERSON = {"angelina_jolie": "A"}
GROUPS = ("group", "crowd")

Variant = Callable[[np.ndarray, Eyes, np.random.Generator], np.ndarray]


def _motion(length_ied: float) -> Variant:
    return lambda rgb, eyes, rng: degrade.motion_blur(
        rgb, eyes, length_ied, float(rng.uniform(0.0, 180.0))
    )


# (kind, strength label) -> degradation; each keeps the identity recognisable to a person.
LADDER: dict[tuple[str, str], Variant] = {
    ("clean", ""): lambda rgb, eyes, rng: rgb,
    ("gaussian_blur", "0.02"): lambda rgb, eyes, rng: degrade.gaussian_blur(rgb, eyes, 0.02),
    ("gaussian_blur", "0.05"): lambda rgb, eyes, rng: degrade.gaussian_blur(rgb, eyes, 0.05),
    ("gaussian_blur", "0.1"): lambda rgb, eyes, rng: degrade.gaussian_blur(rgb, eyes, 0.1),
    ("motion_blur", "0.1"): _motion(0.1),
    ("motion_blur", "0.3"): _motion(0.3),
    ("downscale", "24px"): lambda rgb, eyes, rng: degrade.downscale(rgb, eyes, 24.0),
    ("downscale", "12px"): lambda rgb, eyes, rng: degrade.downscale(rgb, eyes, 12.0),
    ("darken", "0.35"): lambda rgb, eyes, rng: degrade.darken(rgb, 0.35),
    ("darken", "0.15"): lambda rgb, eyes, rng: degrade.darken(rgb, 0.15),
    ("wash_out", "0.5"): lambda rgb, eyes, rng: degrade.wash_out(rgb, 0.5),
    ("wash_out", "0.25"): lambda rgb, eyes, rng: degrade.wash_out(rgb, 0.25),
    ("jpeg", "q8"): lambda rgb, eyes, rng: degrade.jpeg(rgb, 8),
}


# -- the EDC arithmetic ---------------------------------------------------------------------


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """The lowest score threshold whose false-match rate is at most ``fmr``.

    A pair matches when its score is strictly above the threshold, so the threshold is the
    impostor score with ``floor(fmr * n)`` impostor scores above it.

    Raises:
        ValueError: no impostor scores, or ``fmr`` outside (0, 1).
    """
    if len(impostor) == 0:
        raise ValueError("no impostor pairs")
    if not 0.0 < fmr < 1.0:
        raise ValueError(f"fmr must be in (0, 1), got {fmr}")
    ranked = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    return float(ranked[min(int(math.floor(fmr * len(ranked))), len(ranked) - 1)])


@dataclass(frozen=True)
class Curve:
    """An EDC as a step function: ``fnmr[k]`` holds from ``discarded[k]`` to the next point."""

    discarded: np.ndarray  # share of genuine pairs discarded, 0 first, increasing
    fnmr: np.ndarray

    def partial_area(self, upto: float = UPTO) -> float:
        """The area under the step function from 0 to ``upto`` discarded."""
        ends = np.append(self.discarded[1:], np.inf)
        widths = np.clip(np.minimum(ends, upto) - self.discarded, 0.0, None)
        return float((widths * self.fnmr).sum())

    def at(self, discarded: float) -> float:
        """FNMR once ``discarded`` of the genuine pairs are discarded."""
        return float(self.fnmr[np.searchsorted(self.discarded, discarded, side="right") - 1])


def edc(quality: np.ndarray, scores: np.ndarray, threshold: float) -> Curve:
    """The EDC of genuine pairs with ``quality`` (higher better) and comparison ``scores``.

    Pairs below each distinct quality value are discarded together (ties are never split);
    FNMR is the share of the remaining pairs whose score is not above ``threshold``.
    """
    quality = np.asarray(quality, dtype=np.float64)
    miss = np.asarray(scores, dtype=np.float64) <= threshold
    n = len(quality)
    if n == 0:
        raise ValueError("no genuine pairs")
    order = np.argsort(quality, kind="stable")
    q, m = quality[order], miss[order]
    # discard the first k pairs, for k = 0 and every k where the quality changes
    starts = np.concatenate([[0], np.flatnonzero(np.diff(q) > 0) + 1])
    misses_left = np.concatenate([np.cumsum(m[::-1])[::-1], [0]])
    kept = n - starts
    return Curve(discarded=starts / n, fnmr=misses_left[starts] / kept)


def pair_quality(per_sample: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The quality of each pair ``(i, j)``: the lower of the two samples'."""
    return np.minimum(per_sample[pairs[:, 0]], per_sample[pairs[:, 1]])


# -- the data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    """An identity-labelled single-face photo of the shared data."""

    source: str  # path under the data folder
    identity: str
    capture: str  # photos with the same capture are copies of one picture


@dataclass(frozen=True)
class Sample:
    """One face measured by the pipeline."""

    photo: Photo
    kind: str
    strength: str
    confidence: float
    blur: float
    unified: float | None
    accepted: bool
    embedding: np.ndarray


def identity_photos(data_dir: Path) -> list[Photo]:
    """The single-face photos of ``faces_info.csv`` that name one person."""
    with open(data_dir / "faces" / "faces_info.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    photos = []
    for row in rows:
        identity = row["identity"].split("(")[0].strip()
        if row["n_faces_visible"].strip() != "1" or "+" in identity or identity in GROUPS:
            continue
        identity = SAME_PERSON.get(identity, identity)
        # img11_reflection is img11 mirrored; *_aligned.png are crops of the *_1.jpg photos
        capture = Path(row["file"]).stem.replace("_reflection", "").replace("_aligned", "")
        photos.append(Photo(f"faces/{row['file']}", identity, capture))
    return photos


def _normalised(rgb: np.ndarray, max_side: int) -> np.ndarray:
    scale = max_side / max(rgb.shape[:2])
    if scale >= 1.0:
        return rgb
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def unified_score(entry: dict[str, Any]) -> float | None:
    """The unified quality score of a report face entry, None where the report has none."""
    quality = entry.get("quality")
    unified = quality.get("unified") if isinstance(quality, dict) else None
    score = unified.get("score") if isinstance(unified, dict) else None
    return float(score) if isinstance(score, int | float) else None


def measure(
    photos: Sequence[Photo],
    data_dir: Path,
    pipeline: Any,
    policy: Any,
    recognizer: Any,
    max_side: int = MAX_SIDE,
) -> tuple[list[Sample], list[str]]:
    """Degrade, assess and embed every photo; return the samples and what was left out."""
    from app.eval_verdicts import judged_face
    from models.decode import decode_image
    from models.report import face_entry

    samples: list[Sample] = []
    left_out: list[str] = []
    for photo in photos:
        rgb = _normalised(decode_image((data_dir / photo.source).read_bytes()), max_side)
        clean = judged_face(pipeline.assess_image(rgb, policy))
        if clean is None:
            left_out.append(f"{photo.source} (no face in the photo)")
            continue
        marks = clean.face.landmarks.astype(np.float64)
        eyes = Eyes(left=marks[0], right=marks[1])
        for (kind, strength), variant in LADDER.items():
            rng = np.random.default_rng(zlib.crc32(f"{photo.source}:{kind}:{strength}".encode()))
            image = variant(rgb, eyes, rng)
            assessment = pipeline.assess_image(image, policy)
            face = judged_face(assessment)
            if face is None:
                left_out.append(f"{photo.source} {kind} {strength} (no face)")
                continue
            entry = face_entry(face, assessment.image, "none")
            samples.append(
                Sample(
                    photo=photo,
                    kind=kind,
                    strength=strength,
                    confidence=float(face.face.confidence),
                    blur=float(face.blur),
                    unified=unified_score(entry),
                    accepted=face.accepted,
                    embedding=recognizer.embed(face.aligned[None])[0],
                )
            )
        log.info("%s: %d samples so far", photo.source, len(samples))
    return samples, left_out


def make_pairs(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of samples from different captures: ``(pairs (P, 2), genuine (P,), scores)``."""
    n = len(samples)
    i, j = np.triu_indices(n, k=1)
    captures = np.array([s.photo.capture for s in samples])
    identities = np.array([s.photo.identity for s in samples])
    keep = captures[i] != captures[j]
    i, j = i[keep], j[keep]
    embeddings = np.stack([s.embedding for s in samples])
    scores = np.einsum("pd,pd->p", embeddings[i], embeddings[j])
    return np.stack([i, j], axis=1), identities[i] == identities[j], scores


# -- the report -----------------------------------------------------------------------------


def evaluate(samples: Sequence[Sample], fmr: float, upto: float = UPTO) -> dict[str, Any]:
    """The EDCs, their partial areas and the verdict's point."""
    pairs, genuine, scores = make_pairs(samples)
    threshold = threshold_at_fmr(scores[~genuine], fmr)
    gpairs, gscores = pairs[genuine], scores[genuine]
    orders: dict[str, np.ndarray | None] = {
        "unified": None
        if any(s.unified is None for s in samples)
        else np.array([s.unified for s in samples], np.float64),
        "blur": np.array([s.blur for s in samples], np.float64),
        "confidence": np.array([s.confidence for s in samples], np.float64),
        "random": np.random.default_rng(0).random(len(samples)),
    }
    curves: dict[str, Curve] = {}
    for name, quality in orders.items():
        if quality is not None:
            curves[name] = edc(pair_quality(quality, gpairs), gscores, threshold)
    random_areas = [
        edc(pair_quality(np.random.default_rng(seed).random(len(samples)), gpairs), gscores,
            threshold).partial_area(upto)
        for seed in range(RANDOM_SEEDS)
    ]  # fmt: skip
    accepted = np.array([s.accepted for s in samples])
    both = accepted[gpairs[:, 0]] & accepted[gpairs[:, 1]]
    impostor_fmr = float((scores[~genuine] > threshold).mean())
    return {
        "samples": len(samples),
        "identities": len({s.photo.identity for s in samples}),
        "genuine_pairs": int(genuine.sum()),
        "impostor_pairs": int((~genuine).sum()),
        "fmr_target": fmr,
        "fmr": round(impostor_fmr, 6),
        "threshold": round(threshold, 4),
        "fnmr": round(float((gscores <= threshold).mean()), 4),
        "upto": upto,
        "partial_area": {k: round(c.partial_area(upto), 5) for k, c in curves.items()},
        "fnmr_at_upto": {k: round(c.at(upto), 4) for k, c in curves.items()},
        "random_area_mean": round(float(np.mean(random_areas)), 5),
        "random_area_sd": round(float(np.std(random_areas)), 5),
        "unified_missing": "unified" not in curves,
        "verdict": {
            "kept": round(float(both.mean()), 4),
            "fnmr": round(float((gscores[both] <= threshold).mean()), 4) if both.any() else None,
            "accepted_samples": int(accepted.sum()),
        },
        "curves": {
            k: {"discarded": c.discarded.round(5).tolist(), "fnmr": c.fnmr.round(5).tolist()}
            for k, c in curves.items()
        },
    }


def format_table(result: dict[str, Any]) -> str:
    """The printed summary of ``evaluate``'s result."""
    pct = result["upto"] * 100
    lines = [
        f"samples {result['samples']} ({result['identities']} identities); genuine pairs "
        f"{result['genuine_pairs']}, impostor pairs {result['impostor_pairs']}",
        f"threshold {result['threshold']} (cosine) for FMR {result['fmr_target']:g} "
        f"(measured {result['fmr']:g}); FNMR with nothing discarded {result['fnmr']:.4f}",
        "",
        f"{'order':<12} {f'pAUC 0-{pct:g}%':>12} {f'FNMR at {pct:g}%':>14}",
    ]
    for name, area in result["partial_area"].items():
        lines.append(f"{name:<12} {area:>12.5f} {result['fnmr_at_upto'][name]:>14.4f}")
    lines.append(
        f"{'random mean':<12} {result['random_area_mean']:>12.5f}   "
        f"(sd {result['random_area_sd']:.5f} over {RANDOM_SEEDS} seeds)"
    )
    if result["unified_missing"]:
        lines.append(
            "unified: skipped, the report's faces carry no quality.unified.score "
            "(the quality branch's unified score is not in this build)"
        )
    v = result["verdict"]
    fnmr = "n/a" if v["fnmr"] is None else f"{v['fnmr']:.4f}"
    lines += [
        "",
        f"verdict: {v['accepted_samples']} of {result['samples']} faces accepted; genuine "
        f"pairs kept {v['kept']:.4f} (discarded {1 - v['kept']:.4f}), FNMR among them {fnmr}",
    ]
    return "\n".join(lines)


COLOURS = {"unified": "tab:green", "blur": "tab:blue", "confidence": "tab:orange",
           "random": "tab:grey"}  # fmt: skip


def plot(result: dict[str, Any], path: Path) -> None:
    """Draw the EDCs, the partial-area limit and the verdict's point into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    for name, curve in result["curves"].items():
        area = result["partial_area"][name]
        ax.step(curve["discarded"], curve["fnmr"], where="post", color=COLOURS[name],
                label=f"{name} (pAUC {area:.4f})")  # fmt: skip
    v = result["verdict"]
    if v["fnmr"] is not None:
        ax.plot([1 - v["kept"]], [v["fnmr"]], "k*", markersize=11, label="accept/reject verdict")
    ax.axvline(result["upto"], color="k", linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("share of genuine pairs discarded (lowest pair quality first)")
    ax.set_ylabel(f"FNMR at FMR {result['fmr_target']:g}")
    ax.set_title(
        f"EDC, SFace, {result['samples']} faces, {result['genuine_pairs']} genuine / "
        f"{result['impostor_pairs']} impostor pairs",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="shared data folder")
    parser.add_argument(
        "--fmr",
        type=float,
        nargs="+",
        default=DEFAULT_FMRS,
        help="false-match rates (a table for each; the plot for the first)",
    )
    parser.add_argument("--upto", type=float, default=UPTO, help="partial-area limit")
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, help="photo size limit, px")
    parser.add_argument("--photos", type=int, default=0, help="first N photos only (0: all)")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "edc.png")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "edc.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data_dir = (args.data or shared_data_dir()).resolve()
    if not (data_dir / "faces" / "faces_info.csv").is_file():
        print(f"no shared data at {data_dir} (set FACEQ_TEST_DATA or --data)", file=sys.stderr)
        return 2
    from app.models_state import load_models
    from app.settings import load_settings
    from models.recognizer import SFaceRecognizer

    pipeline, default = load_models(load_settings())
    matcher = SFaceRecognizer(precision="f32")  # the comparator, whatever the score runs in
    photos = identity_photos(data_dir)
    if args.photos:
        photos = photos[: args.photos]
    # Every face's unified score, refused or not: the EDC orders them all.
    policy = replace(default, unified_scope="all")
    started = time.perf_counter()
    samples, left_out = measure(photos, data_dir, pipeline, policy, matcher, args.max_side)
    for what in left_out:
        log.info("left out: %s", what)
    results = [evaluate(samples, fmr, args.upto) for fmr in args.fmr]
    seconds = round(time.perf_counter() - started, 1)
    print("\n\n".join(format_table(r) for r in results))
    print(f"left out: {len(left_out)} (no face found); {seconds} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {"results": results, "left_out": left_out, "seconds": seconds}
    args.json.write_text(json.dumps(record) + "\n", encoding="utf-8")
    plot(results[0], args.plot)
    print(f"plot: {args.plot}; figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
