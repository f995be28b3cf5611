"""The Kubernetes manifests: valid against the Kubernetes schemas (offline, shipped by
kubernetes-validate) and consistent with the code: probe paths are real routes, the port is the
service's, and the ConfigMap/Secret carry exactly the settings of ``app.settings.FIELDS``.

``k8s/base`` is the SQLite mode (``k8s/`` applies it); ``k8s/postgres`` patches it into the
PostgreSQL mode and adds a CloudNativePG ``Cluster``. The patched Deployment is built here the
way kustomize's strategic merge builds it (and compared with ``kubectl kustomize`` where kubectl
exists) and validated like the others; the ``Cluster`` (a custom resource, whose schema comes
with the operator) is checked for what faceq relies on."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from app.settings import FIELDS, SECRET_FIELDS, Settings, SettingsError, load_settings
from handlers import probes
from tests.conftest import ROOT

K8S = ROOT / "k8s" / "base"
POSTGRES = ROOT / "k8s" / "postgres"
# The oldest and the newest Kubernetes minor versions we claim to support.
VERSIONS = ("1.29.0", "1.37.0")


def documents(folder: Path = K8S) -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(folder.glob("*.yaml")):
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


def test_the_top_folder_applies_the_base():
    top = yaml.safe_load((ROOT / "k8s" / "kustomization.yaml").read_text(encoding="utf-8"))
    assert top["resources"] == ["base"]


def _merge_by_name(base: list[dict], patch: list[dict]) -> list[dict]:
    out = [copy.deepcopy(item) for item in base]
    for item in patch:
        same = [i for i, old in enumerate(out) if old["name"] == item["name"]]
        if not same:
            out.append(copy.deepcopy(item))
            continue
        merged = out[same[0]]
        for key, value in item.items():
            if key == "env":
                merged["env"] = _merge_by_name(merged.get("env", []), value)
            else:
                merged[key] = copy.deepcopy(value)
    return out


def postgres_deployment(docs: dict[tuple[str, str], dict]) -> dict:
    """The base Deployment with k8s/postgres/deployment-patch.yaml merged in (strategic merge:
    lists of containers, env and volumes by name)."""
    patch = yaml.safe_load((POSTGRES / "deployment-patch.yaml").read_text(encoding="utf-8"))
    deployment = copy.deepcopy(docs[("Deployment", "faceq")])
    pod, pod_patch = deployment["spec"]["template"]["spec"], patch["spec"]["template"]["spec"]
    for key in ("initContainers", "containers", "volumes"):
        pod[key] = _merge_by_name(pod.get(key, []), pod_patch.get(key, []))
    return deployment


def test_postgres_overlay_lists_the_base_the_cluster_and_the_patch():
    kustomization = yaml.safe_load((POSTGRES / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["resources"] == ["../base", "cluster.yaml"]
    assert kustomization["patches"] == [{"path": "deployment-patch.yaml"}]
    assert (
        kustomization["images"]
        == yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))["images"]
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_postgres_deployment_is_valid_and_migrates_first(docs, version):
    deployment = postgres_deployment(docs)
    kubernetes_validate.validate(deployment, version, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    (app,) = pod["containers"]
    assert migrate["command"] == ["python", "-m", "app", "db", "upgrade"]
    assert migrate["image"] == app["image"]
    assert migrate["securityContext"] == app["securityContext"]
    cluster = yaml.safe_load((POSTGRES / "cluster.yaml").read_text(encoding="utf-8"))
    from_secret = {
        "name": "FACEQ_DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": cluster["metadata"]["name"] + "-app", "key": "uri"}},
    }
    for container in (migrate, app):
        assert from_secret in container["env"]
        assert {"name": "HOME", "value": "/tmp"} in container["env"]
        assert {"configMapRef": {"name": "faceq-config"}} in container["envFrom"]
    assert sorted(e["name"] for e in app["env"]) == ["FACEQ_DATABASE_URL", "HOME"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {"sizeLimit": "64Mi"}}
    assert set(volumes) == {"data", "tmp"}


def test_postgres_overlay_renders_as_checked(docs):
    """kubectl's own kustomize builds the same Deployment as the merge above."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the rendering by kustomize itself is not compared")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(POSTGRES)], capture_output=True, text=True, check=True
    ).stdout
    out = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}
    assert sorted(out) == sorted([*docs, ("Cluster", "faceq-db")])
    assert _env_sorted(out[("Deployment", "faceq")]) == _env_sorted(postgres_deployment(docs))


def _env_sorted(deployment: dict) -> dict:
    """The order of env entries means nothing here (no $(VAR) references): compare by name."""
    out = copy.deepcopy(deployment)
    pod = out["spec"]["template"]["spec"]
    for container in pod.get("initContainers", []) + pod["containers"]:
        container["env"] = sorted(container.get("env", []), key=lambda e: e["name"])
    return out


def test_the_database_cluster_is_what_faceq_expects():
    cluster = yaml.safe_load((POSTGRES / "cluster.yaml").read_text(encoding="utf-8"))
    assert (cluster["apiVersion"], cluster["kind"]) == ("postgresql.cnpg.io/v1", "Cluster")
    spec = cluster["spec"]
    assert spec["instances"] >= 2  # a standby to fail over to
    assert spec["bootstrap"] == {"initdb": {"database": "faceq", "owner": "faceq"}}
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert int(spec["postgresql"]["parameters"]["max_connections"]) >= 8 * (4 + 2)
    assert set(spec) <= {
        "instances", "bootstrap", "storage", "postgresql", "affinity", "resources",
    }  # fmt: skip
