"""Settings: YAML keys of the original, FACEQ_* overrides, one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import FIELDS, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_embedded_config_file_equals_the_defaults(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert load_settings(env={}) == Settings()


def test_yaml_keys_of_the_original_are_read(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "server: {port: 8080}\n"
        "auth: {tokens: [abcdefgh1, abcdefgh2]}\n"
        "mtcnn: {min_face_size: 40, scale_factor: 0.6, steps_threshold: [0.5, 0.6, 0.8],"
        " face_threshold: 0.9, blur_threshold: 55}\n"
        "pose: {yaw_threshold: 30, pitch_threshold: 15, roll_threshold: 10}\n"
    )
    s = load_settings(env={}, config_path=cfg)
    assert (s.port, s.tokens) == (8080, ("abcdefgh1", "abcdefgh2"))
    assert (s.min_face_size, s.scale_factor, s.steps_threshold) == (40, 0.6, (0.5, 0.6, 0.8))
    assert (s.face_threshold, s.blur_threshold) == (0.9, 55.0)
    assert (s.yaw_threshold, s.pitch_threshold, s.roll_threshold) == (30.0, 15.0, 10.0)


def test_environment_overrides_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("server: {port: 8080}\n")
    env = {
        "FACEQ_CONFIG": str(cfg),
        "FACEQ_PORT": "9000",
        "FACEQ_TOKENS": "first-token-1, second-token-2",
        "FACEQ_STEPS_THRESHOLD": "0.6,0.7,0.75",
        "FACEQ_METRICS_PUBLIC": "false",
    }
    s = load_settings(env=env)
    assert s.port == 9000
    assert s.tokens == ("first-token-1", "second-token-2")
    assert s.steps_threshold == (0.6, 0.7, 0.75)
    assert s.metrics_public is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FACEQ_PORT": "abc"}, "invalid FACEQ_PORT: expected an integer"),
        ({"FACEQ_PORT": "70000"}, "invalid FACEQ_PORT: must be between 1 and 65535"),
        ({"FACEQ_MIN_FACE_SIZE": "11"}, "invalid FACEQ_MIN_FACE_SIZE: must be between 12 and 400"),
        ({"FACEQ_TOKENS": "short"}, "invalid FACEQ_TOKENS: every token must be at least 8"),
        ({"FACEQ_POSE_ESTIMATOR": "magic"}, "invalid FACEQ_POSE_ESTIMATOR: must be one of"),
        ({"FACEQ_STEPS_THRESHOLD": "0.6,0.7"}, "expected three numbers"),
        ({"FACEQ_POSE_ESTIMATOR": "hopenet"}, "needs hopenet_snapshot"),
        (
            {"FACEQ_POSE_ESTIMATOR": "hopenet", "FACEQ_HOPENET_SNAPSHOT": "/nope/h.pkl"},
            "hopenet snapshot not found: /nope/h.pkl",
        ),
        ({"FACEQ_CONFIG": "/nope/config.yaml"}, "config file not found: /nope/config.yaml"),
    ],
)
def test_invalid_settings_stop_with_one_line(env, message):
    with pytest.raises(SettingsError) as err:
        load_settings(env=env, config_path=None)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_every_min_face_size_from_12_to_400_is_accepted():
    for size in range(12, 401):
        assert load_settings(env={"FACEQ_MIN_FACE_SIZE": str(size)}).min_face_size == size


def test_every_field_has_an_env_name_and_a_default():
    names = {f.name for f in FIELDS}
    assert len(names) == len(FIELDS)
    defaults = Settings()
    for spec in FIELDS:
        assert spec.env == "FACEQ_" + spec.name.upper()
        assert hasattr(defaults, spec.name)


def test_redacted_hides_tokens():
    s = Settings(tokens=("secret-token-1",))
    assert "secret-token-1" not in str(s.redacted())


def test_readme_and_config_document_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    config = (ROOT / "config/config.yaml").read_text(encoding="utf-8")
    for spec in FIELDS:
        assert f"`{spec.env}`" in readme, spec.env
        assert f"{spec.yaml_path[-1]}:" in config, spec.yaml_path


def test_quality_settings_parse_and_check():
    s = load_settings(
        {
            "FACEQ_MIN_INTER_EYE_PX": "30",
            "FACEQ_RECOGNIZER": "OFF",
            "FACEQ_RECOGNIZER_PRECISION": "F32",
            "FACEQ_QUALITY_SCORES": '{"sharpness": [0.08, 0.01], "unified": [0.96, 0.01]}',
        },
        config_path=ROOT / "config/config.yaml",
    )
    assert s.min_inter_eye_px == 30.0 and s.recognizer == "off"
    assert s.recognizer_precision == "f32"
    assert load_settings({}, config_path=ROOT / "config/config.yaml").recognizer_precision == "bf16"
    assert s.quality_scores == {"sharpness": (0.08, 0.01), "unified": (0.96, 0.01)}
    for env, message in (
        ({"FACEQ_QUALITY_SCORES": '{"blurriness": [1, 1]}'}, "unknown component 'blurriness'"),
        ({"FACEQ_QUALITY_SCORES": '{"sharpness": [1, 0]}'}, "the width must not be 0"),
        ({"FACEQ_MAX_OVER_EXPOSURE": "1.5"}, "must be between 0 and 1"),
        ({"FACEQ_RECOGNIZER": "arcface"}, "must be one of sface, off"),
        ({"FACEQ_RECOGNIZER_PRECISION": "int8"}, "must be one of bf16, f32"),
    ):
        with pytest.raises(SettingsError, match=message):
            load_settings(env, config_path=ROOT / "config/config.yaml")
