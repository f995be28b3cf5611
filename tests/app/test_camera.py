"""The camera service's pure parts: choosing a parser, shaping the forwarded JSON."""

from __future__ import annotations

import json

from app.camera import parse_push
from app.push.forward import shape_payload
from tests.app.push import samples

HIK_JSON = json.dumps(
    {"ipAddress": "10.0.0.9", "macAddress": "a4:d5:c2:2f:ea:d2", "eventType": "heartBeat"}
).encode()


def test_route_parser_first_then_the_body_decides() -> None:
    eventinfo = samples.build(
        [
            (
                b'Content-Disposition: form-data; name="eventinfo"',
                b"usn=X1&isotime=2026-01-01T00:00:00Z",
            ),
            (b'Content-Disposition: form-data; name="image_1"; filename="a.jpg"', samples.JPEG),
        ]
    )
    content_type = "multipart/form-data; boundary=MIME_boundary"
    kind, events = parse_push("eventinfo", eventinfo, content_type)
    assert kind == "eventinfo" and [e.source for e in events] == ["eventinfo"]
    # Pushed to the wrong receiver: the body still finds its parser.
    kind, events = parse_push("sophon_http", eventinfo, content_type)
    assert kind == "eventinfo" and [e.source for e in events] == ["eventinfo"]
    kind, events = parse_push(None, HIK_JSON, "application/json")
    assert kind == "hikvision" and [e.kind for e in events] == ["heartbeat"]
    assert parse_push(None, b"\x00garbage", None) == (None, [])
    assert parse_push("hikvision", b"{not json", "application/json") == ("hikvision", [])


def test_accepted_only_payload_drops_rejected_faces_and_keeps_the_original() -> None:
    event = {
        "id": "e1",
        "reports": [
            {"face_total": 2, "resp": [{"face_id": "a"}], "rejected": [{"face_id": "r"}]},
            {"error": {"code": "undecodable_image", "message": "x"}, "status": 422},
        ],
    }
    shaped = shape_payload(event, accepted_only=True)
    assert shaped["reports"][0] == {"face_total": 2, "resp": [{"face_id": "a"}]}
    assert shaped["reports"][1] == event["reports"][1]
    assert "rejected" in event["reports"][0]
    assert shape_payload(event, accepted_only=False) is event
