"""The web page in a real browser (headless Chromium): upload, verdicts, gates, downloads, errors,
camera events, text from devices shown as text, and the page at 1280 and 390 px.

The page comes from a live service (tests/live.py) with the real models. Screenshots of each
view go to the test's temporary folder; their sizes are checked.
"""

from __future__ import annotations

import json
import logging
import math
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

from tests.browser import missing_browser, screenshot, start_chromium
from tests.conftest import ROOT
from tests.live import AUTH, TOKEN, LiveServer, make_settings, start_server

pytestmark = [pytest.mark.models, pytest.mark.shared_data]
if missing_browser() is not None:  # said before the models load for nothing
    pytest.skip(missing_browser(), allow_module_level=True)

FACE = Path("faces/deepface/img11.jpg")  # one face the default gates accept
NOT_IMAGE = ROOT / "postman" / "not-an-image.txt"
# What a device sends; none of it may run in the page.
XSS_DEVICE = "<script>window.__xss = 1</script>"
XSS_PRODUCT = '<img src=x onerror="window.__xss = 2">'
XSS_FILE = "<img src=x onerror=window.__xss=3>.jpg"
NATURAL_SIZE = "return [arguments[0].naturalWidth, arguments[0].naturalHeight]"


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory) -> Iterator[LiveServer]:
    live = start_server(make_settings(data_dir=str(tmp_path_factory.mktemp("var"))), pipeline)
    yield live
    live.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    session = start_chromium(downloads)
    session.downloads = downloads
    yield session
    session.quit()


def complete_json(path: Path) -> Any:
    """The JSON document in ``path``, or None while the file is missing or not yet complete."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def wait_for(condition: Callable[[], Any], timeout: float = 120.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception as exc:
            # The events list is redrawn when it changes: a node found a moment ago may be gone.
            if type(exc).__name__ != "StaleElementReferenceException":
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


def js_number(value: float) -> str:
    """The page's number format (report.js formatNumber)."""
    rounded = math.floor(value * 10000 + 0.5) / 10000
    return str(int(rounded)) if rounded == int(rounded) else repr(rounded)


def text(element: Any) -> str:
    """An element's text as written (textContent: no CSS text-transform)."""
    return element.get_attribute("textContent")


def css(session: Any, selector: str) -> list[Any]:
    return session.find_elements("css selector", selector)


def one(session: Any, selector: str) -> Any:
    return session.find_element("css selector", selector)


def open_page(session: Any, server: LiveServer, token: str | None = TOKEN) -> None:
    session.get(f"{server.url}/")
    assert session.title == "faceq: face quality"
    if token is not None:
        field = one(session, "#token")
        field.clear()
        field.send_keys(token)
        one(session, "#token-form button[type=submit]").click()
        wait_for(lambda: text(one(session, "#token-status")), 30, "the token check")


def choose_files(session: Any, *paths: Path) -> None:
    field = one(session, "#files")
    session.execute_script("arguments[0].value = ''", field)  # a new choice, not an addition
    field.send_keys("\n".join(str(p) for p in paths))


def set_gate(session: Any, name: str, value: str) -> None:
    field = one(session, f"#gate-{name}")
    field.clear()
    field.send_keys(value)


def api_report(server: LiveServer, path: Path, **params: str) -> dict[str, Any]:
    with path.open("rb") as fh:
        resp = requests.post(
            f"{server.url}/upload",
            params={"images": "aligned", "mark": "0", **params},
            headers=AUTH,
            files=[("image", (path.name, fh, "image/jpeg"))],
            timeout=120,
        )
    return resp.json()


def assert_no_console_problem(session: Any) -> None:
    entries = session.get_log("browser")
    problems = [e for e in entries if e["level"] == "SEVERE" or "Security Policy" in e["message"]]
    assert problems == []


def test_upload_shows_the_face_its_measures_and_downloads(server, browser, data_dir, tmp_path):
    photo = data_dir / FACE
    expected = api_report(server, photo)
    assert (expected["face_total"], len(expected["resp"])) == (1, 1)
    face = expected["resp"][0]

    open_page(browser, server)
    assert text(one(browser, "#token-status")) == "Token accepted."
    # record what the progress indicator says while the request runs
    browser.execute_script(
        "window.__progress = [];"
        "const box = document.getElementById('upload-progress');"
        "const say = document.getElementById('progress-text');"
        "new MutationObserver(() => { if (!box.hidden) window.__progress.push(say.textContent); })"
        ".observe(box, {attributes: true, childList: true, subtree: true, characterData: true});"
    )
    choose_files(browser, photo)
    card = wait_for(lambda: css(browser, ".face-card"), what="the face card")[0]
    progress = browser.execute_script("return window.__progress")
    assert "Assessing…" in progress and progress[0].startswith("Sending")
    assert one(browser, "#upload-progress").get_attribute("hidden") == "true"
    assert text(one(browser, ".result h3")) == "img11.jpg"
    assert text(one(browser, ".report .summary")) == "1 face found: 1 accepted, 0 rejected"
    assert card.get_attribute("class") == "face-card accepted"
    assert text(one(browser, ".face-card h4")) == "#1 accepted"
    measures = {
        d.get_attribute("data-key"): text(d) for d in css(browser, ".face-card dd[data-key]")
    }
    pose = face["face_pose"]
    assert measures["face_confidence"] == js_number(face["face_confidence"])
    assert measures["face_blur"] == js_number(face["face_blur"])
    assert measures["face_pose"] == "".join(
        f"{k}{js_number(pose[k])}" for k in ("pitch", "yaw", "roll")
    )
    assert measures["face_coordinate"] == ", ".join(str(v) for v in face["face_coordinate"])
    assert len(measures["face_id"]) == 32  # a new id per request
    crop = one(browser, ".face-card img.crop")
    wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", crop), 30)
    assert browser.execute_script(
        "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", crop
    ) == [112, 112]

    # the box drawn where the report says, and highlighted with its card
    wait_for(lambda: css(browser, "svg.boxes g.box"), 30, "the boxes")
    boxes = css(browser, "svg.boxes g.box")
    assert [b.get_attribute("class") for b in boxes] == ["box accepted"]
    rect = one(browser, "svg.boxes g.box rect")
    assert [int(float(rect.get_attribute(a))) for a in ("x", "y", "width", "height")] == face[
        "face_coordinate"
    ]
    assert text(one(browser, "svg.boxes g.box text")) == "#1"
    browser.execute_script("arguments[0].focus()", card)
    assert one(browser, "svg.boxes g.box").get_attribute("class") == "box accepted active"
    browser.execute_script("arguments[0].blur()", card)
    assert one(browser, "svg.boxes g.box").get_attribute("class") == "box accepted"

    size = screenshot(browser, tmp_path / "upload.png", 1280)
    assert size[0] == 1280 and size[1] > 900
    assert (tmp_path / "upload.png").stat().st_size > 100_000

    # downloads: the report as the service gave it, and a ZIP of the accepted aligned crop
    buttons = css(browser, ".result .actions button")
    assert [text(b) for b in buttons] == [
        "Download report (JSON)",
        "Download accepted crops (1, ZIP)",
    ]
    buttons[0].click()
    report_file = browser.downloads / "img11-report.json"
    # Chromium may show the file before its bytes are in: wait for the whole document.
    report = wait_for(lambda: complete_json(report_file), 30, "the report download")
    assert report["filename"] == "img11.jpg"
    assert (report["face_total"], len(report["resp"]), report["rejected"]) == (1, 1, [])
    assert report["resp"][0]["face_confidence"] == face["face_confidence"]
    buttons[1].click()
    archive = browser.downloads / "img11-accepted.zip"
    wait_for(lambda: archive.is_file() and zipfile.is_zipfile(archive), 30, "the ZIP download")
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["img11_1.png"]
        png = zf.read("img11_1.png")
    aligned = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert aligned.shape == (112, 112, 3)
    assert_no_console_problem(browser)


def test_a_changed_gate_asks_again_and_redraws(server, browser, data_dir):
    photo = data_dir / FACE
    strict = api_report(server, photo, blur_threshold="1000000")
    assert strict["rejected"][0]["reasons"] == ["blurry"]
    open_page(browser, server)
    choose_files(browser, photo)
    wait_for(lambda: css(browser, ".face-card.accepted"), what="the accepted face")
    assert one(browser, "#gate-blur_threshold").get_attribute("value") == "100"
    set_gate(browser, "blur_threshold", "1000000")
    wait_for(lambda: css(browser, ".face-card.rejected"), 60, "the verdict to change")
    assert text(one(browser, ".report .summary")) == "1 face found: 0 accepted, 1 rejected"
    assert text(one(browser, ".face-card h4")) == "#1 rejected: blurry"
    wait_for(lambda: css(browser, "svg.boxes g.box"), 30, "the boxes")
    assert one(browser, "svg.boxes g.box").get_attribute("class") == "box rejected"
    crops_button = css(browser, ".result .actions button")[1]
    assert text(crops_button) == "Download accepted crops (0, ZIP)"
    assert crops_button.get_attribute("disabled") == "true"
    # out of bounds: said in words, nothing sent
    set_gate(browser, "max_yaw", "500")
    wait_for(lambda: text(one(browser, "#upload-error")), 10, "the bounds message")
    one(browser, "#assess").click()
    assert text(one(browser, "#upload-error")) == (
        "Largest |yaw| (degrees) must be a number from 0 to 180"
    )
    one(browser, "#gates-reset").click()
    wait_for(lambda: css(browser, ".face-card.accepted"), 60, "the verdict to return")
    assert text(one(browser, "#upload-error")) == ""


def test_errors_are_shown_in_words(server, browser, data_dir, caplog):
    caplog.set_level(logging.INFO, logger="faceq.access")
    photo = data_dir / FACE
    with NOT_IMAGE.open("rb") as fh:
        refusal = requests.post(
            f"{server.url}/upload", headers=AUTH, files={"image": fh}, timeout=30
        ).json()["error"]
    assert refusal["code"] == "not_an_image"

    open_page(browser, server, token="wrong-token-0000000000")
    assert text(one(browser, "#token-status")) == (
        "Token refused: the API token is not valid (HTTP 403, invalid_token)"
    )
    choose_files(browser, photo)
    wait_for(lambda: text(one(browser, "#upload-error")), 60, "the 403 message")
    assert text(one(browser, "#upload-error")) == (
        "img11.jpg was refused: the API token is not valid (HTTP 403, invalid_token)"
    )
    one(browser, "#token-forget").click()
    assert text(one(browser, "#token-status")) == "Token forgotten."
    one(browser, "#assess").click()
    wait_for(lambda: "401" in text(one(browser, "#upload-error")), 60, "the 401 message")
    assert text(one(browser, "#upload-error")) == (
        "img11.jpg was refused: send the API token in the Authorization header "
        "(HTTP 401, missing_token)"
    )

    one(browser, "#token").send_keys(TOKEN)
    choose_files(browser, NOT_IMAGE)
    wait_for(lambda: "415" in text(one(browser, "#upload-error")), 60, "the 415 message")
    assert text(one(browser, "#upload-error")) == (
        f"not-an-image.txt was refused: {refusal['message']} (HTTP 415, not_an_image)"
    )
    assert css(browser, ".result") == []

    # dropped on the box, as a file manager would: the same path as the file input
    browser.execute_script(
        "const data = new DataTransfer();"
        "data.items.add(new File(['no picture here'], 'dropped.txt', {type: 'text/plain'}));"
        "document.getElementById('drop').dispatchEvent("
        "  new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));"
    )
    wait_for(lambda: "dropped.txt" in text(one(browser, "#upload-error")), 60, "the drop")
    assert text(one(browser, "#upload-error")) == (
        f"dropped.txt was refused: {refusal['message']} (HTTP 415, not_an_image)"
    )
    assert one(browser, "#upload-progress").get_attribute("hidden") == "true"

    # several files at once go to /uploads: each gets its own answer
    choose_files(browser, photo, NOT_IMAGE)
    wait_for(lambda: len(css(browser, ".result")) == 2, 120, "two results")
    first, second = css(browser, ".result")
    assert text(first.find_element("css selector", "h3")) == "img11.jpg"
    assert first.find_element("css selector", ".face-card").get_attribute("class") == (
        "face-card accepted"
    )
    assert text(second.find_element("css selector", ".error")) == (
        f"not-an-image.txt: {refusal['message']} (HTTP 415, not_an_image)"
    )
    assert text(one(browser, "#upload-error")) == ""
    # the token: this tab's sessionStorage only, never localStorage, a cookie or the URL
    assert browser.execute_script("return sessionStorage.getItem('faceq.token')") == TOKEN
    assert browser.execute_script("return localStorage.length") == 0
    assert browser.get_cookies() == []
    assert TOKEN not in browser.current_url
    # ... nor in the service's request log, which saw every one of these requests
    assert "handler=UploadsHandler" in caplog.text and "handler=RootHandler" in caplog.text
    assert TOKEN not in caplog.text


def push_event(server: LiveServer, usn: str, image: bytes, product: str, filename: str) -> str:
    """Push an eventinfo camera event and wait until it is processed; return its id."""
    info = f"usn={usn}&productid={product}&isotime=2026-01-02T03:04:05Z&channel=<b>door</b>"
    resp = requests.post(
        f"{server.url}/push/{TOKEN}/eventinfo",
        files=[("eventinfo", (None, info)), ("image_1", (filename, image, "image/jpeg"))],
        timeout=30,
    )
    assert (resp.status_code, resp.text) == (200, "OK")

    def done() -> str | None:
        page = requests.get(f"{server.url}/events?limit=500", headers=AUTH, timeout=10).json()
        mine = [e for e in page["events"] if e["device_id"] == usn]
        return mine[0]["id"] if mine and mine[0]["status"] == "done" else None

    return wait_for(done, 120, f"event {usn} processed")


def event_items(session: Any) -> dict[str, Any]:
    return {text(li.find_element("css selector", ".device")): li for li in css(session, ".event")}


def test_camera_events_are_listed_filtered_and_shown_as_text(server, browser, data_dir, tmp_path):
    from selenium.webdriver.support.ui import Select  # importable once the browser fixture ran

    face = (data_dir / FACE).read_bytes()
    event_id = push_event(server, XSS_DEVICE, face, XSS_PRODUCT, XSS_FILE)
    event = requests.get(f"{server.url}/events/{event_id}", headers=AUTH, timeout=10).json()
    assert event["image_files"][0]["name"] == XSS_FILE
    assert event["metadata"]["productid"] == XSS_PRODUCT

    open_page(browser, server)
    tab = one(browser, "#tab-upload")
    tab.send_keys("\ue014")  # ArrowRight: the tabs are keyboard operable
    assert one(browser, "#tab-events").get_attribute("aria-selected") == "true"
    assert one(browser, "#view-upload").get_attribute("hidden") == "true"
    item = wait_for(lambda: event_items(browser).get(XSS_DEVICE), 30, "the pushed event")
    facts = [text(dd) for dd in item.find_elements("css selector", ".event-facts dd")]
    assert facts == ["eventinfo", XSS_DEVICE, "1 accepted, 0 rejected", "1"]
    assert text(item.find_element("css selector", ".status")) == "done"
    thumb = wait_for(lambda: item.find_elements("css selector", "img.thumb"), 30, "a thumbnail")[0]
    wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", thumb), 30)
    assert browser.execute_script("return arguments[0].naturalWidth", thumb) == 112

    # filters: by verdict and by source
    def shown() -> list[str]:
        """The devices of the listed events, read in one go (the list may be redrawn)."""
        return browser.execute_script(
            "return [...document.querySelectorAll('#events-list .event .device')]"
            ".map(e => e.textContent)"
        )

    verdict = Select(one(browser, "#filter-verdict"))
    source = Select(one(browser, "#filter-source"))
    assert [o.get_attribute("value") for o in verdict.options] == [
        "",
        "accepted",
        "rejected",
        "no_face",
    ]
    assert [o.get_attribute("value") for o in source.options] == [
        "",
        "eventinfo",
        "hikvision",
        "sophon_http",
        "sophon_ws",
    ]
    verdict.select_by_value("rejected")
    wait_for(lambda: text(one(browser, "#events-status")) == "No camera events match.", 30)
    verdict.select_by_value("accepted")
    wait_for(lambda: shown() == [XSS_DEVICE], 30, "the accepted filter")
    source.select_by_value("hikvision")
    wait_for(lambda: shown() == [], 30, "the source filter")
    source.select_by_value("eventinfo")
    wait_for(lambda: shown() == [XSS_DEVICE], 30, "the eventinfo filter")

    # a new event appears while the view is open, without a click
    push_event(server, "CAM-LIVE-2", face, "FD-CAM", "face.jpg")
    wait_for(lambda: shown() == ["CAM-LIVE-2", XSS_DEVICE], 30, "the refresh (newest first)")

    # the event in detail: its image with the box drawn, the face's verdict, the metadata
    wait_for(lambda: event_items(browser)[XSS_DEVICE], 10).find_element(
        "css selector", ".event-open"
    ).click()
    wait_for(lambda: css(browser, "#event-detail .face-card"), 60, "the event's faces")
    assert text(one(browser, "#event-detail h3")) == f"Event from {XSS_DEVICE}"
    assert text(one(browser, "#event-detail .event-image h4")) == f"image 1: face ({XSS_FILE})"
    picture = one(browser, "#event-detail img.picture")
    wait_for(lambda: css(browser, "#event-detail svg.boxes g.box"), 30, "the event's boxes")
    height, width = cv2.imdecode(np.frombuffer(face, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    assert browser.execute_script(NATURAL_SIZE, picture) == [width, height]
    assert text(one(browser, "#event-detail .face-card h4")) == "#1 accepted"
    crop = one(browser, "#event-detail .face-card img.crop")
    wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", crop), 30)
    assert browser.execute_script(NATURAL_SIZE, crop) == [112, 112]
    one(browser, "#event-detail details summary").click()
    metadata = text(one(browser, "#event-detail details"))
    assert XSS_PRODUCT in metadata and "<b>door</b>" in metadata
    screenshot(browser, tmp_path / "events.png", 1280)
    assert (tmp_path / "events.png").stat().st_size > 50_000

    # nothing a device sent ran or became markup
    assert browser.execute_script("return window.__xss") is None
    assert css(browser, 'img[src="x"], b, #events-list script, #event-detail script') == []
    scripts = browser.execute_script("return [...document.scripts].map(s => s.src)")
    assert len(scripts) == 1 and "/static/main.js?v=" in scripts[0]
    assert_no_console_problem(browser)


def test_readable_at_390_px(server, browser, data_dir, tmp_path):
    open_page(browser, server)
    browser.set_window_size(390, 900)
    choose_files(browser, data_dir / FACE)
    wait_for(lambda: css(browser, ".face-card"), what="the face card")
    wait_for(lambda: css(browser, "svg.boxes g.box"), 30, "the boxes")
    no_sideways = "return document.documentElement.scrollWidth <= window.innerWidth"
    assert browser.execute_script(no_sideways)
    assert screenshot(browser, tmp_path / "upload-390.png", 390)[0] == 390
    one(browser, "#tab-events").click()
    wait_for(lambda: text(one(browser, "#events-status")), 30, "the events list")
    assert browser.execute_script(no_sideways)
    assert screenshot(browser, tmp_path / "events-390.png", 390)[0] == 390
    # every control has a label
    unlabelled = browser.execute_script(
        "return [...document.querySelectorAll('input, select, button')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.textContent.trim()"
        " && !e.getAttribute('aria-label')).map(e => e.id || e.outerHTML)"
    )
    assert unlabelled == []


SYNTHETIC_REPORT = {
    "face_total": 2,
    "resp": [
        {
            "face_id": "a" * 32,
            "face_confidence": 0.99991,
            "face_coordinate": [10, 10, 50, 60],
            "face_blur": 321.5,
            "face_pose": {"pitch": 1.25, "yaw": -2, "roll": 3},
            "quality": {
                "unified": {"raw": 0.61, "score": 72},
                "components": {
                    "sharpness": {"raw": 812.4, "score": 88},
                    "exposure": {"raw": None, "score": -1},
                },
            },
            "a_new_measure": "<img src=x onerror=window.__xss=9>",
        }
    ],
    "rejected": [
        {
            "face_id": "b" * 32,
            "reasons": ["blurry", "quality_unified"],
            "face_coordinate": [100, 10, 40, 40],
            "face_confidence": 0.999,
            "face_blur": 12,
            "face_pose": None,
        }
    ],
}


def test_measures_the_page_does_not_know_are_rendered_generically(server, browser):
    """A face's ``quality`` object, new reasons and new keys show without changes to the page."""
    open_page(browser, server, token=None)
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('/static/report.js').then((m) => {"
        "  const node = m.renderReport(JSON.parse(arguments[0]));"
        "  node.id = 'synthetic';"
        "  document.getElementById('results').append(node);"
        "  done('ok');"
        "}, (e) => done(String(e)));",
        json.dumps(SYNTHETIC_REPORT),  # as the page gets a report: JSON, keys in order
    )
    assert result == "ok"
    assert text(one(browser, "#synthetic .summary")) == "2 faces found: 1 accepted, 1 rejected"
    cards = css(browser, "#synthetic .face-card")
    assert [text(c.find_element("css selector", "h4")) for c in cards] == [
        "#1 accepted",
        "#2 rejected: blurry, quality_unified",
    ]
    quality = cards[0].find_element("css selector", 'dd[data-key="quality"]')
    unified = quality.find_element("css selector", "dl.values > div > dd > dl.inline")
    assert text(unified) == "raw0.61score72"
    rows = [
        [text(cell) for cell in row.find_elements("css selector", "th, td")]
        for row in quality.find_elements("css selector", "table tr")
    ]
    assert rows == [
        ["", "raw", "score"],
        ["sharpness", "812.4", "88"],
        ["exposure", "not measured", "-1"],
    ]
    assert text(cards[0].find_element("css selector", 'dd[data-key="face_pose"]')) == (
        "pitch1.25yaw-2roll3"
    )
    new = cards[0].find_element("css selector", 'dd[data-key="a_new_measure"]')
    assert text(new) == "<img src=x onerror=window.__xss=9>"
    assert text(cards[1].find_element("css selector", 'dd[data-key="face_pose"]')) == (
        "not measured"
    )
    assert browser.execute_script("return window.__xss") is None
    assert css(browser, '#synthetic img[src="x"]') == []
