"""SFace recogniser: shapes, unit length, and same-person photos closer than different people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.align import align_face
from models.decode import decode_image
from models.recognizer import (
    EMBEDDING_SIZE,
    RecognizerWeightsError,
    SFaceRecognizer,
    default_model_path,
    load_sface_graph,
)

pytestmark = pytest.mark.models

# Single-face photos of faces_info.csv: two identity clusters with three photos each.
PHOTOS = {
    "deepface/img1.jpg": "A",
    "deepface/img2.jpg": "A",
    "deepface/img4.jpg": "A",
    "deepface/img3.jpg": "B",
    "deepface/img12.jpg": "B",
    "deepface/img8.jpg": "C",
    "deepface/img9.jpg": "C",
}


@pytest.fixture(scope="module")
def recognizer() -> SFaceRecognizer:
    rec = SFaceRecognizer()
    rec.warm_up()
    return rec


@pytest.fixture(scope="module")
def aligned(data_dir: Path, pipeline) -> tuple[np.ndarray, list[str]]:
    """The largest face of each photo, aligned to the ArcFace template (RGB uint8)."""
    crops, ids = [], []
    for rel, identity in PHOTOS.items():
        image = decode_image((data_dir / "faces" / rel).read_bytes(), 40_000_000)
        faces = pipeline.detector.detect(image)
        face = max(faces, key=lambda f: f.box[2] * f.box[3])
        crops.append(align_face(image, face.landmarks))
        ids.append(identity)
    return np.stack(crops), ids


def test_embeddings_are_unit_rows_of_128(recognizer: SFaceRecognizer, aligned: tuple) -> None:
    crops, _ = aligned
    emb = recognizer.embed(crops)
    assert emb.shape == (len(crops), EMBEDDING_SIZE)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # A list of crops is the same batch.
    np.testing.assert_allclose(recognizer.embed(list(crops[:2])), emb[:2], atol=1e-5)


def test_batch_equals_one_by_one(recognizer: SFaceRecognizer, aligned: tuple) -> None:
    crops, _ = aligned
    batch = recognizer.embed(crops)
    single = np.concatenate([recognizer.embed(crops[i : i + 1]) for i in range(len(crops))])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_empty_input_gives_no_rows(recognizer: SFaceRecognizer) -> None:
    out = recognizer.embed(np.zeros((0, 112, 112, 3), dtype=np.uint8))
    assert out.shape == (0, EMBEDDING_SIZE)
    assert out.dtype == np.float32
    assert recognizer.embed([]).shape == (0, EMBEDDING_SIZE)


def test_wrong_crop_shape_is_refused(recognizer: SFaceRecognizer) -> None:
    with pytest.raises(ValueError, match="112, 112, 3"):
        recognizer.embed(np.zeros((1, 160, 160, 3), dtype=np.uint8))


def test_same_person_scores_clearly_higher(recognizer: SFaceRecognizer, aligned: tuple) -> None:
    crops, ids = aligned
    emb = recognizer.embed(crops)
    sims = emb @ emb.T
    genuine, impostor = [], []
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            (genuine if ids[i] == ids[j] else impostor).append(float(sims[i, j]))
    print(f"\ngenuine {sorted(genuine)}\nimpostor max {max(impostor):.3f}")
    assert len(genuine) == 5 and len(impostor) == 16
    # SFace's published verification threshold (cosine) is 0.363.
    assert min(genuine) > 0.5
    assert max(impostor) < 0.363
    assert min(genuine) - max(impostor) > 0.2


def test_rgb_order_separates_better_than_bgr(recognizer: SFaceRecognizer, aligned: tuple) -> None:
    """The channel order the module documents: RGB in, as OpenCV's FaceRecognizerSF feeds it."""
    crops, ids = aligned
    same = np.equal.outer(ids, ids)
    upper = np.triu_indices(len(ids), 1)

    def gap(batch: np.ndarray) -> float:
        sims = (recognizer.embed(batch) @ recognizer.embed(batch).T)[upper]
        return float(sims[same[upper]].mean() - sims[~same[upper]].mean())

    assert gap(crops) > gap(np.ascontiguousarray(crops[..., ::-1]))


def test_graph_inputs_are_cut_to_data() -> None:
    import onnx

    model = onnx.load_from_string(load_sface_graph(default_model_path()))
    assert [i.name for i in model.graph.input] == ["data"]
    ops = {n.op_type for n in model.graph.node}
    assert "DequantizeLinear" not in ops and "PRelu" not in ops


def test_rewritten_graph_matches_the_file_exactly(tmp_path: Path) -> None:
    """The folded weights and the split PRelu give the file's own embeddings."""
    import onnx
    import onnxruntime as ort

    original = onnx.load(str(default_model_path()))
    initializers = {t.name for t in original.graph.initializer}
    read = {name for node in original.graph.node for name in node.input}
    keep = [i for i in original.graph.input if i.name not in initializers and i.name in read]
    del original.graph.input[:]
    original.graph.input.extend(keep)
    plain = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    rewritten = ort.InferenceSession(
        load_sface_graph(default_model_path()), providers=["CPUExecutionProvider"]
    )
    x = np.random.default_rng(7).uniform(0, 255, (1, 3, 112, 112)).astype(np.float32)
    want = plain.run(None, {"data": x})[0]
    got = rewritten.run(None, {"data": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "sface.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(RecognizerWeightsError, match="cannot read SFace model"):
        SFaceRecognizer(str(bad))


def test_bfloat16_keeps_the_embeddings_and_the_mirror_cosine(
    recognizer: SFaceRecognizer, aligned: tuple
) -> None:
    """``precision="bf16"`` (the unified score's default, ``quality.recognizer_precision``):
    bfloat16 where the CPU has it, float32 elsewhere. The embeddings point the same way as
    float32's, and the face-to-mirror cosine the unified score reads moves by under 1e-3
    (6.2e-4 at most on 33 shared faces, ``bench/RESULTS.md``)."""
    crops, _ = aligned
    half = SFaceRecognizer(precision="bf16")
    assert half.precision == "bf16" and recognizer.precision == "f32"
    assert recognizer.effective_precision == "f32" and half.effective_precision in ("bf16", "f32")
    full, low = recognizer.embed(crops), half.embed(crops)
    assert low.shape == full.shape and low.dtype == np.float32
    assert float((full * low).sum(axis=1).min()) > 0.999
    mirrored = np.ascontiguousarray(crops[:, :, ::-1])
    cos_full = (full * recognizer.embed(mirrored)).sum(axis=1)
    cos_low = (low * half.embed(mirrored)).sum(axis=1)
    assert float(np.abs(cos_full - cos_low).max()) < 1e-3


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision must be one of f32, bf16"):
        SFaceRecognizer(precision="int8")
