"""Quality components and their reasons on a real portrait and degraded copies of it.

The portrait (``deepface/img6.jpg``: frontal, eyes 186 px apart, confidence 0.9996) is
darkened, washed out, blurred, shrunk, side-lit, cut by the border and rotated; each copy must
fail with its own reason and the clean original with none. The gates are judged with
``face_threshold`` 0.9 so that the detector's exact confidence (being reworked) cannot change
what these tests are about.
"""

from __future__ import annotations

import collections
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.align import align_face
from models.decode import decode_image
from models.pipeline import REASONS, FaceResult, Pipeline, Policy
from models.quality.measures import (
    COMPONENT_NAMES,
    NOT_ASSESSED,
    InterEyeDistance,
    ScoreMap,
    Sharpness,
    UnderExposure,
    build_measures,
)
from models.quality.session import FaceSession
from models.types import Face, HeadPose

pytestmark = [pytest.mark.models, pytest.mark.shared_data]

PORTRAIT = "faces/deepface/img6.jpg"
PORTRAIT_EYES_PX = 186.0


@pytest.fixture(scope="module")
def portrait(data_dir: Path) -> np.ndarray:
    return decode_image((data_dir / PORTRAIT).read_bytes(), 40_000_000)


@pytest.fixture(scope="module")
def gates(policy: Policy) -> Policy:
    return replace(policy, face_threshold=0.9)


def largest(pipeline: Pipeline, image: np.ndarray, policy: Policy) -> FaceResult:
    faces = pipeline.assess_image(image, policy).faces
    assert faces, "no face found"
    return max(faces, key=lambda f: f.face.box[2] * f.face.box[3])


def raw(result: FaceResult, name: str) -> float:
    return result.quality.components[name].raw


def shrink(image: np.ndarray, eyes_px: float) -> np.ndarray:
    k = eyes_px / PORTRAIT_EYES_PX
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)


def motion_blur(image: np.ndarray, length: int) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length  # horizontal shake
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT101)


def test_clean_portrait_passes_every_component(pipeline, portrait, gates) -> None:
    face = largest(pipeline, portrait, gates)
    assert face.reasons == ()
    assert list(face.quality.components) == list(COMPONENT_NAMES)
    for name, m in face.quality.components.items():
        assert m.raw >= 0 and 0 <= m.score <= 100, name
    assert raw(face, "inter_eye_distance") == pytest.approx(PORTRAIT_EYES_PX, abs=6)
    assert raw(face, "face_in_frame") == 1.0
    assert raw(face, "sharpness") > 0.1
    assert raw(face, "dynamic_range") > 6.5
    assert face.quality.unified.raw > 0.97 and face.quality.unified.score > 90


@pytest.mark.parametrize("divisor", [10, 40])
def test_gaussian_blur_of_a_large_face_is_blurry(pipeline, portrait, gates, divisor) -> None:
    sigma = PORTRAIT_EYES_PX / divisor  # 18.6 px and 4.7 px on this large face
    face = largest(pipeline, cv2.GaussianBlur(portrait, (0, 0), sigma), gates)
    assert "blurry" in face.reasons
    assert raw(face, "sharpness") < gates.min_sharpness
    assert raw(face, "sharpness") < raw(largest(pipeline, portrait, gates), "sharpness") / 3


def test_motion_blur_is_blurry(pipeline, portrait, gates) -> None:
    face = largest(pipeline, motion_blur(portrait, 41), gates)
    assert "blurry" in face.reasons
    assert raw(face, "sharpness") < gates.min_sharpness


def test_a_small_sharp_face_is_not_called_blurry(pipeline, portrait, gates) -> None:
    """Sharpness is never measured on an upscaled crop: a small sharp face stays sharp."""
    face = largest(pipeline, shrink(portrait, 30.0), gates)
    assert raw(face, "sharpness") > 0.1
    assert "blurry" not in face.reasons and "low_resolution" not in face.reasons


def test_shrunk_face_is_low_resolution(pipeline, portrait, gates) -> None:
    face = largest(pipeline, shrink(portrait, 12.0), gates)
    assert "low_resolution" in face.reasons
    assert raw(face, "inter_eye_distance") == pytest.approx(12.0, abs=1.5)


def test_darkened_face_is_underexposed(pipeline, portrait, gates) -> None:
    dark = np.round(portrait * 0.15).astype(np.uint8)
    face = largest(pipeline, dark, gates)
    assert "underexposed" in face.reasons and "overexposed" not in face.reasons
    assert raw(face, "under_exposure") == 1.0
    assert raw(face, "dynamic_range") < 5.0
    # Contrast-normalised: darkening is not blur.
    assert raw(face, "sharpness") > gates.min_sharpness


def test_washed_out_face_is_overexposed(pipeline, portrait, gates) -> None:
    washed = np.round(255 - (255 - portrait.astype(np.float32)) * 0.25).astype(np.uint8)
    face = largest(pipeline, washed, gates)
    assert face.reasons == ("overexposed",)
    assert raw(face, "over_exposure") > 0.9
    assert raw(face, "under_exposure") == 0.0


def test_side_light_lowers_illumination_uniformity(pipeline, portrait, gates) -> None:
    ramp = np.linspace(0.25, 1.0, portrait.shape[1])[None, :, None]
    lit = np.round(portrait * ramp).astype(np.uint8)
    clean = raw(largest(pipeline, portrait, gates), "illumination_uniformity")
    side = raw(largest(pipeline, lit, gates), "illumination_uniformity")
    assert clean > 0.9 and side < clean - 0.08


def test_face_cut_by_the_border_is_cropped(pipeline, portrait, gates) -> None:
    box = largest(pipeline, portrait, gates).face.box
    cut = np.ascontiguousarray(portrait[:, : int(box[0] + 0.75 * box[2])])
    face = largest(pipeline, cut, gates)
    assert "cropped" in face.reasons
    assert raw(face, "face_in_frame") < gates.min_face_in_frame


def test_a_blurred_face_cut_by_the_border_is_still_blurry(pipeline, portrait, gates) -> None:
    """The image edge across the face is not taken for detail (the crop repeats the edge)."""
    box = largest(pipeline, portrait, gates).face.box
    blurred = cv2.GaussianBlur(portrait, (0, 0), PORTRAIT_EYES_PX / 10)
    cut = np.ascontiguousarray(blurred[:, : int(box[0] + 0.75 * box[2])])
    face = largest(pipeline, cut, gates)
    assert {"blurry", "cropped"} <= set(face.reasons)
    assert raw(face, "sharpness") < gates.min_sharpness


def test_rolled_face_is_rejected_for_its_pose(pipeline, portrait, gates) -> None:
    h, w = portrait.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 40, 1.0)
    face = largest(pipeline, cv2.warpAffine(portrait, turn, (w, h)), gates)
    assert "pose_roll" in face.reasons
    assert raw(face, "head_pose_roll") > 30


def test_pose_is_measured_below_the_acceptance_gate(pipeline, portrait, policy) -> None:
    """A face between pose_min_confidence and face_threshold is judged on its pose too."""
    strict = replace(policy, face_threshold=1.0, pose_min_confidence=0.9, unified_scope="all")
    face = largest(pipeline, portrait, strict)
    if face.face.confidence >= 1.0:
        pytest.skip("the detector is certain of this face: no gate lies above its confidence")
    assert face.pose is not None
    assert face.reasons == ("low_confidence",)
    assert raw(face, "head_pose_yaw") >= 0 and face.quality.unified.assessed
    never = replace(policy, face_threshold=1.0, pose_min_confidence=1.0)
    face = largest(pipeline, portrait, never)
    assert face.pose is None
    for name in ("head_pose_yaw", "head_pose_pitch", "head_pose_roll"):
        assert raw(face, name) == NOT_ASSESSED
        assert face.quality.components[name].score == NOT_ASSESSED
    assert face.quality.unified.raw == NOT_ASSESSED


def test_pose_is_not_measured_for_low_resolution_faces(pipeline, data_dir, policy) -> None:
    """famous-selfie: of its 37 faces from pose_min_confidence on, the 26 under
    min_inter_eye_px (small background faces) get no pose and list no pose reason; the 11
    others get theirs, and the head-pose components with it, whatever else they fail."""
    selfie = decode_image((data_dir / "faces/mtcnn_demo/famous-selfie.jpg").read_bytes())
    faces = pipeline.assess_image(selfie, policy).faces
    confident = [f for f in faces if policy.needs_pose(f.face)]
    small = [f for f in confident if "low_resolution" in f.reasons]
    assert (len(confident), len(small)) == (37, 26)
    for f in small:
        assert f.pose is None and not {"pose_yaw", "pose_pitch", "pose_roll"} & set(f.reasons)
        assert raw(f, "head_pose_yaw") == NOT_ASSESSED
        assert raw(f, "inter_eye_distance") < policy.min_inter_eye_px
    posed = [f for f in confident if f not in small]
    for f in posed:
        assert f.pose is not None and raw(f, "head_pose_yaw") == round(abs(f.pose.yaw), 4)
    assert collections.Counter(f.reasons for f in posed) == {
        (): 4,
        ("blurry",): 3,
        ("pose_pitch", "pose_roll"): 2,
        ("low_confidence",): 1,
        ("low_confidence", "blurry"): 1,
    }
    looser = policy.with_overrides({"min_inter_eye_px": "0"})
    again = pipeline.assess_image(selfie, looser).faces
    assert sum(f.pose is not None for f in again) == 37


def test_policy_judges_pose_from_pose_min_confidence() -> None:
    marks = np.zeros((5, 2), np.float32)
    policy = Policy(face_threshold=0.995, pose_min_confidence=0.9)
    sure, unsure = (Face((0.0, 0.0, 50.0, 50.0), c, marks) for c in (0.95, 0.85))
    assert policy.needs_pose(sure) and not policy.needs_pose(unsure)
    rolled = HeadPose(yaw=0.0, pitch=0.0, roll=40.0)
    assert policy.reasons(sure, 500.0, rolled) == ("low_confidence", "pose_roll")
    assert policy.reasons(unsure, 500.0, None) == ("low_confidence",)
    # A lower acceptance gate than pose_min_confidence: every acceptable face gets its pose.
    assert replace(policy, face_threshold=0.8).needs_pose(unsure)


def test_unified_score_follows_the_recogniser(pipeline, portrait, gates) -> None:
    """A face cut by the border (a quarter of it missing) is a worse match for SFace."""
    every = replace(gates, unified_scope="all")  # the cut face is refused (cropped)
    whole = largest(pipeline, portrait, every)
    box = whole.face.box
    cut = np.ascontiguousarray(portrait[:, : int(box[0] + 0.75 * box[2])])
    clean, part = whole.quality.unified, largest(pipeline, cut, every).quality.unified
    assert clean.score > 90
    assert part.raw < clean.raw and part.score < clean.score - 15


def test_unified_scope_scores_the_accepted_faces_or_all(pipeline, data_dir, policy) -> None:
    """Default ``accepted``: the recogniser runs for the faces every gate lets through, and only
    for them (famous-selfie: 4 of 38); ``all``: for every detection from pose_min_confidence on
    (37, the 26 small background faces without a pose included), with the same scores for the
    accepted ones."""
    selfie = decode_image((data_dir / "faces/mtcnn_demo/famous-selfie.jpg").read_bytes())
    accepted = pipeline.assess_image(selfie, policy)
    every = pipeline.assess_image(selfie, policy.with_overrides({"unified_scope": "all"}))
    scored = [f for f in accepted.faces if f.quality.unified.assessed]
    assert len(accepted.faces) == 38 and len(accepted.accepted) == 4
    assert [f.face.box for f in scored] == [f.face.box for f in accepted.accepted]
    for f in accepted.rejected:
        assert f.quality.unified.raw == NOT_ASSESSED and f.quality.unified.score == NOT_ASSESSED
    posed = [f for f in every.faces if f.pose is not None]
    assert len(posed) == 11 and all(f.quality.unified.assessed for f in posed)
    confident = [f for f in every.faces if policy.needs_pose(f.face)]
    assert len(confident) == 37 and all(f.quality.unified.assessed for f in confident)
    assert sum(f.quality.unified.assessed for f in every.faces) == 37
    assert [f.reasons for f in every.faces] == [f.reasons for f in accepted.faces]
    same = {f.face.box: f.quality.unified for f in every.faces}
    assert [same[f.face.box] for f in scored] == [f.quality.unified for f in scored]
    with pytest.raises(ValueError, match="unified_scope must be one of accepted, all"):
        policy.with_overrides({"unified_scope": "some"})


def test_every_override_changes_its_gate(pipeline, portrait, gates) -> None:
    overrides = {
        "min_sharpness": ("10", "blurry"),
        "min_inter_eye_px": ("1000", "low_resolution"),
        "max_under_exposure": ("0", "underexposed"),
        "max_over_exposure": ("0", "overexposed"),
        "min_face_in_frame": ("1", None),  # the whole crop is inside: 1.0 is not under 1
    }
    for name, (value, reason) in overrides.items():
        policy = gates.with_overrides({name: value})
        face = largest(pipeline, portrait, policy)
        if reason:
            assert reason in face.reasons, name
        else:
            assert face.reasons == (), name
    with pytest.raises(ValueError, match="min_face_in_frame must be between 0 and 1"):
        gates.with_overrides({"min_face_in_frame": "2"})


def test_reasons_list_every_new_reason_in_order() -> None:
    assert REASONS == (
        "too_small",
        "low_confidence",
        "blurry",
        "pose_yaw",
        "pose_pitch",
        "pose_roll",
        "low_resolution",
        "underexposed",
        "overexposed",
        "cropped",
    )


# --- what cannot be assessed says so ----------------------------------------------------------


def _session(image: np.ndarray, landmarks: np.ndarray, pose: HeadPose | None = None):
    face = Face(box=(0.0, 0.0, 10.0, 10.0), confidence=0.99, landmarks=landmarks)
    return FaceSession(image, face, align_face(image, landmarks), pose)


def test_a_two_pixel_face_is_measured_where_it_can_be() -> None:
    image = np.full((40, 40, 3), 120, np.uint8)
    marks = np.array([[20, 20], [21, 20], [20.5, 21], [20, 22], [21, 22]], np.float32)
    out = {m.name: m.execute(_session(image, marks)) for m in build_measures()}
    assert out["inter_eye_distance"].raw == 1.0  # measured: far too small
    assert out["sharpness"].raw == NOT_ASSESSED and out["sharpness"].score == NOT_ASSESSED
    assert out["head_pose_yaw"].raw == NOT_ASSESSED


def test_a_flat_grey_face_has_no_sharpness_to_measure() -> None:
    image = np.full((400, 400, 3), 128, np.uint8)
    marks = np.array([[170, 180], [230, 180], [200, 215], [175, 250], [225, 250]], np.float32)
    session = _session(image, marks)
    assert Sharpness().execute(session).raw == NOT_ASSESSED
    assert UnderExposure().execute(session).raw == 0.0
    assert InterEyeDistance().execute(session).raw == 60.0


def test_landmarks_outside_the_image_cannot_be_exposed() -> None:
    image = np.full((100, 100, 3), 128, np.uint8)
    marks = np.array([[400, 400], [460, 400], [430, 435], [405, 470], [455, 470]], np.float32)
    out = {m.name: m.execute(_session(image, marks)) for m in build_measures()}
    assert out["face_in_frame"].raw == 0.0
    for name in ("under_exposure", "over_exposure", "dynamic_range", "illumination_uniformity"):
        assert out[name].raw == NOT_ASSESSED and out[name].score == NOT_ASSESSED, name


def test_score_maps_are_logistic_and_settable() -> None:
    curve = ScoreMap(24.0, 5.0)
    assert curve(24.0) == 50.0
    assert curve(1e9) == 100.0 and curve(-1e9) == pytest.approx(0.0, abs=1e-9)
    assert ScoreMap(0.5, -0.08)(0.9) < 1.0
    (ied,) = [
        m
        for m in build_measures({"inter_eye_distance": (60.0, 10.0)})
        if m.name == "inter_eye_distance"
    ]
    assert ied.score_map == ScoreMap(60.0, 10.0)


def test_without_a_recogniser_the_unified_score_is_not_assessed(pipeline, portrait, gates) -> None:
    """``recognizer: off``: the same components and verdict, the unified score -1."""
    bare = Pipeline(pipeline.detector, pipeline.pose)
    face = largest(bare, portrait, gates)
    assert face.quality.unified.raw == NOT_ASSESSED and face.quality.unified.score == NOT_ASSESSED
    assert face.reasons == largest(pipeline, portrait, gates).reasons == ()
    assert raw(face, "sharpness") > 0.1
