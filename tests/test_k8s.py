"""The Kubernetes manifests: valid against the Kubernetes schemas (offline, shipped by
kubernetes-validate) and consistent with the code: probe paths are real routes, the port is the
service's, and the ConfigMap/Secret carry exactly the settings of ``app.settings.FIELDS``."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from app.settings import FIELDS, SECRET_FIELDS, Settings, SettingsError, load_settings
from handlers import probes
from tests.conftest import ROOT

K8S = ROOT / "k8s"
# The oldest and the newest Kubernetes minor versions we claim to support.
VERSIONS = ("1.29.0", "1.37.0")


def documents() -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


@pytest.fixture(scope="module")
def docs() -> dict[tuple[str, str], dict]:
    return documents()


@pytest.fixture(scope="module")
def container(docs) -> dict:
    (c,) = docs[("Deployment", "faceq")]["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(docs, version):
    kinds = sorted(kind for kind, _ in docs)
    assert kinds == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret",
        "Service",
    ]  # fmt: skip
    for (kind, name), doc in docs.items():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind}/{name} is not valid for Kubernetes {version}: {exc.message}")


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def test_probes_use_real_routes_and_the_service_port(docs, container):
    paths = {pattern for pattern, _handler in probes.routes}
    port = Settings().port
    (http,) = [p for p in container["ports"] if p["name"] == "http"]
    assert http["containerPort"] == port
    assert container["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert {"/readyz", "/livez"} <= paths
    service = docs[("Service", "faceq")]["spec"]
    (sport,) = service["ports"]
    assert (sport["port"], sport["targetPort"]) == (port, "http")
    selector = docs[("Deployment", "faceq")]["spec"]["selector"]["matchLabels"]
    labels = docs[("Deployment", "faceq")]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items() and selector.items() <= labels.items()
    assert docs[("PodDisruptionBudget", "faceq")]["spec"]["selector"]["matchLabels"] == selector
    target = docs[("HorizontalPodAutoscaler", "faceq")]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "faceq")
    annotations = docs[("Deployment", "faceq")]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_pod_runs_as_non_root_on_a_read_only_root(docs, container):
    pod = docs[("Deployment", "faceq")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    resources = container["resources"]
    assert set(resources) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])
    # the data folder (and the token file under it) is a mounted, writable volume
    config = docs[("ConfigMap", "faceq-config")]["data"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert config["FACEQ_DATA_DIR"] in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(volumes[mounts[config["FACEQ_DATA_DIR"]]]) & {"emptyDir", "persistentVolumeClaim"}
    token_file = Path(config["FACEQ_TOKEN_FILE"])
    assert token_file.parent == Path(config["FACEQ_DATA_DIR"])
    env_from = [next(iter(e.values()))["name"] for e in container["envFrom"]]
    assert env_from == ["faceq-config", "faceq-tokens"]


def test_config_map_and_secret_carry_exactly_the_settings(docs):
    config = docs[("ConfigMap", "faceq-config")]["data"]
    secret = docs[("Secret", "faceq-tokens")]["stringData"]
    assert set(secret) == {"FACEQ_TOKENS"}
    wanted = {spec.env for spec in FIELDS}
    secrets = {spec.env for spec in FIELDS if spec.name in SECRET_FIELDS}
    assert secrets == {"FACEQ_TOKENS", "FACEQ_DATABASE_URL"}  # the database's: k8s/postgres/
    assert set(config) == wanted - secrets, "ConfigMap keys differ from FIELDS"
    assert all(isinstance(v, str) for v in config.values())  # env values must be strings


def test_config_map_values_load(docs, tmp_path):
    config = docs[("ConfigMap", "faceq-config")]["data"]
    env = {**config, "FACEQ_TOKENS": "a-test-token-of-some-length"}
    missing = tmp_path / "none.yaml"
    missing.write_text("{}\n", encoding="utf-8")  # nothing from config/config.yaml
    settings = load_settings(env=env, config_path=missing)
    assert settings.port == Settings().port
    assert settings.data_dir == "/data" and settings.hopenet_snapshot is None
    assert settings.forward_url is None and settings.push_allow == {}
    assert settings.executor_workers == 1
    # the placeholder token cannot go live: the service refuses to start with it
    placeholder = docs[("Secret", "faceq-tokens")]["stringData"]["FACEQ_TOKENS"]
    with pytest.raises(SettingsError, match="FACEQ_TOKENS"):
        load_settings(env={**config, "FACEQ_TOKENS": placeholder}, config_path=missing)
