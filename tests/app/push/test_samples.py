"""Replay every sample of data/cameras through sniffing and the parsers; exact results."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from app.push import eventinfo, hikvision, sniff, sophon
from app.push.event import CameraEvent, sha256_hex
from tests.app.push import samples

pytestmark = pytest.mark.shared_data

EVENT_LOG_PICTURE = b"\xff\xd8\xff\xe0\r\n--not-a-boundary\r\n\xff\xd9"
WS_DEVICE = "04f98265-1fad-47e5-9dda-66e191272055"
HIK_CAMERA = "08:3b:c1:4e:64:e6"
TERMINAL = "a4:d5:c2:2f:ea:d2"


@dataclass(frozen=True)
class Expected:
    detect: str | None  # sniff.detect_kind
    source: str
    kind: str
    device_id: str | None
    event_time: str | None
    dedupe_key: str | None
    roles: tuple[str, ...]
    problems: tuple[str, ...] = ()


EXPECTED: dict[str, Expected | None] = {
    "A_eventinfo_face_pct2B.http": Expected(
        "eventinfo",
        "eventinfo",
        "face",
        "TN0123456789",
        "2022-09-07T10:20:30+08:00",
        "TN0123456789|2022-09-07T10:20:30+08:00|*",
        ("face", "face", "snapshot"),
    ),
    "A_eventinfo_face_raw_plus.http": Expected(
        "eventinfo",
        "eventinfo",
        "face",
        "TN0123456789",
        "2022-09-07T10:20:30+08:00",
        "TN0123456789|2022-09-07T10:20:30+08:00|*",
        ("face", "face", "snapshot"),
    ),
    # Client configuration frames: not events.
    "B_sophon_ws_client_config_v1_legacy.json": None,
    "B_sophon_ws_client_config_v2.json": None,
    "B_sophon_ws_event_v1_legacy.json": Expected(
        "sophon_http",
        "sophon_ws",
        "face",
        WS_DEVICE,
        "2019-08-17T04:35:54.020000+00:00",
        f"666666|1566016554020|{WS_DEVICE}",
        ("face", "snapshot", "library"),
    ),
    "B_sophon_ws_event_v2.json": Expected(
        "sophon_http",
        "sophon_ws",
        "face",
        WS_DEVICE,
        "2019-08-17T04:35:54.020000+00:00",
        "3b9f1f0e-6c2a-4a55-9c1e-0d7f2b1a9e11",
        ("face", "library"),
    ),
    "B_sophon_ws_event_v2_doc_example.json": Expected(
        "sophon_http",
        "sophon_ws",
        "face",
        WS_DEVICE,
        "2019-08-17T04:35:54.020000+00:00",
        f"666666|1566016554020|{WS_DEVICE}",
        ("face",),
    ),
    "C_sophon_historyevent_apiv2.json": Expected(
        "sophon_http",
        "sophon_http",
        "face",
        "fb4eb129a3d64f0a81a04a00e36547b1",
        "2021-08-16T02:17:41.881000+00:00",
        "01200002|1629080261881|fb4eb129a3d64f0a81a04a00e36547b1",
        ("face", "snapshot", "library"),
    ),
    "C_sophon_historyevent_ep_info_v1.json": Expected(
        "sophon_http",
        "sophon_http",
        "face",
        "3f09148d-b736-48fb-a29f-95bb9d23ff51",
        "2020-10-13T18:00:36.150000+00:00",
        "1602612036.3828533|1602612036150|3f09148d-b736-48fb-a29f-95bb9d23ff51",
        (),
        ("no_images",),
    ),
    "C_sophon_historyevent_ext_data.http": Expected(
        "sophon_http",
        "sophon_http",
        "face",
        "3714be15-09b3-41ec-b9ce-62b668e5fa32__192.168.1.101",
        "2019-06-13T06:56:24.678000+00:00",
        "13028|1560408984678|3714be15-09b3-41ec-b9ce-62b668e5fa32__192.168.1.101",
        ("face", "snapshot", "library", "infrared"),
    ),
    "C_sophon_historyevent_fiqa.json": Expected(
        "sophon_http",
        "sophon_http",
        "face",
        "AKOPKKKKK__192.168.1.25",
        "2019-06-13T06:56:24.678000+00:00",
        "13028|1560408984678|AKOPKKKKK__192.168.1.25",
        ("face", "snapshot", "library"),
    ),
    "C_sophon_historyevent_formdata_INFERRED.http": Expected(
        "sophon_http",
        "sophon_http",
        "face",
        "3714be15-09b3-41ec-b9ce-62b668e5fa32__192.168.1.101",
        "2019-06-13T06:56:24.678000+00:00",
        "13028|1560408984678|3714be15-09b3-41ec-b9ce-62b668e5fa32__192.168.1.101",
        ("face", "snapshot", "library", "infrared"),
    ),
    "D_hik_MoveDetection_xml_with_image.http": Expected(
        "hikvision",
        "hikvision",
        "ignored",
        "44:47:cc:11:22:33",
        "2026-08-07T09:14:20-03:00",
        None,
        (),
    ),
    "D_hik_acs_AccessControllerEvent_Picture.http": Expected(
        "hikvision",
        "hikvision",
        "face",
        TERMINAL,
        "2026-07-14T11:33:19+08:00",
        f"{TERMINAL}|123|2026-07-14T11:33:19+08:00",
        ("picture",),
    ),
    "D_hik_acs_event_log_variant.http": Expected(
        "hikvision",
        "hikvision",
        "face",
        TERMINAL,
        "2026-07-14T11:33:19+08:00",
        f"{TERMINAL}|123|2026-07-14T11:33:19+08:00",
        ("picture",),
    ),
    "D_hik_acs_heartbeat_sub9.json": Expected(
        "hikvision", "hikvision", "heartbeat", TERMINAL, "2026-07-14T11:33:49+08:00", None, ()
    ),
    "D_hik_alarmResult_contrastFailed.json": Expected(
        "hikvision",
        "hikvision",
        "face",
        HIK_CAMERA,
        "2026-08-07T10:45:53-03:00",
        "2026080710460290900BYIGGXTwpPeGD",
        (),
        ("no_images",),
    ),
    "D_hik_alarmResult_multipart.http": Expected(
        "hikvision",
        "hikvision",
        "face",
        HIK_CAMERA,
        "2026-08-07T10:46:01-03:00",
        "2026080710460290900BYIGGXTwpPeGD",
        ("face", "background", "library"),
    ),
    "D_hik_faceCapture_multipart.http": Expected(
        "hikvision",
        "hikvision",
        "face",
        HIK_CAMERA,
        "2026-08-07T10:45:26-03:00",
        "2026080710453050100C03LKTGnH49aV",
        ("face", "background"),
    ),
    "D_hik_heartBeat.json": Expected(
        "hikvision", "hikvision", "heartbeat", TERMINAL, "2026-08-03T14:51:07+08:00", None, ()
    ),
    "D_hik_videoloss_heartbeat.xml": Expected(
        "hikvision",
        "hikvision",
        "heartbeat",
        "c0:6d:ed:02:d3:d9",
        "2022-12-11T15:30:20+09:30",
        None,
        (),
    ),
}

PARSERS = {"eventinfo": eventinfo.parse, "hikvision": hikvision.parse, "sophon_http": sophon.parse}


def _parse(sample: samples.Sample) -> list[CameraEvent]:
    if sample.name.startswith("B_"):
        event = sophon.parse_ws_frame(sample.body)
        return [] if event is None else [event]
    kind = sniff.detect_kind(sample.body, sample.content_type)
    return [] if kind is None else PARSERS[kind](sample.body, sample.content_type)


def test_every_sample_has_an_expectation(data_dir: Path) -> None:
    names = {p.name for p in samples.camera_files(data_dir)}
    assert names == set(EXPECTED), "a sample was added or removed: update EXPECTED"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_parses_exactly(data_dir: Path, name: str) -> None:
    jpeg = samples.face_jpeg(data_dir)
    path = data_dir / "cameras" / name
    if not path.exists():
        pytest.skip(f"{name} is not in this copy of the shared data")
    sample = samples.load(path, jpeg)
    expected = EXPECTED[name]
    detected = sniff.detect_kind(sample.body, sample.content_type)
    events = _parse(sample)
    if expected is None:
        assert detected is None
        assert events == []
        return
    assert detected == expected.detect
    assert len(events) == 1
    event = events[0]
    assert event.source == expected.source
    assert event.kind == expected.kind
    assert event.device_id == expected.device_id
    assert event.event_time == datetime.fromisoformat(expected.event_time or "")
    if expected.dedupe_key and expected.dedupe_key.endswith("|*"):
        digest = hashlib.sha256(b"".join(hashlib.sha256(i.data).digest() for i in event.images))
        assert event.dedupe_key == expected.dedupe_key[:-1] + digest.hexdigest()[:16]
    else:
        assert event.dedupe_key == expected.dedupe_key
    assert tuple(i.role for i in event.images) == expected.roles
    assert event.problems == expected.problems
    assert event.payload_hash == sha256_hex(sample.body)
    for image in event.images:
        wanted = EVENT_LOG_PICTURE if name == "D_hik_acs_event_log_variant.http" else jpeg
        assert image.data == wanted
        assert image.content_type == "image/jpeg"
    if expected.kind != "face":
        assert event.images == ()


def test_eventinfo_isotime_forms_give_the_same_event(data_dir: Path) -> None:
    jpeg = samples.face_jpeg(data_dir)
    folder = data_dir / "cameras"
    plus = samples.load(folder / "A_eventinfo_face_raw_plus.http", jpeg)
    encoded = samples.load(folder / "A_eventinfo_face_pct2B.http", jpeg)
    [a] = eventinfo.parse(plus.body, plus.content_type)
    [b] = eventinfo.parse(encoded.body, encoded.content_type)
    assert a.dedupe_key == b.dedupe_key
    assert a.metadata["isotime"] == "2022-09-07T10:20:30 0800"
    assert b.metadata["isotime"] == "2022-09-07T10:20:30+0800"
    assert a.metadata["productid"] == "PRD-FD-01"


def test_sample_metadata_highlights(data_dir: Path) -> None:
    jpeg = samples.face_jpeg(data_dir)
    folder = data_dir / "cameras"

    alarm = samples.load(folder / "D_hik_alarmResult_multipart.http", jpeg)
    [event] = hikvision.parse(alarm.body, alarm.content_type)
    [face] = event.metadata["faces"]
    assert face["score"] == 52
    assert face["max_similarity"] == 0.95
    assert face["candidates"][0]["name"] == "Test PERSON"
    assert face["rect"] == {"x": 0.456, "y": 0.291, "width": 0.023, "height": 0.041}
    assert event.metadata["retransmission"] is False
    assert "modelData" not in str(event.metadata)

    capture = samples.load(folder / "D_hik_faceCapture_multipart.http", jpeg)
    [event] = hikvision.parse(capture.body, capture.content_type)
    assert event.metadata["faces"][0]["score"] == 65

    ws = samples.load(folder / "B_sophon_ws_event_v2.json", jpeg)
    event = sophon.parse_ws_frame(ws.body)
    assert event is not None
    assert event.metadata["score"] == 82.05
    assert event.metadata["similarity"] == pytest.approx(0.8205)
    assert event.metadata["user_type"] == "employee"

    fiqa = samples.load(folder / "C_sophon_historyevent_fiqa.json", jpeg)
    [event] = sophon.parse(fiqa.body, fiqa.content_type)
    assert event.metadata["box_fiqa"]["fiqa_result"] is True
    assert event.metadata["grab_fiqa"]["eye_dist"] == 82
    assert "base64" not in str(event.metadata) and "/9j/" not in str(event.metadata)


def test_samples_parse_with_placeholders_too(data_dir: Path) -> None:
    """The 4-byte placeholders are valid JPEG magic: the same events come out."""
    for path in samples.camera_files(data_dir):
        sample = samples.load(path)
        expected = EXPECTED[path.name]
        events = _parse(sample)
        assert len(events) == (0 if expected is None else 1), path.name
        if expected is not None:
            assert tuple(i.role for i in events[0].images) == expected.roles, path.name
