"""The OpenAPI document: complete, consistent with the code, and obeyed by a live server
(schemathesis fuzzes every served operation and checks the answers against the document)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import requests
from jsonschema import Draft202012Validator

from app.application import make_app
from app.openapi import CAMERA_PATHS, openapi_document
from app.server import build_services
from models.pipeline import OVERRIDE_BOUNDS, REASONS
from models.quality.measures import COMPONENT_NAMES
from models.wire import STAGES, FaceEntry, ImageReport, json_schema
from tests.live import AUTH, TOKEN, LiveServer, make_settings, start_server

CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
)
MAX_EXAMPLES = int(os.environ.get("FACEQ_SCHEMATHESIS_EXAMPLES", "25"))


def test_document_covers_every_route_and_the_code_constants(tmp_path):
    doc = openapi_document("9.9.9")
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == "9.9.9"
    assert set(doc["paths"]) == {
        "/",
        "/livez",
        "/readyz",
        "/metrics",
        "/upload",
        "/uploads",
        "/openapi.json",
        *CAMERA_PATHS,
    }
    # every route the application serves is documented
    services, _ = build_services(make_settings(data_dir=str(tmp_path)))
    app = make_app(services)
    documented = [re.sub(r"\{[^}]+\}", "0123abcd", p) for p in doc["paths"]]
    for rule in app.wildcard_router.rules:
        assert any(rule.matcher.regex.match(p) for p in documented), rule.matcher.regex.pattern
    params = {p["name"]: p["schema"] for p in doc["paths"]["/upload"]["post"]["parameters"]}
    for name, (lo, hi) in OVERRIDE_BOUNDS.items():
        assert (params[name]["minimum"], params[name]["maximum"]) == (lo, hi)
    assert params["images"]["enum"] == ["all", "aligned", "none"]
    reasons = doc["components"]["schemas"]["RejectedFace"]["properties"]["reasons"]
    assert reasons["items"]["enum"] == list(REASONS)
    scheme = doc["components"]["securitySchemes"]["token"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    assert doc["paths"]["/metrics"]["get"]["security"] == []
    private = openapi_document(metrics_public=False)["paths"]["/metrics"]["get"]
    assert private["security"] == [{"token": []}] and "401" in private["responses"]


def test_report_schemas_are_derived_from_the_wire_description():
    schemas = openapi_document()["components"]["schemas"]
    face = json_schema(FaceEntry)
    assert schemas["RejectedFace"]["properties"] == face["properties"]
    assert set(schemas["RejectedFace"]["required"]) == {*face["required"], "reasons"}
    assert "reasons" not in schemas["Face"]["properties"]
    assert schemas["ImageReport"] == json_schema(ImageReport)
    quality = schemas["Face"]["properties"]["quality"]
    components = quality["properties"]["components"]
    assert components["required"] == list(COMPONENT_NAMES)
    assert all(components["properties"][n]["description"] for n in COMPONENT_NAMES)
    assert set(quality["properties"]["unified"]["required"]) == {"raw", "score"}
    timing = schemas["ImageReport"]["properties"]["timing_ms"]
    assert set(STAGES) <= set(timing["required"])
    assert {"recognizer_per_face", "quality_per_face"} <= set(timing["required"])


@pytest.mark.models
def test_a_real_report_validates_against_the_document(server, data_dir):
    doc = openapi_document()
    schema = {"$ref": "#/components/schemas/ImageReport", "components": doc["components"]}
    couple = (data_dir / "faces/deepface/couple.jpg").read_bytes()
    for query in ("", "?images=none&mark=0&rejected=0", "?min_face_in_frame=1&max_yaw=0"):
        resp = requests.post(
            f"{server.url}/upload{query}",
            files={"image": ("couple.jpg", couple, "image/jpeg")},
            headers=AUTH,
            timeout=120,
        )
        assert resp.status_code == 200
        report = resp.json()
        Draft202012Validator(schema).validate(report)
        assert report["face_total"] == 2
        for face in report["resp"] + report.get("rejected", []):
            assert list(face["quality"]["components"]) == list(COMPONENT_NAMES)


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory) -> LiveServer:
    data_dir = tmp_path_factory.mktemp("var")
    live = start_server(make_settings(data_dir=str(data_dir), max_body_mb=4), pipeline)
    yield live
    live.stop()


@pytest.mark.models
def test_served_document_is_the_module_one(server):
    resp = requests.get(f"{server.url}/openapi.json", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == openapi_document(server.services.version)


@pytest.mark.models
def test_schemathesis_finds_no_problem(server, tmp_path):
    doc = openapi_document()
    paths = list(doc["paths"])
    assert {"/", "/livez", "/readyz", "/metrics", "/upload", "/uploads"} <= set(paths)
    include = "^(?:" + "|".join(re.escape(p) for p in paths) + ")$"
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(MAX_EXAMPLES),
        "--header", f"Authorization: {TOKEN}",
        "--include-path-regex", include,
        "--workers", "1",
        "--seed", "20251121",
        "--generation-database", "none",
        "--request-timeout", "60",
        "--no-color",
    ]  # fmt: skip
    run = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    output = run.stdout + run.stderr
    summary = output[output.rfind("SUMMARY") - 40 :] if "SUMMARY" in output else output
    print(summary)
    assert run.returncode == 0, output[-6000:]
    tested = re.search(r"Tested: (\d+)", output)
    operations = sum(len(doc["paths"][p]) for p in paths)
    assert tested and int(tested.group(1)) == operations, summary


@pytest.mark.models
def test_what_schemathesis_found_first_stays_fixed(server):
    """OPTIONS on /upload was a 500 (an attribute shadowed RequestHandler.options), and so
    was a multipart body Tornado cannot parse."""
    auth = AUTH
    resp = requests.options(f"{server.url}/upload", headers=auth, timeout=10)
    assert resp.status_code == 405
    assert resp.json()["error"]["code"] == "method_not_allowed"
    for body in (
        b"--b\r\n3.27e+59--b--\r\n",
        b'--b\r\nContent-Disposition: form-data; name=""\r\n\r\nx\r\n--b--\r\n',
    ):
        resp = requests.post(
            f"{server.url}/uploads",
            data=body,
            headers={"Content-Type": "multipart/form-data; boundary=b", **auth},
            timeout=10,
        )
        assert resp.status_code == 400
        assert resp.json() == {
            "error": {
                "code": "bad_multipart",
                "message": "the multipart/form-data body is malformed",
            }
        }
