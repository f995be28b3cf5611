"""The unified quality score: how well a recogniser (SFace) will match this face, 0-100.

Raw value: the cosine similarity between SFace's embedding of the aligned crop and of its
mirror image. A face the recogniser sees clearly gives nearly the same identity vector either
way round; blur, low resolution, bad light, a turned head or a non-face pull the two apart,
because the network then reads noise and asymmetric artefacts instead of the (nearly
symmetric) identity. Both crops go through the network in one batch with the other faces of
the image: two SFace passes per face, nothing trained, nothing tuned on test data. The score
maps the cosine through a logistic curve (``quality_scores.unified``).

Measured on the shared faces and their degraded copies (``bench/edc.py`` measures it in full):
discarding the lowest-scored pairs lowers SFace's false non-match rate at FMR 1e-2 faster
than discarding by the Laplacian blur or by the detector's confidence (partial area to 30%
discarded: 0.023 against 0.030 and 0.031; random order 0.028).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from models.quality.measures import UNASSESSED, Measurement, ScoreMap

NAME = "unified"
DESCRIPTION = (
    "Cosine similarity (0-1, a negative one reads 0) of SFace's embeddings of the aligned face "
    "and of its mirror image; the score, 0-100, is how well a recogniser will match the face. "
    "-1 when not assessed: the face is under pose_min_confidence or too small, or (unified_scope "
    "accepted, the default) another gate already refused it."
)
DEFAULT_SCORE = ScoreMap(0.955, 0.008)


class Recognizer(Protocol):
    """What the unified score needs of a recogniser (``models.recognizer.SFaceRecognizer``)."""

    name: str
    effective_precision: str  # what the network runs in on this CPU: "f32" or "bf16"

    def embed(self, aligned: Sequence[np.ndarray] | np.ndarray) -> np.ndarray: ...

    def warm_up(self) -> None: ...


class UnifiedQuality:
    """Flip-consistency of the recogniser's embeddings, for a batch of faces at once."""

    def __init__(self, recognizer: Recognizer, score: ScoreMap | None = None) -> None:
        self.recognizer = recognizer
        self.score_map = score or DEFAULT_SCORE

    def assess(self, aligned: Sequence[np.ndarray]) -> list[Measurement]:
        """One measurement per aligned (112, 112, 3) uint8 RGB crop, in order."""
        if len(aligned) == 0:
            return []
        crops = np.stack(aligned)
        batch = np.concatenate([crops, crops[:, :, ::-1]])
        emb = self.recognizer.embed(batch)
        n = len(crops)
        cosines = (emb[:n] * emb[n:]).sum(axis=1)
        out = []
        for cos in cosines:
            if not np.isfinite(cos):
                out.append(UNASSESSED)
                continue
            value = max(0.0, float(cos))  # opposite directions match no better than orthogonal
            out.append(Measurement(round(value, 4), round(self.score_map(value), 2)))
        return out
