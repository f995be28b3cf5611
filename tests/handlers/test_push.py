"""Camera receivers on a live server: every sample of data/cameras, replayed at its URL.

Each HTTP sample goes to a fresh server (its own inbox: some samples are re-deliveries of
others and would otherwise be duplicates), with a real face JPEG in place of the placeholders.
The device's exact answer is checked, then the stored and processed event. The SE real-time
WebSocket samples (``B_*``) are replayed by a fake box in ``test_push_sophon_ws.py``.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from app.camera import camera_of
from app.push.access import token_fingerprint
from tests.app.push import samples
from tests.handlers.push_support import (
    ACCEPTED_FACE,
    AUTH,
    EVENTINFO_ACK,
    HIKVISION_ACK,
    SOPHON_ACK,
    get_event,
    list_events,
    push,
    wait_until_processed,
)
from tests.live import TOKEN, LiveServer, make_settings, start_server

pytestmark = pytest.mark.shared_data

SOPHON_URL = "/sophon/EventServer/api/HistoryEvent"


@dataclass(frozen=True)
class Case:
    """Where a device pushes the sample, what it must hear back, and what gets stored."""

    route: str  # after /push/<token>
    ack: tuple[str, bytes]
    source: str
    kind: str  # face (stored) | heartbeat | ignored (counted only)
    roles: tuple[str, ...] = ()
    # face_total per image; None where the image is not decodable (an error entry)
    faces: tuple[int | None, ...] = ()


EVENTINFO = Case(
    "/eventinfo", EVENTINFO_ACK, "eventinfo", "face", ("face", "face", "snapshot"), (1, 1, 1)
)


def _hik(route: str, kind: str = "face", roles: tuple[str, ...] = (), faces=()) -> Case:
    return Case(route, HIKVISION_ACK, "hikvision", kind, roles, faces)


def _sophon(route: str, roles: tuple[str, ...]) -> Case:
    return Case(route, SOPHON_ACK, "sophon_http", "face", roles, (1,) * len(roles))


HTTP_CASES: dict[str, Case] = {
    "A_eventinfo_face_pct2B.http": EVENTINFO,
    "A_eventinfo_face_raw_plus.http": EVENTINFO,
    "C_sophon_historyevent_apiv2.json": _sophon("/sophon", ("face", "snapshot", "library")),
    "C_sophon_historyevent_ep_info_v1.json": _sophon(SOPHON_URL, ()),
    "C_sophon_historyevent_ext_data.http": _sophon(
        SOPHON_URL, ("face", "snapshot", "library", "infrared")
    ),
    "C_sophon_historyevent_fiqa.json": _sophon("/sophon", ("face", "snapshot", "library")),
    "C_sophon_historyevent_formdata_INFERRED.http": _sophon(
        "/sophon", ("face", "snapshot", "library", "infrared")
    ),
    "D_hik_MoveDetection_xml_with_image.http": _hik("/hikvision", "ignored"),
    "D_hik_acs_AccessControllerEvent_Picture.http": _hik("/hikvision", "face", ("picture",), (1,)),
    # Its Picture part is a JPEG-shaped stub with CR LF inside: not decodable.
    "D_hik_acs_event_log_variant.http": _hik(
        "/hikvision/ISAPI/Event", "face", ("picture",), (None,)
    ),
    "D_hik_acs_heartbeat_sub9.json": _hik("/hikvision", "heartbeat"),
    "D_hik_alarmResult_contrastFailed.json": _hik("/hikvision", "face", (), ()),
    "D_hik_alarmResult_multipart.http": _hik(
        "/hikvision", "face", ("face", "background", "library"), (1, 1, 1)
    ),
    "D_hik_faceCapture_multipart.http": _hik("/hikvision", "face", ("face", "background"), (1, 1)),
    "D_hik_heartBeat.json": _hik("/hikvision", "heartbeat"),
    "D_hik_videoloss_heartbeat.xml": _hik("/hikvision", "heartbeat"),
}
WS_SAMPLES = {  # replayed in test_push_sophon_ws.py
    "B_sophon_ws_client_config_v1_legacy.json",
    "B_sophon_ws_client_config_v2.json",
    "B_sophon_ws_event_v1_legacy.json",
    "B_sophon_ws_event_v2.json",
    "B_sophon_ws_event_v2_doc_example.json",
}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start live servers on fresh data folders; stop them after the test."""
    started: list[LiveServer] = []

    def start(pipeline: Any = None, **overrides: Any) -> LiveServer:
        data_dir = tmp_path / f"var{len(started)}"
        live = start_server(make_settings(data_dir=str(data_dir), **overrides), pipeline)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


def load(data_dir: Path, name: str, face: Path = samples.FACE_JPEG) -> samples.Sample:
    return samples.load(data_dir / "cameras" / name, (data_dir / face).read_bytes())


def assert_ack(resp: requests.Response, ack: tuple[str, bytes]) -> None:
    assert (resp.status_code, resp.headers["Content-Type"], resp.content) == (200, *ack)


def test_every_sample_is_replayed(data_dir: Path) -> None:
    names = {p.name for p in samples.camera_files(data_dir)}
    assert names == set(HTTP_CASES) | WS_SAMPLES


@pytest.mark.models
@pytest.mark.parametrize("name", sorted(HTTP_CASES))
def test_sample_is_answered_stored_and_processed(serve, pipeline, data_dir: Path, name: str):
    case = HTTP_CASES[name]
    live = serve(pipeline)
    sample = load(data_dir, name)
    assert_ack(push(live.url, case.route, sample), case.ack)
    assert_ack(push(live.url, case.route, sample), case.ack)  # a re-delivery
    counters = camera_of(live.services).inbox.counters()[case.source]
    if case.kind != "face":
        assert counters == {case.kind: 2}
        time.sleep(0.3)
        assert list_events(live.url) == []
        return
    assert counters == {"face": 1, "duplicate": 1}
    [summary] = wait_until_processed(live.url, 1)
    assert summary["source"] == case.source
    assert summary["status"] == "done"
    assert summary["images"] == len(case.roles)
    event = get_event(live.url, summary["id"])
    assert [f["role"] for f in event["image_files"]] == list(case.roles)
    assert len(event["reports"]) == len(case.roles)
    accepted = 0
    for index, (report, faces) in enumerate(zip(event["reports"], case.faces, strict=True)):
        assert (report["index"], report["role"]) == (index, case.roles[index])
        if faces is None:
            assert report["error"]["code"] == "undecodable_image"
            assert report["status"] == 422
            continue
        assert report["face_total"] == faces
        assert report["face_efficient_total_resp"] == len(report["resp"])
        assert len(report["resp"]) + len(report["rejected"]) == faces
        assert "mark_image_face_b64" not in report
        for face in report["resp"] + report["rejected"]:
            assert not any(key.endswith("_b64") for key in face)
        accepted += len(report["resp"])
    assert summary["faces_accepted"] == event["faces_accepted"] == accepted


@pytest.mark.parametrize("name", sorted(HTTP_CASES))
def test_generic_route_detects_the_format(serve, data_dir: Path, name: str):
    case = HTTP_CASES[name]
    live = serve(inbox_workers=0)
    assert_ack(push(live.url, "", load(data_dir, name)), case.ack)
    events = list_events(live.url)
    if case.kind != "face":
        assert events == []
        return
    [event] = events
    assert (event["source"], event["status"], event["images"]) == (
        case.source,
        "pending",
        len(case.roles),
    )


def test_get_on_push_urls_answers_like_a_post(serve):
    live = serve()
    for path, ack in (
        ("", EVENTINFO_ACK),
        ("/", EVENTINFO_ACK),
        ("/eventinfo", EVENTINFO_ACK),
        ("/hikvision", HIKVISION_ACK),
        ("/Hikvision/any/thing", HIKVISION_ACK),
        (SOPHON_URL, SOPHON_ACK),
    ):
        assert_ack(requests.get(f"{live.url}/push/{TOKEN}{path}", timeout=10), ack)
    assert list_events(live.url) == []


def test_unknown_token_is_403_json(serve, data_dir: Path):
    live = serve()
    sample = load(data_dir, "D_hik_alarmResult_multipart.http")
    forbidden = {"error": {"code": "invalid_token", "message": "the push token is not valid"}}
    for path in ("", "/hikvision", SOPHON_URL):
        resp = push(live.url, path, sample, token="not-our-token-42")
        assert resp.status_code == 403
        assert resp.headers["Content-Type"] == "application/json; charset=UTF-8"
        assert resp.json() == forbidden
    resp = requests.get(f"{live.url}/push/{TOKEN[:-1]}/hikvision", timeout=10)
    assert (resp.status_code, resp.json()) == (403, forbidden)
    assert list_events(live.url) == []


def test_allow_list_is_keyed_by_token_fingerprint(serve, data_dir: Path):
    other = "second-token-abcdefgh"
    live = serve(
        tokens=(TOKEN, other),
        push_allow={
            token_fingerprint(TOKEN): ("10.0.0.0/8",),
            token_fingerprint(other, 8): ["127.0.0.0/8"],
        },
    )
    sample = load(data_dir, "D_hik_faceCapture_multipart.http")
    resp = push(live.url, "/hikvision", sample)
    assert resp.status_code == 403
    assert resp.json() == {
        "error": {
            "code": "address_not_allowed",
            "message": "this address may not push with this token",
        }
    }
    assert_ack(push(live.url, "/hikvision", sample, token=other), HIKVISION_ACK)
    assert len(list_events(live.url)) == 1


def test_body_over_the_cap_is_413(serve, data_dir: Path):
    live = serve(push_max_body_mb=0.05)
    limit = int(0.05 * 1024 * 1024)
    too_large = {
        "error": {"code": "body_too_large", "message": f"the request body exceeds {limit} bytes"}
    }
    sample = load(data_dir, "A_eventinfo_face_raw_plus.http")  # three 34 KB JPEGs
    assert len(sample.body) > limit
    resp = push(live.url, "/eventinfo", sample)
    assert (resp.status_code, resp.json()) == (413, too_large)

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        for start in range(0, len(sample.body), 8192):
            yield sample.body[start : start + 8192]

    resp = requests.post(
        f"{live.url}/push/{TOKEN}/eventinfo",
        data=chunks(),
        headers={"Content-Type": sample.content_type},
        timeout=10,
    )
    assert (resp.status_code, resp.json()) == (413, too_large)
    assert list_events(live.url) == []


def send_cut_short(port: int, path: str, sample: samples.Sample, cut: int) -> None:
    """Send the headers with the full Content-Length, then ``cut`` body bytes, then close."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {sample.content_type}\r\nContent-Length: {len(sample.body)}\r\n\r\n"
    ).encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + sample.body[:cut])
        time.sleep(0.3)  # let the server read it all before the close


@pytest.mark.models
def test_push_cut_short_keeps_its_complete_parts(serve, pipeline, data_dir: Path):
    live = serve(pipeline)
    jpeg = (data_dir / samples.FACE_JPEG).read_bytes()
    sample = load(data_dir, "A_eventinfo_face_raw_plus.http")
    # Parts: eventinfo, image_1, image_2, snapshot; the device dies inside the snapshot.
    snapshot = sample.body.rfind(jpeg)
    assert sample.body.count(jpeg) == 3
    send_cut_short(live.port, f"/push/{TOKEN}/eventinfo", sample, snapshot + len(jpeg) // 2)
    [summary] = wait_until_processed(live.url, 1, timeout=60)
    assert (summary["source"], summary["status"], summary["images"]) == ("eventinfo", "done", 2)
    event = get_event(live.url, summary["id"])
    assert [f["role"] for f in event["image_files"]] == ["face", "face"]
    assert "truncated_image:snapshot" in event["metadata"]["problems"]
    assert [r["face_total"] for r in event["reports"]] == [1, 1]
    assert live.services.extras["readiness_details"]["camera"]()["cut_short_pushes"] == 1


@pytest.mark.models
def test_aligned_crop_is_a_112_png_and_metrics_count_the_images(serve, pipeline, data_dir):
    live = serve(pipeline)
    sample = load(data_dir, "D_hik_faceCapture_multipart.http", face=ACCEPTED_FACE)
    assert_ack(push(live.url, "/hikvision", sample), HIKVISION_ACK)
    [summary] = wait_until_processed(live.url, 1)
    assert summary["faces_accepted"] == 2
    event = get_event(live.url, summary["id"])
    face_id = event["reports"][0]["resp"][0]["face_id"]
    url = f"{live.url}/events/{summary['id']}/faces/{face_id}.png"
    resp = requests.get(url, headers=AUTH, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.content.startswith(b"\x89PNG\r\n\x1a\n")
    crop = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (112, 112, 3)
    assert requests.get(url, timeout=10).status_code == 401
    missing = requests.get(url.replace(face_id, "0" * 32), headers=AUTH, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    metrics = requests.get(f"{live.url}/metrics", timeout=10).text
    assert 'faceq_images_total{source="hikvision"} 2.0' in metrics
    assert "faceq_inbox_backlog 0.0" in metrics


@pytest.mark.models
def test_zero_workers_store_without_processing(serve, pipeline, data_dir: Path):
    live = serve(pipeline, inbox_workers=0)
    assert_ack(
        push(live.url, "/eventinfo", load(data_dir, "A_eventinfo_face_pct2B.http")), EVENTINFO_ACK
    )
    time.sleep(2.5)  # workers would have taken it long ago; the stats refresh every 2 s
    [summary] = list_events(live.url)
    assert (summary["status"], summary["faces_accepted"]) == ("pending", None)
    assert get_event(live.url, summary["id"])["reports"] == []
    ready = requests.get(f"{live.url}/readyz", timeout=10).json()
    assert ready["camera"]["workers"] == 0 and ready["camera"]["backlog"] == 1


def test_events_api_pages_filters_and_errors(serve, data_dir: Path):
    live = serve(inbox_workers=0)
    for name, route in (
        ("A_eventinfo_face_pct2B.http", "/eventinfo"),
        ("D_hik_alarmResult_multipart.http", "/hikvision"),
        ("C_sophon_historyevent_fiqa.json", "/sophon"),
    ):
        assert push(live.url, route, load(data_dir, name)).status_code == 200
    everything = list_events(live.url)
    assert [e["source"] for e in everything] == ["sophon_http", "hikvision", "eventinfo"]
    first = requests.get(f"{live.url}/events?limit=2", headers=AUTH, timeout=10).json()
    assert [e["id"] for e in first["events"]] == [e["id"] for e in everything[:2]]
    assert first["next"] is not None
    second = requests.get(
        f"{live.url}/events", params={"limit": 2, "since": first["next"]}, headers=AUTH, timeout=10
    ).json()
    assert [e["id"] for e in second["events"]] == [everything[2]["id"]]
    assert second["next"] is None
    assert [e["source"] for e in list_events(live.url, source="hikvision")] == ["hikvision"]
    assert list_events(live.url, verdict="accepted") == []  # nothing processed yet
    for params, message in (
        ({"limit": "0"}, "limit must be an integer from 1 to 500"),
        ({"limit": "x"}, "limit must be an integer from 1 to 500"),
        ({"since": "abc"}, "since must be the 'next' of a previous page"),
        ({"since": "9" * 30}, "since must be the 'next' of a previous page"),
        ({"source": "dahua"}, "source must be one of eventinfo, hikvision, sophon_http, sophon_ws"),
        ({"verdict": "maybe"}, "verdict must be one of accepted, rejected, no_face"),
    ):
        resp = requests.get(f"{live.url}/events", params=params, headers=AUTH, timeout=10)
        assert resp.status_code == 400, params
        assert resp.json() == {"error": {"code": "bad_parameter", "message": message}}
    for path in (
        "/events/" + "0" * 32,
        "/events/not-an-id",
        "/events/" + "0" * 32 + "/faces/a.png",
    ):
        resp = requests.get(live.url + path, headers=AUTH, timeout=10)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["code"] == "not_found"
    assert requests.get(f"{live.url}/events", timeout=10).status_code == 401
    wrong = requests.get(f"{live.url}/events", headers={"Authorization": "x" * 20}, timeout=10)
    assert wrong.status_code == 403


def test_the_token_never_reaches_the_log(serve, data_dir: Path, caplog):
    caplog.set_level(logging.DEBUG)
    live = serve(inbox_workers=0, push_max_body_mb=0.09)  # two face JPEGs fit, three do not
    camera = camera_of(live.services)
    small = load(data_dir, "D_hik_faceCapture_multipart.http")
    large = load(data_dir, "A_eventinfo_face_raw_plus.http")
    assert push(live.url, "/hikvision", small).status_code == 200
    assert push(live.url, "", load(data_dir, "D_hik_heartBeat.json")).status_code == 200
    assert push(live.url, "/hikvision", large).status_code == 413
    assert requests.get(f"{live.url}/push/{TOKEN}/unknown", timeout=10).status_code == 404
    assert requests.get(f"{live.url}//PUSH//{TOKEN}/x?y=1", timeout=10).status_code == 404
    assert requests.post(f"{live.url}/push/{TOKEN}/sophon", data=b"{not json", timeout=10).text
    send_cut_short(live.port, f"/push/{TOKEN}/hikvision", small, len(small.body) - 100)
    deadline = time.monotonic() + 10
    while camera.inbox.counters()["hikvision"].get("duplicate") != 1:  # same pId: salvaged
        assert time.monotonic() < deadline
        time.sleep(0.05)

    def broken_put(event: Any) -> Any:
        raise OSError(28, "No space left on device")

    camera.inbox.put = broken_put  # type: ignore[method-assign]
    resp = push(
        live.url, "/hikvision", load(data_dir, "D_hik_acs_AccessControllerEvent_Picture.http")
    )
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "inbox_unavailable"
    time.sleep(0.5)
    # The service's records only: the test's own HTTP client (urllib3) logs the URLs it opens.
    records = [r for r in caplog.records if not r.name.startswith("urllib3")]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(r) for r in records)
    assert "No space left on device" in logged  # the exception was logged, with traceback
    assert "Traceback" in logged
    assert "PushHandler" in logged
    assert TOKEN not in logged
    assert TOKEN.upper() not in logged.upper()
