"""The web page over HTTP: who gets HTML at ``/``, its headers, its static files, what it embeds,
and the event image route it uses. The page in a browser is tested in ``tests/test_web.py``."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Iterator

import pytest
import requests

from handlers.web import CONTENT_SECURITY_POLICY, STATIC_DIR, wants_html
from models.pipeline import OVERRIDE_BOUNDS, Policy
from tests.conftest import ROOT
from tests.live import AUTH, TOKEN, LiveServer, make_settings, start_server

BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    live = start_server(make_settings(data_dir=str(tmp_path_factory.mktemp("var"))))
    yield live
    live.stop()


@pytest.mark.parametrize(
    ("accept", "html_wanted"),
    [
        (BROWSER_ACCEPT, True),
        ("text/html", True),
        ("application/xhtml+xml", True),
        ("text/html;q=0.5, application/json", False),
        ("application/json, text/html;q=0.9", False),
        ("text/html, application/json", True),
        ("text/html;q=0", False),
        ("text/html;q=abc", False),
        ("*/*", False),
        ("", False),
        (None, False),
        ("application/json", False),
    ],
)
def test_wants_html(accept, html_wanted):
    assert wants_html(accept) is html_wanted


def test_api_clients_keep_the_json_welcome(server):
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        resp = requests.get(f"{server.url}/", headers=headers, timeout=10)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/json; charset=UTF-8"
        assert resp.headers["Vary"] == "Accept"
        body = resp.json()
        assert (body["service"], body["version"]) == ("faceq", "0.1.0")
        assert "/upload" in body["endpoints"]


def test_a_browser_gets_the_page_with_a_strict_policy(server):
    resp = requests.get(f"{server.url}/", headers={"Accept": BROWSER_ACCEPT}, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert resp.headers["Content-Security-Policy"] == CSP == CONTENT_SECURITY_POLICY
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["Vary"] == "Accept"
    page = resp.text
    assert page.startswith("<!doctype html>")
    scripts = re.findall(r"<script\b[^>]*>", page)
    # one script, a module from this origin: no inline script
    main = f'<script type="module" src="/static/main.js?v={_version(page, "main.js")}">'
    assert scripts == [main]
    assert re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S) == [""]
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", page)  # no inline style or handler
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page)  # nothing from elsewhere
    assert TOKEN not in page


def _version(page: str, name: str) -> str:
    match = re.search(rf"/static/{re.escape(name)}\?v=([0-9a-f]+)", page)
    assert match, name
    return match.group(1)


def test_the_page_offers_every_gate_with_the_service_defaults(server):
    page = requests.get(f"{server.url}/", headers={"Accept": "text/html"}, timeout=10).text
    raw = re.search(r'<main id="app" data-config="([^"]*)">', page).group(1)
    config = json.loads(html.unescape(raw))
    defaults = dataclasses.asdict(Policy())
    assert [g["name"] for g in config["gates"]] == list(OVERRIDE_BOUNDS)
    for gate in config["gates"]:
        lo, hi = OVERRIDE_BOUNDS[gate["name"]]
        assert (gate["min"], gate["max"], gate["default"]) == (lo, hi, defaults[gate["name"]])
        assert gate["label"]
    assert config["sources"] == ["eventinfo", "hikvision", "sophon_http", "sophon_ws"]
    assert config["verdicts"] == ["accepted", "rejected", "no_face"]
    assert config["version"] == "0.1.0"


def test_static_files_are_served_with_cache_headers(server):
    url = f"{server.url}/static/main.js"
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/javascript; charset=UTF-8"
    assert resp.headers["Cache-Control"] == "no-cache"  # revalidated: modules import each other
    assert resp.headers["Content-Security-Policy"] == CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.content == (STATIC_DIR / "main.js").read_bytes()
    again = requests.get(url, headers={"If-None-Match": resp.headers["Etag"]}, timeout=10)
    assert (again.status_code, again.content) == (304, b"")
    page = requests.get(f"{server.url}/", headers={"Accept": "text/html"}, timeout=10).text
    versioned = requests.get(
        f"{server.url}/static/app.css?v={_version(page, 'app.css')}", timeout=10
    )
    assert versioned.status_code == 200
    assert versioned.headers["Content-Type"] == "text/css; charset=UTF-8"
    assert versioned.headers["Cache-Control"] == "max-age=315360000"
    for name in ("api.js", "dom.js", "events.js", "report.js", "upload.js", "zip.js"):
        module = requests.get(f"{server.url}/static/{name}", timeout=10)
        assert module.status_code == 200, name
        assert module.headers["Content-Type"] == "text/javascript; charset=UTF-8"


@pytest.mark.parametrize(
    "path", ["/static/no-such.js", "/static/../handlers/web.py", "/static/%2e%2e/pyproject.toml"]
)
def test_static_errors_are_json(server, path):
    resp = requests.get(f"{server.url}{path}", timeout=10)
    assert resp.status_code in (403, 404)
    assert resp.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert resp.json()["error"]["code"] in ("not_found", "forbidden")
    if path == "/static/no-such.js":
        assert resp.json() == {"error": {"code": "not_found", "message": "no such file"}}


def test_static_code_never_parses_outside_text_as_html():
    """Device and upload text goes in through textContent; nothing turns strings into markup,
    into code, or sends the token anywhere but the Authorization header."""
    sources = {p.name: p.read_text(encoding="utf-8") for p in STATIC_DIR.glob("*.js")}
    assert set(sources) == {
        "api.js",
        "dom.js",
        "events.js",
        "main.js",
        "report.js",
        "upload.js",
        "zip.js",
    }
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"localStorage|DOMParser|createContextualFragment|srcdoc|console\.log"
    )
    for name, text in sources.items():
        assert not forbidden.search(text), (name, forbidden.search(text).group(0))
        # no remote origin: the only absolute URL is the SVG namespace name
        assert set(re.findall(r"https?://[^\s\"'`]+", text)) <= {"http://www.w3.org/2000/svg"}
    assert "sessionStorage" in sources["api.js"]
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css


def test_every_file_the_page_needs_is_in_the_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'app = ["static/*", "templates/*"]' in pyproject
    assert not [p for p in STATIC_DIR.rglob("*") if p.is_dir()]  # the glob is flat
    assert (ROOT / "app" / "templates" / "index.html").is_file()


def _push_event(server: LiveServer, image: bytes) -> str:
    info = "usn=WEBTEST01&productid=FD-CAM&isotime=2026-01-02T03:04:05Z"
    resp = requests.post(
        f"{server.url}/push/{TOKEN}/eventinfo",
        files=[("eventinfo", (None, info)), ("image_1", ("face.jpg", image, "image/jpeg"))],
        timeout=30,
    )
    assert (resp.status_code, resp.text) == (200, "OK")
    events = requests.get(f"{server.url}/events", headers=AUTH, timeout=10).json()["events"]
    return next(e["id"] for e in events if e["device_id"] == "WEBTEST01")


def test_event_images_are_served_with_the_token(server, astronaut_jpeg: bytes):
    event_id = _push_event(server, astronaut_jpeg)
    url = f"{server.url}/events/{event_id}/images/0"
    resp = requests.get(url, headers=AUTH, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["Cache-Control"] == "private, max-age=86400"
    assert resp.content == astronaut_jpeg
    missing = requests.get(url, timeout=10)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_token")
    wrong = requests.get(url, headers={"Authorization": "wrong-token-000000"}, timeout=10)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "invalid_token")
    not_found = {"error": {"code": "not_found", "message": "no such event or image"}}
    for path in (
        f"{event_id}/images/1",
        f"{event_id}/images/99999",
        f"{event_id}/images/x",
        f"{event_id}/images/\u00b2",
        f"{'0' * 32}/images/0",
    ):
        resp = requests.get(f"{server.url}/events/{path}", headers=AUTH, timeout=10)
        assert (resp.status_code, resp.json()) == (404, not_found), path
