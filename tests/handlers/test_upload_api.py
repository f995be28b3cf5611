"""The HTTP API end to end on a live server with the real models: the original's contract,
authentication, query options and every kind of bad input."""

from __future__ import annotations

import base64
import io
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from PIL import Image

from bench.detect_parity import iou
from models.quality.measures import COMPONENT_NAMES
from tests.live import AUTH, TOKEN, LiveServer, make_settings, start_server

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory) -> LiveServer:
    data_dir = tmp_path_factory.mktemp("var")
    live = start_server(
        make_settings(data_dir=str(data_dir), max_body_mb=8, max_image_mb=6), pipeline
    )
    yield live
    live.stop()


def upload(server: LiveServer, data: bytes, name: str = "x.jpg", query: str = "", **kw):
    return requests.post(
        f"{server.url}/upload{query}",
        files={"image": (name, data, "application/octet-stream")},
        headers=kw.pop("headers", AUTH),
        timeout=120,
        **kw,
    )


def png_bytes(rgb_or_rgba: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb_or_rgba).save(buf, format="PNG")
    return buf.getvalue()


def error_of(resp: requests.Response) -> str:
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return body["error"]["code"]


# --- the original's contract ----------------------------------------------------------------


def test_astronaut_report_has_the_original_keys(server, astronaut_jpeg):
    resp = upload(server, astronaut_jpeg, "astronaut.jpg")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    report = resp.json()
    assert report["face_total"] == 1
    assert report["face_efficient_total_resp"] == 1
    assert report["face_confidence_neglect_total_resp"] == 0
    assert report["face_blur_neglect_total_resp"] == 0
    assert report["face_hopenet_neglect_total_resp"] == 0
    assert report["rejected"] == []
    assert report["pose_estimator"] == "whenet"
    assert set(report["timing_ms"]) == {
        "decode",
        "detect",
        "align",
        "blur",
        "pose",
        "recognizer",
        "quality",
        "encode",
        "recognizer_per_face",
        "quality_per_face",
    }
    assert report["face_quality_neglect_total_resp"] == 0
    assert len(report["image_id"]) == 32
    (face,) = report["resp"]
    assert set(face) == {
        "face_id",
        "face_confidence",
        "face_coordinate",
        "facie5points",
        "face_blur",
        "face_pose",
        "quality",
        "face_native_image_b64",
        "face_native_images_b64",
        "face_align_images_b64",
    }
    assert face["face_confidence"] > 0.999
    x, y, w, h = face["face_coordinate"]
    # The astronaut's face sits around x 170-270, y 60-190 of the 512x512 image.
    assert 150 < x < 200 and 40 < y < 110 and 70 < w < 130 and 90 < h < 160
    pts = face["facie5points"]
    assert list(pts) == ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]
    assert pts["left_eye"][0] < pts["right_eye"][0]  # left_eye = image-left eye
    assert pts["left_eye"][1] < pts["mouth_left"][1]
    assert set(face["face_pose"]) == {"pitch", "yaw", "roll"}
    assert all(abs(v) < 45 for v in face["face_pose"].values())
    assert face["face_blur"] > 100
    quality = face["quality"]
    assert set(quality) == {"unified", "components"}
    assert list(quality["components"]) == list(COMPONENT_NAMES)
    for measure in (quality["unified"], *quality["components"].values()):
        assert set(measure) == {"raw", "score"}
        assert measure["raw"] >= 0 and 0 <= measure["score"] <= 100
    assert quality["unified"]["score"] > 80
    aligned = cv2.imdecode(
        np.frombuffer(base64.b64decode(face["face_align_images_b64"]), np.uint8), cv2.IMREAD_COLOR
    )
    assert aligned.shape == (112, 112, 3)
    native = cv2.imdecode(
        np.frombuffer(base64.b64decode(face["face_native_image_b64"]), np.uint8), cv2.IMREAD_COLOR
    )
    assert native.shape[:2] == (h, w)
    mark = base64.b64decode(report["mark_image_face_b64"])
    assert mark[:2] == b"\xff\xd8"


def test_query_options_control_images_mark_and_rejected(server, astronaut_jpeg):
    resp = upload(server, astronaut_jpeg, query="?images=aligned&mark=0&rejected=0")
    assert resp.status_code == 200
    report = resp.json()
    assert "mark_image_face_b64" not in report and "rejected" not in report
    (face,) = report["resp"]
    assert "face_align_images_b64" in face
    assert "face_native_image_b64" not in face and "face_native_images_b64" not in face
    report = upload(server, astronaut_jpeg, query="?images=none").json()
    assert not any(k.endswith("_b64") for k in report["resp"][0])


def test_threshold_overrides_reject_with_every_reason(server, astronaut_jpeg):
    resp = upload(server, astronaut_jpeg, query="?blur_threshold=1000000&max_yaw=0&max_roll=0")
    assert resp.status_code == 200
    report = resp.json()
    assert report["face_total"] == 1 and report["face_efficient_total_resp"] == 0
    assert report["resp"] == []
    (rej,) = report["rejected"]
    assert rej["reasons"] == ["blurry", "pose_yaw", "pose_roll"]
    assert report["face_blur_neglect_total_resp"] == 1  # counted under its first gate
    assert report["face_hopenet_neglect_total_resp"] == 0


@pytest.mark.parametrize(
    "query",
    ["?images=some", "?mark=maybe", "?face_threshold=2", "?max_yaw=abc", "?blur_threshold=-1"],
)
def test_bad_query_parameters_are_400(server, astronaut_jpeg, query):
    resp = upload(server, astronaut_jpeg, query=query)
    assert resp.status_code == 400
    assert error_of(resp) == "bad_parameter"


def test_uploads_answers_one_entry_per_file_in_order(server, astronaut_jpeg):
    files = [
        ("image", ("a.jpg", astronaut_jpeg, "image/jpeg")),
        ("image", ("notes.jpg", b"this is text, not a picture\n", "image/jpeg")),
        ("image", ("empty.jpg", b"", "image/jpeg")),
        ("image", ("b.jpg", astronaut_jpeg, "image/jpeg")),
    ]
    resp = requests.post(
        f"{server.url}/uploads?images=none", files=files, headers=AUTH, timeout=120
    )
    assert resp.status_code == 200
    out = resp.json()
    assert [e["filename"] for e in out] == ["a.jpg", "notes.jpg", "empty.jpg", "b.jpg"]
    assert out[0]["face_total"] == 1 and out[3]["face_total"] == 1
    assert out[1]["error"]["code"] == "not_an_image" and out[1]["status"] == 415
    assert out[2]["error"]["code"] == "empty_file" and out[2]["status"] == 400
    assert out[0]["image_id"] != out[3]["image_id"]


# --- auth, routing, probes -------------------------------------------------------------------


def test_missing_token_is_401_and_wrong_token_403(server, astronaut_jpeg):
    resp = upload(server, astronaut_jpeg, headers={})
    assert resp.status_code == 401 and error_of(resp) == "missing_token"
    resp = upload(server, astronaut_jpeg, headers={"Authorization": "wrong-token-000"})
    assert resp.status_code == 403 and error_of(resp) == "invalid_token"
    resp = upload(
        server, astronaut_jpeg, query="?images=none", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert resp.status_code == 200


def test_unknown_path_is_json_404_and_wrong_method_json_405(server):
    resp = requests.get(f"{server.url}/nope", timeout=10)
    assert resp.status_code == 404 and error_of(resp) == "not_found"
    resp = requests.get(f"{server.url}/upload", headers=AUTH, timeout=10)
    assert resp.status_code == 405 and error_of(resp) == "method_not_allowed"


def test_probes_and_root(server):
    assert requests.get(f"{server.url}/livez", timeout=10).json() == {"status": "ok"}
    ready = requests.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["models"]["detector"] == "mtcnn"
    assert ready.json()["models"]["pose_estimator"] == "whenet"
    # WHENet and the unified score's SFace ask for bfloat16: they get it where the CPU has it.
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
        flags = cpuinfo.read().split()
    precision = ready.json()["models"]["precision"]
    assert precision["pose"] == precision["recognizer"]
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        assert precision["pose"] == "bf16"
    elif "avx_ne_convert" not in flags:  # AVX2 with bfloat16 conversions: either may hold
        assert precision["pose"] == "f32"
    root = requests.get(f"{server.url}/", timeout=10).json()
    assert root["service"] == "faceq" and "/upload" in root["endpoints"]


def test_readyz_is_503_until_models_are_loaded(pipeline, tmp_path):
    live = start_server(make_settings(data_dir=str(tmp_path)), pipeline=None)
    try:
        resp = requests.get(f"{live.url}/readyz", timeout=10)
        assert resp.status_code == 503 and resp.json()["status"] == "loading"
        assert requests.get(f"{live.url}/livez", timeout=10).status_code == 200
        resp = requests.post(
            f"{live.url}/upload", files={"image": ("a", b"x")}, headers=AUTH, timeout=10
        )
        assert resp.status_code == 503 and error_of(resp) == "not_ready"
        assert resp.headers["Retry-After"] == "5"
        live.services.models.pipeline = pipeline
        assert requests.get(f"{live.url}/readyz", timeout=10).status_code == 200
    finally:
        live.stop()


# --- bad input -------------------------------------------------------------------------------


def test_missing_image_field_is_400(server):
    resp = requests.post(
        f"{server.url}/upload", files={"photo": ("a.jpg", b"x")}, headers=AUTH, timeout=10
    )
    assert resp.status_code == 400 and error_of(resp) == "missing_field"


def test_not_multipart_is_415(server, astronaut_jpeg):
    resp = requests.post(
        f"{server.url}/upload",
        data=astronaut_jpeg,
        headers={**AUTH, "Content-Type": "image/jpeg"},
        timeout=10,
    )
    assert resp.status_code == 415 and error_of(resp) == "unsupported_media_type"


def test_empty_file_is_400(server):
    resp = upload(server, b"")
    assert resp.status_code == 400 and error_of(resp) == "empty_file"


def test_text_file_named_jpg_is_415(server):
    resp = upload(server, b"hello, this is not a JPEG\n" * 10, "photo.jpg")
    assert resp.status_code == 415 and error_of(resp) == "not_an_image"


def test_truncated_jpeg_decodes_what_arrived(server, data_dir):
    whole = (data_dir / "faces/deepface/img5.jpg").read_bytes()
    resp = upload(server, whole[: int(len(whole) * 0.7)], query="?images=none")
    assert resp.status_code == 200
    assert resp.json()["face_total"] == 1  # the face lies in the first 70% of the scan
    resp = upload(server, (data_dir / "awkward/truncated_jpeg.jpg").read_bytes())
    assert resp.status_code == 200 and resp.json()["face_total"] == 0


def test_jpeg_with_only_its_header_is_422(server):
    whole = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    resp = upload(server, whole[:150])
    assert resp.status_code == 422 and error_of(resp) == "undecodable_image"


@pytest.mark.parametrize(
    ("name", "upright"),
    [
        ("img5_cmyk.jpg", "faces/deepface/img5.jpg"),
        ("img5_gray16.png", "faces/deepface/img5.jpg"),
        ("img5_rgb16.png", "faces/deepface/img5.jpg"),
        ("img5_progressive.jpg", "faces/deepface/img5.jpg"),
        ("img5_anim3.gif", "faces/deepface/img5.jpg"),
        ("img5_anim3.webp", "faces/deepface/img5.jpg"),
        ("img5_exif_orient6.jpg", "faces/deepface/img5.jpg"),
        ("img5_exif_orient8.jpg", "faces/deepface/img5.jpg"),
        ("aflw_image00002_exif_orient6.jpg", "headpose/aflw2000/image00002.jpg"),
        ("aflw_image00002_exif_orient8.jpg", "headpose/aflw2000/image00002.jpg"),
    ],
)
def test_awkward_formats_of_one_face_find_that_face(server, data_dir, name, upright):
    """Each variant finds the one face of its upright source, at the same place."""
    resp = upload(server, (data_dir / "awkward" / name).read_bytes(), name, "?images=none")
    source = upload(server, (data_dir / upright).read_bytes(), upright, "?images=none")
    assert resp.status_code == source.status_code == 200
    report, ref = resp.json(), source.json()
    assert report["face_total"] == ref["face_total"] == 1
    face = (report["resp"] + report["rejected"])[0]
    ref_face = (ref["resp"] + ref["rejected"])[0]
    # re-encoding moves a borderline score (AFLW image00002: 0.89 upright, 0.79 turned)
    assert abs(face["face_confidence"] - ref_face["face_confidence"]) < 0.15
    # The same face, boxed within a few pixels (the 256-colour GIF moves it most: 0.86 IoU).
    assert iou(face["face_coordinate"], ref_face["face_coordinate"]) > 0.8
    # Upright after EXIF orientation: the eyes lie above the mouth.
    assert face["facie5points"]["left_eye"][1] < face["facie5points"]["mouth_left"][1]


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientations_match_the_upright_image(server, data_dir, orientation):
    upright = upload(server, (data_dir / "awkward/hopper.jpg").read_bytes(), query="?images=none")
    name = f"hopper_orientation_{orientation}.jpg"
    turned = upload(server, (data_dir / "awkward" / name).read_bytes(), query="?images=none")
    assert upright.status_code == turned.status_code == 200
    a, b = upright.json(), turned.json()
    assert a["face_total"] == b["face_total"] == 1
    box_a = (a["resp"] + a["rejected"])[0]["face_coordinate"]
    box_b = (b["resp"] + b["rejected"])[0]["face_coordinate"]
    assert np.abs(np.array(box_a) - np.array(box_b)).max() <= 4


def test_greyscale_and_alpha_png(server, data_dir):
    grey = upload(server, (data_dir / "awkward/hopper_gray.jpg").read_bytes(), query="?images=none")
    assert grey.status_code == 200 and grey.json()["face_total"] == 1
    rgb = cv2.cvtColor(cv2.imread(str(data_dir / "faces/deepface/img5.jpg")), cv2.COLOR_BGR2RGB)
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    alpha[:40] = 0  # a transparent band at the top
    resp = upload(server, png_bytes(np.concatenate([rgb, alpha], axis=2)), "a.png", "?images=none")
    assert resp.status_code == 200 and resp.json()["face_total"] == 1


def test_one_pixel_and_faceless_images_have_zero_faces(server, data_dir):
    resp = upload(server, png_bytes(np.zeros((1, 1, 3), np.uint8)), "dot.png")
    assert resp.status_code == 200
    assert resp.json()["face_total"] == 0 and resp.json()["resp"] == []
    for name in ("flower.jpg", "exif-72dpi-int.jpg"):
        resp = upload(server, (data_dir / "negatives" / name).read_bytes(), name)
        assert resp.status_code == 200 and resp.json()["face_total"] == 0


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height grey pixels; its data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_413_without_decoding(server):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    resp = upload(server, bomb_png(30000, 30000), "bomb.png")  # 900 MP would be 900 MB
    assert resp.status_code == 413 and error_of(resp) == "image_too_large"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100


def test_body_over_the_limit_is_413_before_it_is_read(server):
    limit = server.services.settings.max_body_bytes
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = (
            "POST /upload HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {TOKEN}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {limit * 4}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"--b\r\n")  # a few bytes of a huge declared body
        reply = sock.recv(65536).decode("latin-1")
    status_line, _, rest = reply.partition("\r\n")
    assert status_line == "HTTP/1.1 413 Request Entity Too Large"
    assert '"code": "body_too_large"' in rest or '"code":"body_too_large"' in rest


def test_chunked_body_over_the_limit_is_413(server):
    limit = server.services.settings.max_body_bytes
    block = b"\0" * (256 * 1024)
    chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            (
                "POST /upload HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {TOKEN}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        sent = 0
        try:
            while sent <= limit + len(block):
                sock.sendall(chunk)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close as soon as it has answered
        reply = b""
        try:
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                part = sock.recv(65536)
                if not part:
                    break
                reply += part
        except ConnectionResetError:
            pass
    text = reply.decode("latin-1")
    assert text.startswith("HTTP/1.1 413 Request Entity Too Large\r\n")
    assert '"code": "body_too_large"' in text


# --- concurrency -----------------------------------------------------------------------------


def test_full_queue_answers_503_with_retry_after(pipeline, data_dir, tmp_path):
    live = start_server(
        make_settings(data_dir=str(tmp_path), executor_workers=1, queue_size=0), pipeline
    )
    selfie = (data_dir / "faces/mtcnn_demo/famous-selfie.jpg").read_bytes()
    try:
        first: dict[str, requests.Response] = {}
        worker = threading.Thread(target=lambda: first.setdefault("r", upload(live, selfie)))
        worker.start()
        deadline = time.monotonic() + 30
        while live.services.executor.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert live.services.executor.in_flight == 1
        second = upload(live, selfie)
        # /livez answers while the model is busy with the first request.
        assert requests.get(f"{live.url}/livez", timeout=5).status_code == 200
        still_running = live.services.executor.in_flight == 1
        worker.join(120)
        assert second.status_code == 503 and error_of(second) == "overloaded"
        assert second.headers["Retry-After"] == "1"
        assert first["r"].status_code == 200
        assert still_running
    finally:
        live.stop()


def test_shared_face_photos_give_the_counted_faces(server, data_dir):
    import csv

    expected = {}
    with open(data_dir / "faces/faces_info.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["n_faces_visible"].isdigit():
                expected[row["file"]] = int(row["n_faces_visible"])
    results, confident = {}, {}
    for rel, count in sorted(expected.items()):
        path = data_dir / "faces" / rel
        if not Path(path).is_file():
            continue
        report = upload(server, path.read_bytes(), path.name, "?images=none&mark=0").json()
        results[rel] = (report["face_total"], count)
        confident[rel] = report["face_total"] - report["face_confidence_neglect_total_resp"]
    wrong = {k: v for k, v in results.items() if v[0] != v[1]}
    print("\nfaces detected vs counted by eye:", results)
    assert len(results) >= 30
    assert wrong == KNOWN_COUNT_DIFFERENCES
    for rel, (found, counted) in wrong.items():
        if found > counted and rel != "insightface/t1.jpg":
            assert confident[rel] <= counted, rel  # the extra one is gated as low_confidence


# Where MTCNN's detections (ONet score >= 0.7) differ from the count by eye, (found, counted).
# Every extra detection below is a low-score false positive that the 0.995 gate rejects as
# low_confidence; the misses are faces cut by the image border.
KNOWN_COUNT_DIFFERENCES: dict[str, tuple[int, int]] = {
    "deepface/selfie-many-people.jpg": (5, 7),  # two faces cut by the border are missed
    "mtcnn_ipazc/ivan.jpg": (2, 1),
}


def test_low_confidence_faces_are_not_judged_on_pose(server, data_dir):
    """Pose is measured from pose_min_confidence (0.90) on, below the 0.995 acceptance gate:
    a real face under the gate is judged on its pose too (unless it is under min_inter_eye_px:
    low_resolution); a detection under 0.90 is not. The unified score goes to the accepted
    faces only (unified_scope accepted)."""
    selfie = (data_dir / "faces/mtcnn_demo/famous-selfie.jpg").read_bytes()
    report = upload(server, selfie, query="?images=none&mark=0").json()
    low = [f for f in report["rejected"] if "low_confidence" in f["reasons"]]
    unsure = [f for f in low if f["face_confidence"] < 0.90]
    sure = report["resp"] + [f for f in report["rejected"] if f["face_confidence"] >= 0.90]
    assert len(low) == report["face_confidence_neglect_total_resp"] > 0
    assert unsure and all(f["face_pose"] is None for f in unsure)
    assert not any(r.startswith("pose_") for f in unsure for r in f["reasons"])
    assert all(f["quality"]["unified"] == {"raw": -1.0, "score": -1.0} for f in unsure)
    small = [f for f in sure if "low_resolution" in f.get("reasons", [])]
    assert all(f["face_pose"] is None for f in small)
    assert all(f["face_pose"] is not None for f in sure if f not in small)
    assert all(f["quality"]["unified"]["raw"] >= 0 for f in report["resp"])
    assert all(f["quality"]["unified"]["raw"] == -1.0 for f in report["rejected"])
    assert all(f["face_confidence"] >= 0.995 for f in report["resp"])
    # Lowering the gates per request measures pose for those faces too, and unified_scope=all
    # scores every face with a pose.
    query = "?images=none&mark=0&face_threshold=0&min_inter_eye_px=0&unified_scope=all"
    lowered = upload(server, selfie, query=query).json()
    faces = lowered["resp"] + lowered["rejected"]
    assert all(f["face_pose"] is not None for f in faces)
    assert all(f["quality"]["unified"]["raw"] >= 0 for f in faces)
    assert lowered["face_total"] == report["face_total"]


# --- bad input for the quality components: a measured answer or a clear reason -----------------


def _components(face: dict) -> dict[str, dict]:
    return face["quality"]["components"]


def _check_quality_shape(report: dict) -> None:
    for face in report["resp"] + report["rejected"]:
        for m in (face["quality"]["unified"], *_components(face).values()):
            assert m["raw"] >= 0 or m == {"raw": -1.0, "score": -1.0}, m
            assert -1 <= m["score"] <= 100


@pytest.mark.parametrize("value", [0, 255, 128])
def test_flat_black_white_and_grey_images_have_no_face(server, value):
    resp = upload(server, png_bytes(np.full((480, 640, 3), value, np.uint8)), "flat.png")
    assert resp.status_code == 200
    assert resp.json()["face_total"] == 0


@pytest.mark.parametrize(
    "name", ["img5_cmyk.jpg", "img5_gray16.png", "img5_rgb16.png", "pil_sample_cmyk.jpg"]
)
def test_cmyk_and_16_bit_files_are_measured(server, data_dir, name):
    resp = upload(server, (data_dir / "awkward" / name).read_bytes(), name, "?images=none")
    assert resp.status_code == 200
    report = resp.json()
    _check_quality_shape(report)
    if name.startswith("img5"):
        (face,) = report["resp"] + report["rejected"]
        assert _components(face)["inter_eye_distance"]["raw"] > 50
        assert _components(face)["under_exposure"]["raw"] < 0.2


def test_face_on_a_flat_grey_background_is_measured(server, data_dir):
    """The portrait's face pasted on mid grey: measured like the original, not cropped."""
    rgb = cv2.cvtColor(cv2.imread(str(data_dir / "faces/deepface/img6.jpg")), cv2.COLOR_BGR2RGB)
    canvas = np.full((1400, 1400, 3), 128, np.uint8)
    canvas[175:1225, 325:1075] = rgb[:, :]
    report = upload(server, png_bytes(canvas), "grey.png", "?images=none").json()
    _check_quality_shape(report)
    face = max(report["resp"] + report["rejected"], key=lambda f: f["face_coordinate"][2])
    assert _components(face)["face_in_frame"]["raw"] == 1.0
    assert face["quality"]["unified"]["score"] > 80
    assert not {"blurry", "underexposed", "overexposed", "cropped"} & set(face.get("reasons", []))


@pytest.mark.parametrize("keep", [0.75, 0.6])
def test_faces_cut_by_the_border_are_cropped(server, data_dir, keep):
    rgb = cv2.cvtColor(cv2.imread(str(data_dir / "faces/deepface/img6.jpg")), cv2.COLOR_BGR2RGB)
    # the face box spans x 200-568 of this 750-px-wide portrait
    cut = np.ascontiguousarray(rgb[:, : int(200 + 368 * keep)])
    report = upload(server, png_bytes(cut), "cut.png", "?images=none&face_threshold=0.9").json()
    _check_quality_shape(report)
    faces = report["resp"] + report["rejected"]
    assert faces, "the cut face is still found"
    face = max(faces, key=lambda f: f["face_coordinate"][2])
    assert "cropped" in face["reasons"]
    assert _components(face)["face_in_frame"]["raw"] < 0.95


@pytest.mark.parametrize("side", [12, 24])
def test_tiny_faces_are_low_resolution_not_errors(server, data_dir, side):
    """Down to the detector's smallest faces: a measured inter-eye distance and a reason."""
    rgb = cv2.cvtColor(cv2.imread(str(data_dir / "faces/deepface/img6.jpg")), cv2.COLOR_BGR2RGB)
    k = side / 368  # the face box is 368 px wide
    small = cv2.resize(rgb, (round(750 * k * 3), round(1050 * k * 3)), interpolation=cv2.INTER_AREA)
    small = cv2.resize(small, None, fx=1 / 3, fy=1 / 3, interpolation=cv2.INTER_AREA)
    canvas = np.full((200, 200, 3), 128, np.uint8)
    h, w = small.shape[:2]
    canvas[50 : 50 + h, 50 : 50 + w] = small
    resp = upload(server, png_bytes(canvas), "tiny.png", "?images=none&face_threshold=0")
    assert resp.status_code == 200
    report = resp.json()
    _check_quality_shape(report)
    assert report["face_total"] >= 1
    for face in report["resp"] + report["rejected"]:
        assert "low_resolution" in face["reasons"]
        assert 0 <= _components(face)["inter_eye_distance"]["raw"] < 24
