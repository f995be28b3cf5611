"""``GET /metrics`` on a live server with the real models: counters move with uploads."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.live import AUTH, LiveServer, make_settings, start_server

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory) -> LiveServer:
    live = start_server(make_settings(data_dir=str(tmp_path_factory.mktemp("var"))), pipeline)
    yield live
    live.stop()


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[tuple, float]:
    resp = requests.get(f"{url}/metrics", headers=headers or {}, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_upload_moves_stage_histograms_and_face_counters(server, astronaut_jpeg):
    before = scrape(server.url)
    assert before[("faceq_model_ready", (("model", "detector"),))] == 1
    assert before[("faceq_model_ready", (("model", "pose"),))] == 1
    resp = requests.post(
        f"{server.url}/upload?images=none&max_yaw=0",
        files={"image": ("a.jpg", astronaut_jpeg)},
        headers=AUTH,
        timeout=120,
    )
    assert resp.status_code == 200
    assert resp.json()["rejected"][0]["reasons"] == ["pose_yaw"]
    resp = requests.post(
        f"{server.url}/uploads?images=none",
        files=[("image", ("a.jpg", astronaut_jpeg)), ("image", ("b.jpg", b"not an image"))],
        headers=AUTH,
        timeout=120,
    )
    assert resp.status_code == 200
    after = scrape(server.url)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert delta("faceq_images_total", source="upload") == 2  # the text file is not an image
    assert delta("faceq_images_total", source="hikvision") == 0
    assert delta("faceq_faces_total", verdict="accepted") == 1
    assert delta("faceq_faces_total", verdict="rejected") == 1
    assert delta("faceq_face_rejections_total", reason="pose_yaw") == 1
    assert delta("faceq_face_rejections_total", reason="blurry") == 0
    for stage in ("decode", "detect", "align", "blur", "pose", "encode"):
        assert delta("faceq_stage_duration_seconds_count", stage=stage) == 2
        assert delta("faceq_stage_duration_seconds_sum", stage=stage) > 0
    upload_key = {"method": "POST", "handler": "UploadHandler", "status": "200"}
    assert delta("faceq_http_request_duration_seconds_count", **upload_key) == 1
    assert after[("faceq_executor_queue_depth", ())] == 0


def test_errors_are_counted_by_handler_class_and_status(server):
    before = scrape(server.url)
    assert requests.get(f"{server.url}/no/such/thing", timeout=10).status_code == 404
    assert requests.post(f"{server.url}/upload", timeout=10).status_code == 401
    for i in range(3):  # a client-chosen method never becomes a label value of its own
        assert requests.request(f"BREW{i}", f"{server.url}/livez", timeout=10).status_code == 405
    after = scrape(server.url)
    key_other = (
        "faceq_http_request_duration_seconds_count",
        (("handler", "LivezHandler"), ("method", "other"), ("status", "405")),
    )
    assert after[key_other] - before.get(key_other, 0) == 3
    assert not any("BREW" in str(k) for k in after)
    key_404 = (
        "faceq_http_request_duration_seconds_count",
        (("handler", "NotFoundHandler"), ("method", "GET"), ("status", "404")),
    )
    key_401 = (
        "faceq_http_request_duration_seconds_count",
        (("handler", "UploadHandler"), ("method", "POST"), ("status", "401")),
    )
    assert after[key_404] - before.get(key_404, 0) == 1
    assert after[key_401] - before.get(key_401, 0) == 1
    assert not any("no/such" in str(k) for k in after)  # never labelled by URL


def test_private_metrics_need_a_token(tmp_path):
    live = start_server(make_settings(data_dir=str(tmp_path), metrics_public=False))
    try:
        resp = requests.get(f"{live.url}/metrics", timeout=10)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "missing_token"
        resp = requests.get(f"{live.url}/metrics", headers={"Authorization": "x" * 20}, timeout=10)
        assert resp.status_code == 403
        got = scrape(live.url, AUTH)
        assert got[("faceq_model_ready", (("model", "pose"),))] == 0  # no pipeline loaded here
    finally:
        live.stop()
