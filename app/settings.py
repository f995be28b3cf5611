"""One frozen settings object, built once in ``main()`` from YAML plus ``FACEQ_*`` variables.

Precedence (lowest first): the defaults embedded here, ``config/config.yaml`` (or the file named
by ``FACEQ_CONFIG``), then ``FACEQ_<NAME>`` environment variables. Nothing is read at import
time. Every setting is listed in ``FIELDS`` with its YAML place, its variable and its check, so
the README table, the Kubernetes ConfigMap and the tests all follow one source.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path("config/config.yaml")


class SettingsError(ValueError):
    """A setting is missing, malformed or out of range; the message is one line for the user."""


@dataclass(frozen=True)
class Settings:
    """Every knob of the service; see ``FIELDS`` for YAML keys and environment names."""

    host: str = "0.0.0.0"
    port: int = 30025
    tokens: tuple[str, ...] = ()
    token_file: str = "var/token"
    data_dir: str = "var"
    log_level: str = "INFO"
    metrics_public: bool = True
    max_body_mb: float = 32.0
    max_image_mb: float = 20.0
    max_pixels: int = 40_000_000
    executor_workers: int = 2
    queue_size: int = 8
    tf_threads: int = 0
    torch_threads: int = 0
    # detector (the original's ``mtcnn`` section)
    detector_backend: str = "openvino"
    min_face_size: int = 20
    scale_factor: float = 0.709
    steps_threshold: tuple[float, float, float] = (0.6, 0.7, 0.7)
    face_threshold: float = 0.995
    blur_threshold: float = 100.0
    min_face_px: int = 0
    # pose (the original's hopenet thresholds)
    pose_estimator: str = "whenet"
    hopenet_snapshot: str | None = None
    yaw_threshold: float = 45.0
    pitch_threshold: float = 20.0
    roll_threshold: float = 25.0
    pose_min_confidence: float = 0.90
    recognizer: str = "sface"
    recognizer_precision: str = "bf16"
    unified_scope: str = "accepted"
    # quality components (models.quality): gates, and score curves (name -> [centre, width])
    min_sharpness: float = 0.06
    min_inter_eye_px: float = 24.0
    max_under_exposure: float = 0.5
    max_over_exposure: float = 0.6
    min_face_in_frame: float = 0.995
    quality_scores: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    # camera pushes
    inbox_workers: int = 1
    push_max_body_mb: float = 16.0
    push_allow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sophon_ws: tuple[Mapping[str, Any], ...] = ()
    forward_url: str | None = None
    forward_accepted_only: bool = True
    retention_days: float = 30.0
    retention_max_events: int = 100_000
    lease_seconds: float = 60.0
    # storage: unset = SQLite under data_dir; a SQLAlchemy URL (PostgreSQL) shared by replicas
    database_url: str | None = None

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_image_bytes(self) -> int:
        return int(self.max_image_mb * 1024 * 1024)

    @property
    def push_max_body_bytes(self) -> int:
        return int(self.push_max_body_mb * 1024 * 1024)

    def redacted(self) -> dict[str, Any]:
        """Return the settings as a dict safe to log (tokens replaced by their count)."""
        out = dataclasses.asdict(self)
        out["tokens"] = f"<{len(self.tokens)} configured>"
        out["database_url"] = redact_url(self.database_url)
        return out


def redact_url(url: str | None) -> str | None:
    """Return a database URL with its password replaced by ``***`` (safe to log or show)."""
    if not url:
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


# --- parsing helpers -------------------------------------------------------------------------


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError("expected an integer") from None
    if not number.is_integer():
        raise ValueError("expected an integer")
    return int(number)


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    try:
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number") from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _as_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("expected a string")
    return str(value)


def _as_opt_str(value: Any) -> str | None:
    if value is None:
        return None
    text = _as_str(value).strip()
    return text or None


def _as_tokens(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    tokens = tuple(str(t).strip() for t in items if str(t).strip())
    for token in tokens:
        if len(token) < 8:
            raise ValueError("every token must be at least 8 characters")
    return tokens


def _as_thresholds(value: Any) -> tuple[float, float, float]:
    if isinstance(value, str):
        value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    items = tuple(_as_float(v) for v in value)
    if len(items) != 3:
        raise ValueError("expected three numbers (PNet, RNet, ONet)")
    if not all(0.0 < v < 1.0 for v in items):
        raise ValueError("each threshold must lie strictly between 0 and 1")
    return items  # type: ignore[return-value]


def _as_json_or_yaml(value: Any) -> Any:
    return yaml.safe_load(value) if isinstance(value, str) else value


def _as_allow(value: Any) -> Mapping[str, tuple[str, ...]]:
    import ipaddress

    value = _as_json_or_yaml(value) or {}
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of token fingerprint to a list of CIDRs")
    out: dict[str, tuple[str, ...]] = {}
    for key, cidrs in value.items():
        # Keyed by sha256(token) hex prefix, never the token: this lives in a ConfigMap.
        if not re.fullmatch(r"[0-9a-fA-F]{8,64}", str(key)):
            raise ValueError("keys must be 8-64 hex digits of sha256(token), not the token")
        items = [cidrs] if isinstance(cidrs, str) else list(cidrs or [])
        for cidr in items:
            ipaddress.ip_network(str(cidr), strict=False)
        out[str(key)] = tuple(str(c) for c in items)
    return out


def _as_ws_targets(value: Any) -> tuple[Mapping[str, Any], ...]:
    value = _as_json_or_yaml(value) or []
    if not isinstance(value, list):
        raise ValueError("expected a list of {url, media_device_ids, ...}")
    out = []
    for item in value:
        if not isinstance(item, Mapping) or not str(item.get("url", "")).startswith(
            ("ws://", "wss://")
        ):
            raise ValueError("each entry needs a ws:// or wss:// url")
        out.append(dict(item))
    return tuple(out)


def _as_score_maps(value: Any) -> Mapping[str, tuple[float, float]]:
    from models.quality.measures import COMPONENT_NAMES
    from models.quality.unified import NAME as UNIFIED

    value = _as_json_or_yaml(value) or {}
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of component name to [centre, width]")
    known = (UNIFIED, *COMPONENT_NAMES)
    out: dict[str, tuple[float, float]] = {}
    for name, pair in value.items():
        if name not in known:
            raise ValueError(f"unknown component {name!r} (one of {', '.join(known)})")
        items = [pair] if isinstance(pair, (str, int, float)) else list(pair or [])
        if len(items) != 2:
            raise ValueError(f"{name}: expected [centre, width]")
        centre, width = (_as_float(v) for v in items)
        if width == 0:
            raise ValueError(f"{name}: the width must not be 0")
        out[str(name)] = (centre, width)
    return out


def _as_database_url(value: Any) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = _as_opt_str(value)
    if text is None:
        return None
    # Operators (CloudNativePG's ``uri``, Heroku-style DATABASE_URL) hand out libpq URLs: run
    # them on psycopg 3, the driver installed, rather than SQLAlchemy's default psycopg2.
    for scheme in ("postgresql://", "postgres://"):
        if text.startswith(scheme):
            text = "postgresql+psycopg://" + text[len(scheme) :]
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        # The message must not echo the value: it carries the password.
        raise ValueError("expected a SQLAlchemy URL such as postgresql+psycopg://...") from None
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise ValueError("only postgresql (or sqlite) URLs are supported")
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
        raise ValueError("use the psycopg driver: postgresql+psycopg://user:pass@host/db")
    return text


def _range(lo: float, hi: float) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")

    return check


def _choice(*options: str) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}")

    return check


@dataclass(frozen=True)
class FieldSpec:
    """Where a setting lives in YAML, its environment variable, and how it is parsed."""

    name: str
    yaml_path: tuple[str, ...]
    parse: Callable[[Any], Any]
    check: Callable[[Any], None] | None = None
    doc: str = ""

    @property
    def env(self) -> str:
        return "FACEQ_" + self.name.upper()


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("host", ("server", "host"), _as_str, None, "address to listen on"),
    FieldSpec("port", ("server", "port"), _as_int, _range(1, 65535), "HTTP port"),
    FieldSpec("tokens", ("auth", "tokens"), _as_tokens, None, "API tokens (comma-separated)"),
    FieldSpec("token_file", ("auth", "token_file"), _as_str, None, "token file, made if none"),
    FieldSpec("data_dir", ("server", "data_dir"), _as_str, None, "writable data folder"),
    FieldSpec(
        "log_level",
        ("server", "log_level"),
        lambda v: _as_str(v).upper(),
        _choice("DEBUG", "INFO", "WARNING", "ERROR"),
        "logging level",
    ),
    FieldSpec("metrics_public", ("server", "metrics_public"), _as_bool, None, "/metrics open"),
    FieldSpec(
        "max_body_mb", ("server", "max_body_mb"), _as_float, _range(0.01, 1024), "upload cap"
    ),
    FieldSpec(
        "max_image_mb", ("server", "max_image_mb"), _as_float, _range(0.01, 1024), "per file"
    ),
    FieldSpec("max_pixels", ("server", "max_pixels"), _as_int, _range(1, 500_000_000), "pixels"),
    FieldSpec(
        "executor_workers", ("server", "executor_workers"), _as_int, _range(1, 64), "threads"
    ),
    FieldSpec("queue_size", ("server", "queue_size"), _as_int, _range(0, 10_000), "waiting jobs"),
    FieldSpec(
        "tf_threads", ("server", "tf_threads"), _as_int, _range(0, 256), "detector, 0 = auto"
    ),
    FieldSpec("torch_threads", ("server", "torch_threads"), _as_int, _range(0, 256), "0 = auto"),
    FieldSpec(
        "detector_backend",
        ("mtcnn", "backend"),
        lambda v: _as_str(v).lower(),
        _choice("openvino", "tensorflow"),
        "networks' runtime",
    ),
    FieldSpec("min_face_size", ("mtcnn", "min_face_size"), _as_int, _range(12, 400), "pixels"),
    FieldSpec("scale_factor", ("mtcnn", "scale_factor"), _as_float, _range(0.1, 0.95), "pyramid"),
    FieldSpec("steps_threshold", ("mtcnn", "steps_threshold"), _as_thresholds, None, "P/R/O-Net"),
    FieldSpec("face_threshold", ("mtcnn", "face_threshold"), _as_float, _range(0, 1), "gate"),
    FieldSpec("blur_threshold", ("mtcnn", "blur_threshold"), _as_float, _range(0, 1e6), "gate"),
    FieldSpec("min_face_px", ("mtcnn", "min_face_px"), _as_int, _range(0, 10_000), "0 = off"),
    FieldSpec(
        "pose_estimator",
        ("pose", "estimator"),
        lambda v: _as_str(v).lower(),
        _choice("whenet", "hopenet"),
        "pose network",
    ),
    FieldSpec("hopenet_snapshot", ("pose", "hopenet_snapshot"), _as_opt_str, None, ".pkl path"),
    FieldSpec("yaw_threshold", ("pose", "yaw_threshold"), _as_float, _range(0, 180), "degrees"),
    FieldSpec("pitch_threshold", ("pose", "pitch_threshold"), _as_float, _range(0, 180), "degrees"),
    FieldSpec("roll_threshold", ("pose", "roll_threshold"), _as_float, _range(0, 180), "degrees"),
    FieldSpec(
        "pose_min_confidence", ("pose", "min_confidence"), _as_float, _range(0, 1), "pose from"
    ),
    FieldSpec(
        "recognizer",
        ("quality", "recognizer"),
        lambda v: _as_str(v).lower(),
        _choice("sface", "off"),
        "unified score",
    ),
    FieldSpec(
        "recognizer_precision",
        ("quality", "recognizer_precision"),
        lambda v: _as_str(v).lower(),
        _choice("bf16", "f32"),
        "unified score's SFace",
    ),
    FieldSpec("min_sharpness", ("quality", "min_sharpness"), _as_float, _range(0, 10), "gate"),
    FieldSpec(
        "min_inter_eye_px", ("quality", "min_inter_eye_px"), _as_float, _range(0, 1e4), "gate"
    ),
    FieldSpec(
        "max_under_exposure", ("quality", "max_under_exposure"), _as_float, _range(0, 1), "gate"
    ),
    FieldSpec(
        "max_over_exposure", ("quality", "max_over_exposure"), _as_float, _range(0, 1), "gate"
    ),
    FieldSpec(
        "min_face_in_frame", ("quality", "min_face_in_frame"), _as_float, _range(0, 1), "gate"
    ),
    FieldSpec(
        "unified_scope",
        ("quality", "unified_scope"),
        lambda v: _as_str(v).lower(),
        _choice("accepted", "all"),
        "faces scored",
    ),
    FieldSpec("quality_scores", ("quality", "scores"), _as_score_maps, None, "score curves"),
    FieldSpec("inbox_workers", ("push", "inbox_workers"), _as_int, _range(0, 64), "0 = store only"),
    FieldSpec("push_max_body_mb", ("push", "max_body_mb"), _as_float, _range(0.01, 1024), "cap"),
    FieldSpec("push_allow", ("push", "allow"), _as_allow, None, "sha256(token)[:12] -> CIDRs"),
    FieldSpec("sophon_ws", ("push", "sophon_ws"), _as_ws_targets, None, "SE boxes to subscribe"),
    FieldSpec("forward_url", ("push", "forward_url"), _as_opt_str, None, "POST finished events"),
    FieldSpec("forward_accepted_only", ("push", "forward_accepted_only"), _as_bool, None, ""),
    FieldSpec("retention_days", ("push", "retention_days"), _as_float, _range(0, 36500), "age"),
    FieldSpec(
        "retention_max_events", ("push", "retention_max_events"), _as_int, _range(1, 10**9), ""
    ),
    FieldSpec("lease_seconds", ("push", "lease_seconds"), _as_float, _range(5, 86400), "lease"),
    FieldSpec(
        "database_url", ("storage", "database_url"), _as_database_url, None, "shared database"
    ),
)

# Settings that carry a secret: they belong in a Kubernetes Secret, never in the ConfigMap.
SECRET_FIELDS = frozenset({"tokens", "database_url"})


def _yaml_get(doc: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = doc
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def load_settings(
    env: Mapping[str, str] | None = None, config_path: str | os.PathLike[str] | None = None
) -> Settings:
    """Build the settings from the YAML file and ``FACEQ_*`` variables.

    Args:
        env: the environment to read (``os.environ`` when None).
        config_path: YAML file; default ``FACEQ_CONFIG`` or ``config/config.yaml`` if it exists.

    Returns:
        The validated, frozen settings.

    Raises:
        SettingsError: with a one-line reason naming the setting.
    """
    env = os.environ if env is None else env
    explicit = config_path or env.get("FACEQ_CONFIG")
    path = Path(explicit) if explicit else DEFAULT_CONFIG
    doc: Mapping[str, Any] = {}
    if explicit and not path.is_file():
        raise SettingsError(f"config file not found: {path}")
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SettingsError(f"cannot read config file {path}: {first}") from None
        if loaded is not None and not isinstance(loaded, Mapping):
            raise SettingsError(f"config file {path} must hold a mapping")
        doc = loaded or {}

    values: dict[str, Any] = {}
    for spec in FIELDS:
        found, raw = _yaml_get(doc, spec.yaml_path)
        source = f"{'.'.join(spec.yaml_path)} in {path}"
        if spec.env in env:
            found, raw, source = True, env[spec.env], spec.env
        if not found:
            continue
        try:
            value = spec.parse(raw)
            if spec.check is not None and value is not None:
                spec.check(value)
        except (ValueError, TypeError, yaml.YAMLError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "invalid value"
            raise SettingsError(f"invalid {source}: {reason}") from None
        values[spec.name] = value

    settings = Settings(**values)
    if settings.pose_estimator == "hopenet" and not settings.hopenet_snapshot:
        raise SettingsError(
            "pose estimator 'hopenet' needs hopenet_snapshot (FACEQ_HOPENET_SNAPSHOT)"
        )
    if settings.hopenet_snapshot and settings.pose_estimator == "hopenet":
        snap = Path(settings.hopenet_snapshot)
        if not snap.is_file():
            raise SettingsError(f"hopenet snapshot not found: {snap}")
    return settings


def settings_summary_json(settings: Settings) -> str:
    """Return the redacted settings as compact JSON, for one start-up log line."""
    return json.dumps(settings.redacted(), default=str, sort_keys=True)
