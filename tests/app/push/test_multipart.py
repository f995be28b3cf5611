"""Edge cases of the tolerant multipart splitter (PROTOCOLS.md's table), one test each."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.push import hikvision, multipart
from app.push.event import image_complete
from tests.app.push import samples
from tests.app.push.samples import JPEG, build

CT = "multipart/form-data; boundary=MIME_boundary"


JSON_PART = (
    b'Content-Disposition: form-data; name="event"\r\nContent-Type: application/json',
    b'{"a": 1}',
)
IMAGE_PART = (
    b'Content-Disposition: form-data; name="Picture"; filename="Picture.jpg"\r\n'
    b"Content-Type: image/jpeg",
    JPEG,
)


def test_well_formed_body() -> None:
    mp = multipart.split(build([JSON_PART, IMAGE_PART]), CT)
    assert mp.complete and mp.problems == ()
    assert [p.name for p in mp.parts] == ["event", "Picture"]
    assert mp.parts[0].data == b'{"a": 1}'
    assert mp.parts[1].data == JPEG
    assert mp.parts[1].filename == "Picture.jpg"
    assert mp.parts[1].content_type == "image/jpeg"
    assert not any(p.truncated for p in mp.parts)


def test_body_shorter_than_content_length_keeps_complete_parts() -> None:
    body = build([JSON_PART, IMAGE_PART])
    cut = body[: body.index(JPEG) + 40]  # the device closed the socket mid-image
    mp = multipart.split(cut, CT)
    assert not mp.complete
    assert mp.parts[0].data == b'{"a": 1}' and not mp.parts[0].truncated
    assert mp.parts[1].truncated and mp.parts[1].data == JPEG[:40]
    assert "no_closing_boundary" in mp.problems
    assert "truncated_part:Picture" in mp.problems


def test_cut_inside_part_headers_drops_that_part() -> None:
    body = build([JSON_PART, IMAGE_PART])
    cut = body[: body.index(b'filename="Picture') + 5]
    mp = multipart.split(cut, CT)
    assert [p.name for p in mp.parts] == ["event"]
    assert "truncated_headers" in mp.problems


def test_no_closing_boundary_but_whole_image() -> None:
    mp = multipart.split(build([JSON_PART, IMAGE_PART], close=False), CT)
    assert not mp.complete
    assert mp.parts[1].data == JPEG
    assert mp.parts[1].truncated and image_complete(mp.parts[1].data)


def test_closing_boundary_cut_in_the_middle() -> None:
    body = build([JSON_PART, IMAGE_PART])
    mp = multipart.split(body[: -len(b"ary--\r\n")], CT)
    assert mp.parts[1].data == JPEG


def test_lf_only_line_endings() -> None:
    mp = multipart.split(build([JSON_PART, IMAGE_PART], eol=b"\n"), CT)
    assert mp.complete
    assert [p.name for p in mp.parts] == ["event", "Picture"]
    assert mp.parts[1].data == JPEG
    assert mp.parts[1].content_type == "image/jpeg"


def test_mixed_line_endings() -> None:
    body = build([JSON_PART], eol=b"\n")[: -len(b"--MIME_boundary--\n")]
    body += build([IMAGE_PART])
    mp = multipart.split(body, CT)
    assert [p.data for p in mp.parts] == [b'{"a": 1}', JPEG]


def test_boundary_declared_with_leading_dashes() -> None:
    mp = multipart.split(
        build([JSON_PART, IMAGE_PART]), "multipart/form-data; boundary=--MIME_boundary"
    )
    assert [p.data for p in mp.parts] == [b'{"a": 1}', JPEG]
    assert "boundary_declared_with_dashes" in mp.problems


def test_boundary_that_really_starts_with_dashes() -> None:
    body = build([JSON_PART, IMAGE_PART], boundary=b"----WebKitFormBoundary7MA4")
    mp = multipart.split(body, "multipart/form-data; boundary=----WebKitFormBoundary7MA4")
    assert [p.data for p in mp.parts] == [b'{"a": 1}', JPEG]
    assert mp.problems == ()


@pytest.mark.parametrize("content_type", ["multipart/form-data", None, "application/octet-stream"])
def test_boundary_missing_falls_back_to_first_body_line(content_type: str | None) -> None:
    mp = multipart.split(b"\r\n" + build([JSON_PART, IMAGE_PART]), content_type)
    assert mp.boundary == "MIME_boundary"
    assert [p.data for p in mp.parts] == [b'{"a": 1}', JPEG]
    assert "boundary_from_body" in mp.problems


def test_declared_boundary_that_is_not_in_the_body() -> None:
    mp = multipart.split(build([JSON_PART, IMAGE_PART]), "multipart/form-data; boundary=other")
    assert [p.data for p in mp.parts] == [b'{"a": 1}', JPEG]
    assert mp.problems[:2] == ("declared_boundary_not_found", "boundary_from_body")


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/form-data; boundary="MIME_boundary"; charset="UTF-8"',
        "Multipart/Form-Data; charset=utf-8; BOUNDARY=MIME_boundary; type=image/jpeg",
        "multipart/form-data;boundary = 'MIME_boundary'",
    ],
)
def test_quoted_boundary_with_extra_parameters(content_type: str) -> None:
    assert multipart.boundary_param(content_type) == "MIME_boundary"
    mp = multipart.split(build([JSON_PART, IMAGE_PART]), content_type)
    assert [p.data for p in mp.parts] == [b'{"a": 1}', JPEG]


def test_quoted_boundary_with_spaces() -> None:
    body = build([JSON_PART], boundary=b"my boundary")
    mp = multipart.split(body, 'multipart/form-data; boundary="my boundary"')
    assert mp.parts[0].data == b'{"a": 1}'


def test_gbk_filename_and_text() -> None:
    headers = 'Content-Disposition: form-data; name="图片"; filename="人脸.jpg"'.encode("gbk")
    text = (b'Content-Disposition: form-data; name="note"', "门禁 通过".encode("gbk"))
    mp = multipart.split(build([text, (headers, JPEG)]), CT)
    assert mp.parts[0].text() == "门禁 通过"
    assert mp.parts[1].name == "图片"
    assert mp.parts[1].filename == "人脸.jpg"
    assert mp.parts[1].data == JPEG


def test_undecodable_header_bytes_are_replaced_not_fatal() -> None:
    headers = b'Content-Disposition: form-data; name="x\xa7"; filename="a\xff.jpg"'
    mp = multipart.split(build([(headers, JPEG)]), CT)
    assert mp.parts[0].data == JPEG
    assert mp.parts[0].name is not None and mp.parts[0].name.startswith("x")


def test_rfc5987_filename() -> None:
    headers = b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%E4%BA%BA%E8%84%B8.jpg"
    mp = multipart.split(build([(headers, JPEG)]), CT)
    assert mp.parts[0].filename == "人脸.jpg"


def test_duplicated_and_extra_boundary_lines_are_skipped() -> None:
    body = (
        b"--MIME_boundary\r\n--MIME_boundary\r\n"
        + build([JSON_PART], close=False)
        + b"--MIME_boundary\r\n\r\n"
        + build([IMAGE_PART])
    )
    mp = multipart.split(body, CT)
    assert [p.name for p in mp.parts] == ["event", "Picture"]
    assert mp.parts[1].data == JPEG


def test_jpeg_with_crlf_and_boundary_lookalike_lines() -> None:
    tricky = (
        JPEG[:30]
        + b"\r\n--MIME_boundaryX\r\n--MIME_boundary-\r\n--MIME_boundary \tjunk\r\n"
        + JPEG[30:]
    )
    mp = multipart.split(build([JSON_PART, (IMAGE_PART[0], tricky)]), CT)
    assert len(mp.parts) == 2
    assert mp.parts[1].data == tricky


def test_exact_delimiter_inside_data_is_resolved_by_part_content_length() -> None:
    tricky = JPEG[:30] + b"\r\n--MIME_boundary\r\n" + JPEG[30:]
    headers = IMAGE_PART[0] + b"\r\nContent-Length: %d" % len(tricky)
    mp = multipart.split(build([JSON_PART, (headers, tricky)]), CT)
    assert [p.name for p in mp.parts] == ["event", "Picture"]
    assert mp.parts[1].data == tricky


def test_wrong_part_content_length_is_ignored() -> None:
    headers = IMAGE_PART[0] + b"\r\nContent-Length: 4"
    mp = multipart.split(build([JSON_PART, (headers, JPEG)]), CT)
    assert mp.parts[1].data == JPEG
    assert mp.parts[1].declared_length == 4


def test_part_content_length_trims_an_unterminated_last_part() -> None:
    headers = IMAGE_PART[0] + b"\r\nContent-Length: %d" % len(JPEG)
    body = build([JSON_PART, (headers, JPEG)], close=False) + b"\x00\x00garbage"
    mp = multipart.split(body, CT)
    assert mp.parts[1].data == JPEG
    assert not mp.parts[1].truncated


def test_parts_without_name_or_filename_or_headers() -> None:
    body = build([(b"Content-Type: image/jpeg", JPEG)])[: -len(b"--MIME_boundary--\r\n")]
    body += b"--MIME_boundary\r\n\r\n" + JPEG + b"\r\n--MIME_boundary--\r\n"
    mp = multipart.split(body, CT)
    assert [(p.name, p.filename) for p in mp.parts] == [(None, None), (None, None)]
    assert [p.data for p in mp.parts] == [JPEG, JPEG]


def test_preamble_and_epilogue_are_ignored() -> None:
    body = b"This is a preamble\r\n" + build([JSON_PART]) + b"epilogue \r\n--MIME_boundary\r\n"
    mp = multipart.split(body, CT)
    assert [p.data for p in mp.parts] == [b'{"a": 1}']
    assert mp.complete


def test_content_id_brackets_are_stripped() -> None:
    headers = IMAGE_PART[0] + b"\r\nContent-ID: <abc123>"
    mp = multipart.split(build([(headers, JPEG)]), CT)
    assert mp.parts[0].content_id == "abc123"


def test_not_multipart_at_all() -> None:
    mp = multipart.split(b'{"eventType": "heartBeat"}', "application/json")
    assert mp.parts == () and not mp.complete


def test_random_bytes_never_raise() -> None:
    rng = random.Random(7)
    base = build([JSON_PART, IMAGE_PART])
    for _ in range(300):
        body = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        cut = bytes(body[: rng.randint(0, len(body))])
        multipart.split(cut, rng.choice([CT, None, "multipart/form-data; boundary="]))
        multipart.split(bytes(rng.randrange(256) for _ in range(rng.randint(0, 200))), CT)


@pytest.mark.shared_data
def test_every_cut_of_a_real_push_gives_only_whole_images(data_dir: Path) -> None:
    """Cut the alarmResult push at many offsets: no exception, only intact JPEGs come out."""
    jpeg = samples.face_jpeg(data_dir)
    sample = samples.load(data_dir / "cameras" / "D_hik_alarmResult_multipart.http", jpeg)
    body = sample.body
    seen_counts = set()
    for end in list(range(0, len(body), 997)) + [len(body) - 3, len(body)]:
        events = hikvision.parse(body[:end], sample.content_type)
        for event in events:
            assert all(image.data == jpeg for image in event.images)
            seen_counts.add(len(event.images))
            if end < len(body) - 20:
                assert "no_closing_boundary" in event.problems
    assert seen_counts == {0, 1, 2, 3}
    [event] = hikvision.parse(body[: body.rindex(jpeg) + 1000], sample.content_type)
    assert [i.role for i in event.images] == ["face", "background"]
    assert "truncated_image:faceLibImage" in event.problems
