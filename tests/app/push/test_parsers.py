"""Parser behaviour beyond the shared samples: variants, malformed input, sniffing."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from app.push import eventinfo, hikvision, sniff, sophon
from app.push.event import sane_time
from app.push.fields import decode_base64_image, epoch_time, normalize_rect, parse_iso_time
from tests.app.push import samples
from tests.app.push.samples import JPEG, build

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16 + b"IEND\xaeB`\x82"
BIG_JPEG = JPEG[:-2] + b"\x00" * 5000 + b"\xff\xd9"
CT = "multipart/form-data; boundary=MIME_boundary"
HIK_CT = "multipart/form-data; boundary=MIME_boundary"


def disposition(name: str, filename: str | None = None, extra: str = "") -> bytes:
    value = f'Content-Disposition: form-data; name="{name}"'
    if filename:
        value += f'; filename="{filename}"'
    return (value + extra).encode()


# -- fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2022-09-07T10:20:30+0800",
        "2022-09-07T10:20:30 0800",
        "2022-09-07T10:20:30+08:00",
        "2022-09-07 10:20:30 +08:00",
        "2022-09-07T02:20:30Z",
        "2022-09-07T02:20:30.000Z",
    ],
)
def test_iso_time_forms(text: str) -> None:
    assert parse_iso_time(text) == datetime(2022, 9, 7, 2, 20, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2022-09-07T10:20:30", "1970-01-01T00:00:00Z", "2099-01-01T00:00:00Z", "garbage", ""]
)
def test_iso_time_without_offset_or_insane_is_none(text: str) -> None:
    assert parse_iso_time(text) is None


def test_negative_offset_and_epoch_units() -> None:
    assert parse_iso_time("2026-08-07T10:46:01-03:00") == datetime(
        2026, 8, 7, 10, 46, 1, tzinfo=timezone(timedelta(hours=-3))
    )
    assert epoch_time(1566016554020) == epoch_time("1566016554.020") == epoch_time(1566016554.02)
    assert epoch_time(0) is None and epoch_time("x") is None


def test_sane_time_bounds() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert sane_time(now + timedelta(hours=23), now) is not None
    assert sane_time(now + timedelta(days=2), now) is None
    assert sane_time(datetime(2026, 1, 1), now) is None  # naive


def test_rects_0_1_and_0_1000() -> None:
    assert normalize_rect({"x": "404", "y": 281, "width": 204, "height": 331}) == {
        "x": 0.404,
        "y": 0.281,
        "width": 0.204,
        "height": 0.331,
    }
    assert normalize_rect({"x": 0.4, "y": 0.2, "width": 0.1, "height": 0.3})["x"] == 0.4
    assert normalize_rect({"x": 1}) is None


def test_base64_variants() -> None:
    encoded = base64.b64encode(JPEG).decode()
    assert decode_base64_image(encoded) == (JPEG, None)
    assert decode_base64_image("data:image/jpeg;base64," + encoded) == (JPEG, None)
    assert decode_base64_image("data:image/jpg;base64," + encoded.rstrip("=")) == (JPEG, None)
    assert decode_base64_image(encoded.replace("+", " ")) == (JPEG, None)
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert decode_base64_image(wrapped) == (JPEG, None)
    assert decode_base64_image("") == (None, None)
    assert decode_base64_image(None) == (None, None)
    assert decode_base64_image("not base64 !!") == (None, "bad_base64")
    assert decode_base64_image(base64.b64encode(b"hello").decode()) == (None, "not_an_image")


# -- eventinfo -----------------------------------------------------------------------------


def eventinfo_body(info: bytes, images: list[tuple[str, bytes]], **kwargs: object) -> bytes:
    parts = [(disposition("eventinfo"), info)]
    parts += [(disposition(n, f"{n}.jpg", "\r\nContent-Type: image/jpeg"), d) for n, d in images]
    return build(parts, **kwargs)  # type: ignore[arg-type]


def test_eventinfo_orders_faces_and_keeps_extra_fields() -> None:
    info = b"usn=SN1&productid=P&isotime=2022-09-07T10:20:30%2B0800&ch=2"
    body = eventinfo_body(info, [("snapshot", BIG_JPEG), ("image_2", PNG), ("image_1", JPEG)])
    [event] = eventinfo.parse(body, CT)
    assert [(i.role, i.name, i.content_type) for i in event.images] == [
        ("face", "image_1.jpg", "image/jpeg"),
        ("face", "image_2.jpg", "image/png"),
        ("snapshot", "snapshot.jpg", "image/jpeg"),
    ]
    assert event.metadata["fields"] == {"ch": "2"}


def test_eventinfo_missing_part_or_bad_time_is_salvaged() -> None:
    body = build([(disposition("image_1", "image_1.jpg"), JPEG)])
    [event] = eventinfo.parse(body, CT)
    assert event.problems == ("missing_eventinfo",)
    assert event.device_id is None and event.dedupe_key is None
    [event] = eventinfo.parse(eventinfo_body(b"usn=SN1&isotime=yesterday", []), CT)
    assert event.problems == ("no_images", "bad_isotime")
    assert event.event_time is None


def test_eventinfo_truncated_thumbnail_is_dropped() -> None:
    body = eventinfo_body(b"usn=SN1", [("image_1", JPEG), ("image_2", BIG_JPEG)])
    [event] = eventinfo.parse(body[:-3000], CT)
    assert [i.data for i in event.images] == [JPEG]
    assert "truncated_image:image_2" in event.problems


def test_eventinfo_rejects_what_is_not_multipart() -> None:
    assert eventinfo.parse(b"usn=1&productid=2", "application/x-www-form-urlencoded") == []
    assert eventinfo.parse(b"", None) == []


# -- hikvision -----------------------------------------------------------------------------


def hik_json(**overrides: object) -> dict:
    doc: dict = {
        "ipAddress": "10.0.0.5",
        "macAddress": "AA:BB:CC:DD:EE:FF",
        "channelID": "1",
        "dateTime": "2026-08-07T10:45:26-03:00",
        "activePostCount": "1",
        "isDataRetransmission": "true",
        "eventType": "faceCapture",
        "eventState": "active",
        "faceCapture": [
            {
                "targetAttrs": {"contentID": "backgroundImage", "pId": "BG1"},
                "faces": [
                    {
                        "faceId": "7",
                        "faceRect": {"x": "450", "y": "255", "width": "37", "height": "85"},
                        "contentID": "faceImage",
                        "pId": "FACE1",
                        "faceScore": "65",
                    }
                ],
            }
        ],
    }
    doc.update(overrides)
    return doc


def test_hik_faceCapture_face_part_reuses_json_name() -> None:
    """One device sends the crop as a second part named like the JSON part, no pId anywhere."""
    body = build(
        [
            (
                disposition("faceCapture") + b"\r\nContent-Type: application/json",
                json.dumps(hik_json()).encode(),
            ),
            (disposition("faceCapture") + b"\r\nContent-Type: image/jpeg", JPEG),
        ]
    )
    [event] = hikvision.parse(body, HIK_CT)
    assert [(i.role, i.data) for i in event.images] == [("face", JPEG)]
    assert event.metadata["retransmission"] is True
    assert event.metadata["channel_id"] == 1
    assert event.device_id == "aa:bb:cc:dd:ee:ff"
    assert event.dedupe_key == "BG1"
    face = event.metadata["faces"][0]
    assert face["rect"] == {"x": 0.45, "y": 0.255, "width": 0.037, "height": 0.085}
    assert face["score"] == 65 and face["face_id"] == 7
    assert "missing_image:backgroundImage" in event.problems


def test_hik_images_linked_by_content_id_then_size() -> None:
    doc = hik_json()
    body = build(
        [
            (disposition("faceCapture"), json.dumps(doc).encode()),
            (disposition("img_a", "a.jpg"), BIG_JPEG),  # unnamed: size decides
            (disposition("img_b", "b.jpg"), JPEG),
        ]
    )
    [event] = hikvision.parse(body, HIK_CT)
    assert [(i.role, i.name) for i in event.images] == [("background", "a.jpg"), ("face", "b.jpg")]
    body = build(
        [
            (disposition("faceCapture"), json.dumps(doc).encode()),
            (disposition("faceImage", "x.jpg"), BIG_JPEG),  # contentID == part name
            (disposition("backgroundImage", "y.jpg"), JPEG),
        ]
    )
    [event] = hikvision.parse(body, HIK_CT)
    assert [(i.role, i.name) for i in event.images] == [("face", "x.jpg"), ("background", "y.jpg")]


def test_hik_alarmResult_as_object_with_pld_typo() -> None:
    doc = {
        "macAddress": "ac:cb:51:19:f5:08",
        "dateTime": "2021-11-03T15:09:35+08:00",
        "eventType": "alarmResult",
        "isDataRetransmission": False,
        "alarmResult": {
            "targetAttrs": {"contentID": "backgroundImage", "pld": "BGX"},
            "faces": [
                {"faceId": 16, "score": {"value": 84}, "contentID": "facelImage", "pId": "FX"}
            ],
        },
    }
    body = build(
        [
            (disposition("alarmResult"), json.dumps(doc).encode()),
            (disposition("faceImage", "FX") + b"\r\nContent-ID: <FX>", JPEG),
            (disposition("backgroundImage", "BGX"), BIG_JPEG),
        ]
    )
    [event] = hikvision.parse(body, HIK_CT)
    assert [i.role for i in event.images] == ["face", "background"]
    assert event.dedupe_key == "BGX"
    assert event.metadata["faces"][0]["score"] == 84
    assert event.metadata["retransmission"] is False
    assert event.event_time == datetime(2021, 11, 3, 7, 9, 35, tzinfo=UTC)


def test_hik_xml_event_type_and_picture_without_filename() -> None:
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>10.0.0.9</ipAddress><macAddress>44:47:CC:00:00:01</macAddress>
<channelID>2</channelID><dateTime>2026-08-07T09:14:20+08:00</dateTime>
<eventType>faceSnap</eventType><eventState>active</eventState>
<faceSnap><faceRect><x>100</x><y>200</y><width>300</width><height>400</height></faceRect></faceSnap>
</EventNotificationAlert>"""
    body = build(
        [
            (disposition("Event_Type") + b"\r\nContent-Type: application/xml", xml),
            (disposition("Picture") + b"\r\nContent-Type: image/jpeg", JPEG),
        ]
    )
    assert sniff.detect_kind(body, HIK_CT) == "hikvision"
    [event] = hikvision.parse(body, HIK_CT)
    assert event.kind == "face"
    assert [(i.role, i.name, i.data) for i in event.images] == [("picture", "Picture", JPEG)]
    assert event.device_id == "44:47:cc:00:00:01"
    assert event.dedupe_key is None
    assert event.metadata["rects"] == [{"x": 0.1, "y": 0.2, "width": 0.3, "height": 0.4}]


def test_hik_xml_direct_with_quoted_charset_and_broken_xml() -> None:
    xml = (
        b"<EventNotificationAlert><macAddress>c0:6d</macAddress>"
        b"<eventType>videoloss</eventType><eventState>inactive</eventState>"
    )
    [event] = hikvision.parse(xml, 'application/xml; charset="UTF-8"')  # not well-formed: regex
    assert event.kind == "heartbeat" and event.device_id == "c0:6d"
    entity = (
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b"<EventNotificationAlert><eventType>&a;</eventType></EventNotificationAlert>"
    )
    assert hikvision.parse(entity, "application/xml") == []
    [event] = hikvision.parse(b"\r\n" + xml + b"</EventNotificationAlert>", CT)  # mislabelled
    assert event.kind == "heartbeat"


def test_hik_acs_numbers_as_strings_and_card_event() -> None:
    doc = {
        "macAddress": "a4:d5:c2:2f:ea:d2",
        "dateTime": "2026-07-14T11:33:19+08:00",
        "eventType": "AccessControllerEvent",
        "AccessControllerEvent": {
            "majorEventType": "5",
            "subEventType": "75",
            "serialNo": "123",
            "currentEvent": False,
        },
    }
    body = build(
        [
            (disposition("AccessControllerEvent"), json.dumps(doc).encode()),
            (disposition("Picture", "Picture.jpg"), JPEG),
        ]
    )
    [event] = hikvision.parse(body, HIK_CT)
    assert event.kind == "face"
    assert event.dedupe_key == "a4:d5:c2:2f:ea:d2|123|2026-07-14T11:33:19+08:00"
    assert event.metadata["sub_event_type"] == 75 and event.metadata["current_event"] is False
    doc["AccessControllerEvent"] = {"majorEventType": 5, "subEventType": 1, "serialNo": 9}
    [event] = hikvision.parse(json.dumps(doc).encode(), "application/json")
    assert event.kind == "ignored" and event.images == ()


def test_hik_truncated_json_part_is_kept_as_a_problem_event() -> None:
    body = build([(disposition("alarmResult"), json.dumps(hik_json()).encode())])
    [event] = hikvision.parse(body[:200], HIK_CT)
    assert event.kind == "face" and event.images == ()
    assert "unreadable_document:alarmResult" in event.problems
    assert "no_event_document" in event.problems


def test_hik_images_without_any_document_are_salvaged() -> None:
    body = build([(disposition("faceImage", "f.jpg"), JPEG)])
    [event] = hikvision.parse(body, HIK_CT)
    assert [i.role for i in event.images] == ["face"]
    assert event.problems == ("no_event_document",)


def test_hik_motion_with_face_json_in_one_body() -> None:
    xml = b"<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>"
    body = build(
        [
            (disposition("faceCapture"), json.dumps(hik_json()).encode()),
            (disposition("MoveDetection.xml"), xml),
            (disposition("faceImage", "FACE1"), JPEG),
            (disposition("backgroundImage", "BG1"), BIG_JPEG),
        ]
    )
    [event] = hikvision.parse(body, HIK_CT)
    assert event.kind == "face" and [i.role for i in event.images] == ["face", "background"]
    assert event.metadata["other_documents"] == ["VMD"]
    assert event.problems == ()


def test_hik_unknown_bodies() -> None:
    assert hikvision.parse(b"hello", "text/plain") == []
    assert hikvision.parse(b'{"foo": 1}', "application/json")[0].kind == "ignored"
    assert hikvision.parse(b"[1, 2]", "application/json") == []


# -- sophon --------------------------------------------------------------------------------


def sophon_event(identity: str, ts: int, image: str) -> dict:
    return {
        "identity_id": identity,
        "timestamp": ts,
        "score": "0.5",
        "reg_pic": "",
        "ext_data": {"recognize_face": image, "spot_pic": "", "ep_id": "box__1.2.3.4"},
    }


def test_sophon_batch_array() -> None:
    encoded = base64.b64encode(JPEG).decode()
    body = json.dumps(
        [sophon_event("a", 1700000000000, encoded), sophon_event("b", 1700000000001, "")]
    ).encode()
    events = sophon.parse(body, "application/json")
    assert [e.dedupe_key for e in events] == [
        "a|1700000000000|box__1.2.3.4",
        "b|1700000000001|box__1.2.3.4",
    ]
    assert [len(e.images) for e in events] == [1, 0]
    assert events[0].payload_hash != events[1].payload_hash
    assert events[1].problems == ("no_images",)
    assert events[0].metadata["score"] == 0.5


def test_sophon_bad_images_are_problems_not_errors() -> None:
    obj = sophon_event("a", 1700000000000, "%%%not-base64")
    obj["reg_pic"] = base64.b64encode(b"just text").decode()
    [event] = sophon.parse(json.dumps(obj).encode(), "application/json")
    assert event.images == ()
    assert event.problems == (
        "bad_base64:ext_data.recognize_face",
        "not_an_image:reg_pic",
        "no_images",
    )


def test_sophon_urlencoded_form_with_unescaped_plus() -> None:
    encoded = base64.b64encode(BIG_JPEG).decode()
    assert "+" in encoded or "/" in encoded
    ext = json.dumps({"recognize_face": encoded, "ep_id": "e1"})
    body = f"identity_id=7&timestamp=1700000000000&ext_data={ext}".encode()
    [event] = sophon.parse(body, "application/x-www-form-urlencoded")
    assert [i.data for i in event.images] == [BIG_JPEG]


def test_sophon_form_data_with_image_file_part() -> None:
    body = build(
        [
            (disposition("identity_id"), b"7"),
            (disposition("timestamp"), b"1700000000000"),
            (disposition("spot_pic", "spot.jpg"), BIG_JPEG),
        ]
    )
    [event] = sophon.parse(body, CT)
    assert [(i.role, i.data) for i in event.images] == [("snapshot", BIG_JPEG)]
    assert event.dedupe_key == "7|1700000000000|-"


def test_sophon_rejects_foreign_json() -> None:
    assert sophon.parse(b'{"hello": 1}', "application/json") == []
    assert sophon.parse(b'{"identity_id": ', "application/json") == []
    assert sophon.parse(b"<xml/>", "application/xml") == []


def test_ws_frames() -> None:
    encoded = base64.b64encode(JPEG).decode()
    v2 = {
        "event_id": "e1",
        "timestamp": 1566016554020,
        "identity_id": "1",
        "score": 82.05,
        "media_device_id": "d1",
        "recognize_face_image": "data:image/jpeg;base64," + encoded,
        "register_image": "",
    }
    event = sophon.parse_ws_frame(json.dumps(v2))
    assert event is not None and event.source == "sophon_ws" and event.dedupe_key == "e1"
    assert [i.role for i in event.images] == ["face"]
    assert event.metadata["similarity"] == pytest.approx(0.8205)
    assert sophon.parse_ws_frame("not json") is None
    assert sophon.parse_ws_frame("[1]") is None
    assert sophon.parse_ws_frame(b'{"with_face_image": true}') is None


# -- sniff and robustness ------------------------------------------------------------------


def test_sniff_kinds() -> None:
    assert sniff.detect_kind(eventinfo_body(b"usn=1", []), CT) == "eventinfo"
    assert sniff.detect_kind(json.dumps(hik_json()).encode(), None) == "hikvision"
    assert (
        sniff.detect_kind(b"[" + json.dumps(sophon_event("a", 1, "")).encode() + b"]", None)
        == "sophon_http"
    )
    assert sniff.detect_kind(b"<EventNotificationAlert/>", "text/xml") == "hikvision"
    assert sniff.detect_kind(b"hello", None) is None
    assert sniff.detect_kind(b"", None) is None
    assert sniff.detect_kind(build([(disposition("x"), b"1")]), CT) is None


@pytest.mark.shared_data
def test_mutated_samples_never_raise(data_dir: Path) -> None:
    rng = random.Random(11)
    parsers = [eventinfo.parse, hikvision.parse, sophon.parse]
    for path in samples.camera_files(data_dir):
        sample = samples.load(path)
        for _ in range(40):
            body = bytearray(sample.body)
            for _ in range(rng.randint(1, 6)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            mutated = bytes(body[: rng.randint(0, len(body))])
            sniff.detect_kind(mutated, sample.content_type)
            sophon.parse_ws_frame(mutated)
            for parse in parsers:
                for event in parse(mutated, sample.content_type):
                    json.dumps(event.metadata)  # always JSON-safe
