"""Which quality components gate the verdict: each a reason and a ``Policy`` threshold.

A component that was not assessed (raw ``-1``) never fails its gate: the face is not judged
on what could not be measured, and the report says so with its ``-1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from models.quality.measures import Measurement


@dataclass(frozen=True)
class Gate:
    """Fail with ``reason`` when ``component``'s raw value is under (``below``) or over the
    ``Policy`` attribute ``threshold``."""

    reason: str
    component: str
    threshold: str
    below: bool

    def fails(self, measurement: Measurement, limit: float) -> bool:
        if not measurement.assessed:
            return False
        return measurement.raw < limit if self.below else measurement.raw > limit


GATES: tuple[Gate, ...] = (
    Gate("low_resolution", "inter_eye_distance", "min_inter_eye_px", below=True),
    Gate("blurry", "sharpness", "min_sharpness", below=True),
    Gate("underexposed", "under_exposure", "max_under_exposure", below=False),
    Gate("overexposed", "over_exposure", "max_over_exposure", below=False),
    Gate("cropped", "face_in_frame", "min_face_in_frame", below=True),
)


def failed_gates(
    components: Mapping[str, Measurement], thresholds: Mapping[str, float]
) -> set[str]:
    """The reasons of every gate these components fail under ``thresholds``."""
    return {
        g.reason
        for g in GATES
        if g.component in components and g.fails(components[g.component], thresholds[g.threshold])
    }
