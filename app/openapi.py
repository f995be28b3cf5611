"""The OpenAPI 3.1 description of the HTTP API, built from the code's own constants.

Bounds, reasons and option values come from ``models.pipeline`` and ``models.report``, so the
document cannot drift from what the handlers accept. Served at ``GET /openapi.json``; the
contract test runs schemathesis against a live server with it.
"""

from __future__ import annotations

from typing import Any

from app.push.event import SOURCES
from app.push.inbox import VERDICTS
from models.pipeline import OVERRIDE_BOUNDS, UNIFIED_SCOPES
from models.report import FLAG_VALUES, IMAGE_OPTIONS
from models.wire import FaceEntry, ImageReport, json_schema

# Which Settings field each query override defaults from (documented in the parameter).
_OVERRIDE_DOCS = {
    "face_threshold": "Minimum MTCNN confidence (default: setting face_threshold).",
    "blur_threshold": "Minimum Laplacian variance of the aligned crop (setting blur_threshold).",
    "max_yaw": "Largest accepted |yaw| in degrees (setting yaw_threshold).",
    "max_pitch": "Largest accepted |pitch| in degrees (setting pitch_threshold).",
    "max_roll": "Largest accepted |roll| in degrees (setting roll_threshold).",
    "min_face_px": "Smallest accepted box side in pixels, 0 = off (setting min_face_px).",
    "pose_min_confidence": "Pose runs on detections at least this confident and not "
    "`low_resolution` (setting pose_min_confidence).",
    "min_sharpness": "Minimum fixed-scale sharpness, else `blurry` (setting min_sharpness).",
    "min_inter_eye_px": "Minimum pixels between the eyes, else `low_resolution` "
    "(setting min_inter_eye_px).",
    "max_under_exposure": "Largest share of dark face pixels, else `underexposed` "
    "(setting max_under_exposure).",
    "max_over_exposure": "Largest share of bright face pixels, else `overexposed` "
    "(setting max_over_exposure).",
    "min_face_in_frame": "Smallest share of the inner face inside the image, else `cropped` "
    "(setting min_face_in_frame).",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_CAMERA_OFF = _json(
    {"$ref": "#/components/schemas/Error"},
    "Camera intake is not enabled, or the event store cannot be reached now "
    "(`database_unavailable`, with `Retry-After`).",
)
_AUTH_ERRORS = {
    "401": _error("No token in the Authorization header (code `missing_token`)."),
    "403": _error("The token is not valid (code `invalid_token`)."),
}


def _number(lo: float, hi: float, integer: bool = False) -> dict[str, Any]:
    return {"type": "integer" if integer else "number", "minimum": lo, "maximum": hi}


def _report_schemas() -> dict[str, Any]:
    """Face, RejectedFace and ImageReport, derived from ``models.wire``."""
    face = json_schema(FaceEntry)
    accepted = {**face, "properties": dict(face["properties"])}
    del accepted["properties"]["reasons"]
    rejected = {**face, "required": [*face["required"], "reasons"]}
    return {"Face": accepted, "RejectedFace": rejected, "ImageReport": json_schema(ImageReport)}


def _schemas() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    event_summary = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "source": {"type": "string", "enum": list(SOURCES)},
            "received_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["pending", "done", "failed"]},
            "images": count,
            "faces_accepted": {"type": ["integer", "null"], "minimum": 0},
            "faces_rejected": {"type": ["integer", "null"], "minimum": 0},
            "device_id": {"type": ["string", "null"]},
            "event_time": {"type": ["string", "null"]},
        },
        "required": ["id", "source", "received_at", "status", "images"],
    }
    return {
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "pattern": "^[a-z_]+$"},
                        "message": {"type": "string", "minLength": 1},
                    },
                    "required": ["code", "message"],
                    "additionalProperties": False,
                }
            },
            "required": ["error"],
            "additionalProperties": False,
        },
        **_report_schemas(),
        "UploadsEntry": {
            "oneOf": [
                {
                    "allOf": [_ref("ImageReport")],
                    "properties": {"filename": {"type": "string"}},
                    "required": ["filename"],
                },
                {
                    "type": "object",
                    "description": "A file that could not be assessed; the others still are.",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                            },
                            "required": ["code", "message"],
                        },
                        "status": {"type": "integer", "minimum": 400, "maximum": 499},
                        "filename": {"type": "string"},
                    },
                    "required": ["error", "filename"],
                },
            ]
        },
        "Welcome": {
            "type": "object",
            "properties": {
                "service": {"const": "faceq"},
                "version": {"type": "string"},
                "message": {"type": "string"},
                "endpoints": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["service", "version", "message", "endpoints"],
        },
        "Readiness": {
            "type": "object",
            "properties": {
                "status": {
                    "type": "string",
                    "enum": ["ready", "loading", "failed", "unavailable"],
                    "description": "`unavailable`: models ready, but see `reasons` (the database).",
                },
                "reasons": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Why the service is not ready besides the models, e.g. "
                    "`database unavailable: ...` or a schema that is behind.",
                },
                "database": {
                    "type": "object",
                    "properties": {
                        "backend": {"type": "string", "enum": ["sqlite", "postgresql"]},
                        "ready": {"type": "boolean"},
                        "schema_revision": {"type": ["string", "null"]},
                        "error": {"type": ["string", "null"]},
                    },
                },
                "models": {
                    "type": "object",
                    "properties": {
                        "ready": {"type": "boolean"},
                        "error": {"type": ["string", "null"]},
                        "detector": {"type": "string"},
                        "pose_estimator": {"type": "string"},
                        "recognizer": {"type": ["string", "null"]},
                        "precision": {
                            "description": "What WHENet and the unified score's SFace run "
                            "in on this CPU (bfloat16 where asked for and supported).",
                            "type": "object",
                            "properties": {
                                "pose": {"type": "string", "enum": ["bf16", "f32"]},
                                "recognizer": {
                                    "type": ["string", "null"],
                                    "enum": ["bf16", "f32", None],
                                },
                            },
                        },
                        "ready_after_s": {"type": ["number", "null"]},
                    },
                    "required": ["ready"],
                },
            },
            "required": ["status", "models"],
        },
        "PushAck": {
            "description": "What a device gets once its event is stored (or counted, for a "
            "heartbeat or a duplicate). Devices ignore the body; some retry forever on "
            "anything but 200.",
            "type": "object",
        },
        "EventSummary": event_summary,
        "EventPage": {
            "type": "object",
            "properties": {
                "events": {"type": "array", "items": _ref("EventSummary")},
                "next": {
                    "type": ["string", "null"],
                    "description": "Pass as `since` for the next page; null on the last.",
                },
            },
            "required": ["events", "next"],
        },
        "Event": {
            "allOf": [_ref("EventSummary")],
            "properties": {
                "kind": {"type": "string", "enum": ["face", "heartbeat", "ignored"]},
                "dedupe_key": {"type": ["string", "null"]},
                "attempts": count,
                "finished_at": {"type": ["string", "null"]},
                "error": {"type": ["string", "null"]},
                "metadata": {"type": "object"},
                "image_files": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": count,
                            "role": {"type": "string"},
                            "name": {"type": ["string", "null"]},
                            "content_type": {"type": "string"},
                            "size": count,
                        },
                    },
                },
                "reports": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "One image report (or error entry) per image, in order.",
                },
            },
        },
    }


def _upload_parameters() -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": "images",
            "in": "query",
            "description": "Which base64 crops to include.",
            "schema": {"type": "string", "enum": list(IMAGE_OPTIONS), "default": "all"},
        },
        {
            "name": "mark",
            "in": "query",
            "description": "Include the marked full image.",
            "schema": {"type": "string", "enum": list(FLAG_VALUES), "default": "1"},
        },
        {
            "name": "rejected",
            "in": "query",
            "description": "Include the rejected faces with their reasons.",
            "schema": {"type": "string", "enum": list(FLAG_VALUES), "default": "1"},
        },
        {
            "name": "unified_scope",
            "in": "query",
            "description": "Which faces get the unified score: `accepted` (those every gate "
            "lets through) or `all` (every detection from pose_min_confidence on); default: "
            "setting unified_scope.",
            "schema": {"type": "string", "enum": list(UNIFIED_SCOPES)},
        },
    ]
    for name, (lo, hi) in OVERRIDE_BOUNDS.items():
        params.append(
            {
                "name": name,
                "in": "query",
                "description": _OVERRIDE_DOCS.get(name, "Gate override."),
                "schema": _number(lo, hi, integer=name == "min_face_px"),
            }
        )
    return params


def _upload_responses(ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "200": ok,
        "400": _error(
            "Bad query parameter (`bad_parameter`), no `image` field (`missing_field`) or an "
            "empty file (`empty_file`)."
        ),
        **_AUTH_ERRORS,
        "413": _error("The body or the file is too large (`body_too_large`, `image_too_large`)."),
        "415": _error("Not multipart/form-data, or the file is not an image (`not_an_image`)."),
        "422": _error("The file looks like an image but cannot be decoded."),
        "503": _error("Models still loading (`not_ready`) or queue full (`overloaded`)."),
    }


def _multipart(many: bool) -> dict[str, Any]:
    image: dict[str, Any] = {"type": "string", "format": "binary", "contentMediaType": "image/*"}
    field = {"type": "array", "items": image, "minItems": 1} if many else image
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": field},
                    "required": ["image"],
                }
            }
        },
    }


def _push_operation(summary: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "tags": ["camera"],
        "summary": summary,
        "description": description,
        "security": [],
        "parameters": [
            {
                "name": "token",
                "in": "path",
                "required": True,
                "description": "An API token: devices cannot send headers and drop query strings.",
                "schema": {"type": "string", "minLength": 1},
            }
        ],
        "requestBody": {"required": True, "content": body},
        "responses": {
            "200": {
                "description": "Stored (or a heartbeat / duplicate counted).",
                "content": {
                    "application/json": {"schema": _ref("PushAck")},
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
            "400": _error("Content-Length is not a number."),
            "403": _error("The path token is not valid, or the client is not in push_allow."),
            "413": _error("The body exceeds push_max_body_mb."),
            "503": _error("The inbox cannot store the event now, or camera intake is off."),
        },
    }


def _paths(metrics_public: bool) -> dict[str, Any]:
    token_security = [{"token": []}]
    image_part = {"type": "string", "format": "binary"}
    return {
        "/": {
            "get": {
                "tags": ["service"],
                "summary": "Service name, version and where to start",
                "description": "A browser (`Accept: text/html` preferred) gets the web page; "
                "every other client the JSON welcome.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Welcome (JSON), or the web page (HTML).",
                        "content": {
                            "application/json": {"schema": _ref("Welcome")},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    }
                },
            }
        },
        "/livez": {
            "get": {
                "tags": ["probes"],
                "summary": "Liveness: 200 while the process runs",
                "security": [],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"status": {"const": "ok"}},
                            "required": ["status"],
                        },
                        "Alive.",
                    )
                },
            }
        },
        "/readyz": {
            "get": {
                "tags": ["probes"],
                "summary": "Readiness: 200 once every model is loaded and warmed",
                "security": [],
                "responses": {
                    "200": _json(_ref("Readiness"), "Ready; model names."),
                    "503": _json(_ref("Readiness"), "Loading (or failed); retry later."),
                },
            }
        },
        "/metrics": {
            "get": {
                "tags": ["probes"],
                "summary": "Prometheus metrics (text exposition format)",
                "description": "Public unless the setting metrics_public is false.",
                "security": [] if metrics_public else token_security,
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **({} if metrics_public else _AUTH_ERRORS),
                },
            }
        },
        "/upload": {
            "post": {
                "tags": ["images"],
                "summary": "Assess the image in multipart field `image`",
                "security": token_security,
                "parameters": _upload_parameters(),
                "requestBody": _multipart(many=False),
                "responses": _upload_responses(_json(_ref("ImageReport"), "The image report.")),
            }
        },
        "/uploads": {
            "post": {
                "tags": ["images"],
                "summary": "Assess every `image` field; one entry per file, in order",
                "security": token_security,
                "parameters": _upload_parameters(),
                "requestBody": _multipart(many=True),
                "responses": _upload_responses(
                    _json(
                        {"type": "array", "items": _ref("UploadsEntry")},
                        "One report or error entry per file.",
                    )
                ),
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["service"],
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"openapi": {"type": "string"}},
                            "required": ["openapi", "info", "paths"],
                        },
                        "OpenAPI 3.1 document.",
                    )
                },
            }
        },
        "/push/{token}": _push_path(
            _push_operation(
                "Receive a camera event in any supported format",
                "The format (eventinfo, Hikvision ISAPI, Sophon HistoryEvent) is sniffed from "
                "the body. Always 200 once the event is stored (PROTOCOLS.md).",
                {
                    "multipart/form-data": {"schema": {"type": "object"}},
                    "application/json": {"schema": {}},
                    "application/xml": {"schema": {"type": "string"}},
                },
            )
        ),
        "/push/{token}/eventinfo": _push_path(
            _push_operation(
                "Receive an `eventinfo` camera's face-detection POST",
                "Part `eventinfo` is a urlencoded query string (usn, productid, isotime, ...); "
                "`image_N` parts are face thumbnails, `snapshot` the full frame.",
                {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "eventinfo": {"type": "string"},
                                "image_1": image_part,
                                "snapshot": image_part,
                            },
                            "required": ["eventinfo"],
                        }
                    }
                },
            )
        ),
        "/push/{token}/hikvision": _push_path(
            _push_operation(
                "Receive a Hikvision ISAPI listening-mode event",
                "Multipart `alarmResult` / `faceCapture` / `AccessControllerEvent` JSON parts "
                "with `faceImage`, `backgroundImage` or `Picture` JPEG parts, or a bare XML "
                "EventNotificationAlert. Heartbeats are answered 200 and only counted.",
                {
                    "multipart/form-data": {"schema": {"type": "object"}},
                    "application/json": {"schema": {"type": "object"}},
                    "application/xml": {"schema": {"type": "string"}},
                },
            )
        ),
        "/push/{token}/sophon": _push_path(
            _push_operation(
                "Receive a Sophon SE box HistoryEvent POST",
                "One event object or a JSON array of them (base64 images, possibly empty). "
                'Answered 200 with `{"message": "SUCCESS", "status": 0}`.',
                {
                    "application/json": {
                        "schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}
                    },
                    "multipart/form-data": {"schema": {"type": "object"}},
                },
            )
        ),
        "/events": {
            "get": {
                "tags": ["events"],
                "summary": "Stored camera events, newest first",
                "security": token_security,
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                    },
                    {
                        "name": "since",
                        "in": "query",
                        "description": "`next` of the previous page.",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    },
                    {
                        "name": "source",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(SOURCES)},
                    },
                    {
                        "name": "verdict",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(VERDICTS)},
                    },
                ],
                "responses": {
                    "200": _json(_ref("EventPage"), "A page of events."),
                    "400": _error("Malformed cursor or unknown filter value."),
                    **_AUTH_ERRORS,
                    "503": _CAMERA_OFF,
                },
            }
        },
        "/events/{id}": {
            "get": {
                "tags": ["events"],
                "summary": "One stored event with its metadata and image reports",
                "security": token_security,
                "parameters": [_path_param("id", "Event id (hex).")],
                "responses": {
                    "200": _json(_ref("Event"), "The event."),
                    **_AUTH_ERRORS,
                    "404": _error("No such event."),
                    "503": _CAMERA_OFF,
                },
            }
        },
        "/events/{id}/faces/{face_id}.png": {
            "get": {
                "tags": ["events"],
                "summary": "The aligned 112x112 crop of one face of a stored event",
                "security": token_security,
                "parameters": [
                    _path_param("id", "Event id (hex)."),
                    _path_param("face_id", "Face id from the event's reports."),
                ],
                "responses": {
                    "200": {
                        "description": "PNG, 112x112.",
                        "content": {"image/png": {"schema": {"type": "string"}}},
                    },
                    **_AUTH_ERRORS,
                    "404": _error("No such event or face."),
                    "503": _CAMERA_OFF,
                },
            }
        },
        "/events/{id}/images/{index}": {
            "get": {
                "tags": ["events"],
                "summary": "One image of a stored event, as the device pushed it",
                "security": token_security,
                "parameters": [
                    _path_param("id", "Event id (hex)."),
                    {
                        "name": "index",
                        "in": "path",
                        "required": True,
                        "description": "`image_files[].index` of the event.",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,4}$"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The image bytes (JPEG, PNG, GIF or WebP; else "
                        "application/octet-stream).",
                        "content": {
                            kind: {"schema": {"type": "string"}}
                            for kind in (
                                "image/jpeg",
                                "image/png",
                                "image/gif",
                                "image/webp",
                                "application/octet-stream",
                            )
                        },
                    },
                    **_AUTH_ERRORS,
                    "404": _error("No such event or image."),
                    "503": _CAMERA_OFF,
                },
            }
        },
    }


def _push_path(post: dict[str, Any]) -> dict[str, Any]:
    """A receiver answers POST (stores) and GET (a device testing the URL; stores nothing)."""
    get = {k: v for k, v in post.items() if k not in ("requestBody", "description")}
    get["summary"] = "Answer a device that tests the URL (stores nothing)"
    get["responses"] = {k: v for k, v in post["responses"].items() if k in ("200", "403", "503")}
    return {"post": post, "get": get}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": "^[0-9a-f]{1,64}$"},
    }


CAMERA_PATHS = (
    "/push/{token}",
    "/push/{token}/eventinfo",
    "/push/{token}/hikvision",
    "/push/{token}/sophon",
    "/events",
    "/events/{id}",
    "/events/{id}/faces/{face_id}.png",
    "/events/{id}/images/{index}",
)


def openapi_document(version: str = "0.1.0", metrics_public: bool = True) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the service (built afresh on each call)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "faceq face-quality service",
            "version": version,
            "description": "Finds every face in an image, measures confidence, blur, head "
            "pose and ISO/IEC 29794-5-style quality components, scores how well a recogniser "
            "(SFace) will match it, aligns it to the ArcFace 112x112 template and says which "
            "faces are good enough for enrolment and why the others are not. Errors are always "
            '`{"error": {"code": ..., "message": ...}}`.',
        },
        "servers": [{"url": "/"}],
        "security": [{"token": []}],
        "tags": [
            {"name": "images", "description": "Image uploads (the original service's API)."},
            {"name": "probes", "description": "Kubernetes probes and metrics."},
            {"name": "service", "description": "Welcome text and this document."},
            {"name": "camera", "description": "Receivers for camera and AI-box pushes."},
            {"name": "events", "description": "Stored camera events and their results."},
        ],
        "paths": _paths(metrics_public),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`<token>` or `Bearer <token>`; missing: 401, wrong: 403.",
                }
            },
        },
    }
