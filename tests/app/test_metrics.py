"""The metrics registry: names, label values created up front, recording, isolation."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import SOURCES, STAGES, Metrics
from models.pipeline import REASONS


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_label_value_exists_at_zero():
    got = samples(Metrics(process_metrics=False))
    for source in SOURCES:
        assert got[("faceq_images_total", (("source", source),))] == 0
    for verdict in ("accepted", "rejected"):
        assert got[("faceq_faces_total", (("verdict", verdict),))] == 0
    for reason in REASONS:
        assert got[("faceq_face_rejections_total", (("reason", reason),))] == 0
    for stage in STAGES:
        assert got[("faceq_stage_duration_seconds_count", (("stage", stage),))] == 0
    for model in ("detector", "pose"):
        assert got[("faceq_model_ready", (("model", model),))] == 0
    assert got[("faceq_executor_queue_depth", ())] == 0
    assert got[("faceq_inbox_backlog", ())] == 0


def test_record_image_counts_faces_reasons_and_stages():
    m = Metrics(process_metrics=False)
    timing = {"decode": 2.0, "detect": 40.0, "align": 0.5, "blur": 0.1, "pose": 9.0, "encode": 3}
    m.record_image("upload", timing, [(), ("blurry", "pose_yaw"), ("blurry",)])
    m.record_image("hikvision", {"detect": 1500.0, "unknown_stage": 1.0}, [])
    got = samples(m)
    assert got[("faceq_images_total", (("source", "upload"),))] == 1
    assert got[("faceq_images_total", (("source", "hikvision"),))] == 1
    assert got[("faceq_faces_total", (("verdict", "accepted"),))] == 1
    assert got[("faceq_faces_total", (("verdict", "rejected"),))] == 2
    assert got[("faceq_face_rejections_total", (("reason", "blurry"),))] == 2
    assert got[("faceq_face_rejections_total", (("reason", "pose_yaw"),))] == 1
    assert got[("faceq_face_rejections_total", (("reason", "low_confidence"),))] == 0
    assert got[("faceq_stage_duration_seconds_count", (("stage", "detect"),))] == 2
    assert got[("faceq_stage_duration_seconds_sum", (("stage", "detect"),))] == pytest.approx(1.54)
    assert got[("faceq_stage_duration_seconds_count", (("stage", "encode"),))] == 1
    # 40 ms lands in the 50 ms bucket, 1.5 s in the 2.5 s one
    assert got[("faceq_stage_duration_seconds_bucket", (("le", "0.05"), ("stage", "detect")))] == 1
    assert got[("faceq_stage_duration_seconds_bucket", (("le", "2.5"), ("stage", "detect")))] == 2
    assert not any("unknown_stage" in str(key) for key in got)
    with pytest.raises(ValueError, match="unknown image source"):
        m.record_image("ftp", {}, [])


def test_callbacks_are_read_at_scrape_time_and_registries_are_separate():
    a, b = Metrics(process_metrics=False), Metrics(process_metrics=False)
    backlog = [3]
    a.track_inbox_backlog(lambda: backlog[0])
    a.track_queue_depth(lambda: 2)
    a.track_model_ready("detector", lambda: True)
    a.observe_request("POST", "UploadHandler", 200, 0.2)
    got = samples(a)
    assert got[("faceq_inbox_backlog", ())] == 3
    assert got[("faceq_executor_queue_depth", ())] == 2
    assert got[("faceq_model_ready", (("model", "detector"),))] == 1
    assert got[("faceq_model_ready", (("model", "pose"),))] == 0
    key = (
        "faceq_http_request_duration_seconds_count",
        (("handler", "UploadHandler"), ("method", "POST"), ("status", "200")),
    )
    assert got[key] == 1
    backlog[0] = 7
    assert samples(a)[("faceq_inbox_backlog", ())] == 7
    other = samples(b)
    assert other[("faceq_inbox_backlog", ())] == 0
    assert key not in other


def test_process_metrics_are_included_by_default():
    text = Metrics().exposition().decode()
    assert "process_resident_memory_bytes" in text
