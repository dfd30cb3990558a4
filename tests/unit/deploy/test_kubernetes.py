"""The Kubernetes manifests under deploy/, checked offline.

Every YAML document is validated, strictly (unknown fields fail), against the Kubernetes OpenAPI JSON
schemas that the `kubernetes-validate` package bundles; every TROOPLY_* name in ConfigMaps, Secrets
and container env must be a field of Settings; and the objects must fit together (selectors,
references, probes).
"""

import base64
import copy
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.support.deploy_files import (
    KNOWN_SETTINGS,
    TROOPLY_NAME,
    UniqueKeyLoader,
    background_queues,
    consumed_queues,
    settings_from,
)
from trooply.tasks.queue import INGEST_QUEUE

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
NAMESPACE = "trooply"
# The oldest Kubernetes minor we support, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())

CLUSTER_SETTINGS = frozenset({"TROOPLY_QDRANT_SHARD_NUMBER", "TROOPLY_QDRANT_REPLICATION_FACTOR",
                              "TROOPLY_QDRANT_WRITE_CONSISTENCY_FACTOR"})
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


# --- loading -----------------------------------------------------------------------------------------

def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_documents() -> list[tuple[str, dict]]:
    documents = []
    for path in manifest_files():
        for index, document in enumerate(yaml.load_all(path.read_text(), Loader=UniqueKeyLoader)):
            if document is not None:
                documents.append((f"{path.relative_to(ROOT)}#{index}", document))
    return documents


DOCUMENTS = load_documents()


def objects(kind: str | None = None) -> list[dict]:
    return [doc for _, doc in DOCUMENTS if kind is None or doc.get("kind") == kind]


def one(kind: str, name: str) -> dict:
    found = [doc for doc in objects(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def containers(workload: dict) -> Iterator[dict]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_value(workload: dict, name: str) -> str | None:
    for container in containers(workload):
        for entry in container.get("env", []):
            if entry["name"] == name:
                return entry.get("value")
    return None


def secret_data(secret: dict) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return data | (secret.get("stringData") or {})


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def strict_errors(document: dict, version: str) -> str | None:
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
    return None


# --- schema validation -------------------------------------------------------------------------------

def test_there_are_manifests():
    kinds = {doc["kind"] for _, doc in DOCUMENTS}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler",
            "StatefulSet", "Job", "PodDisruptionBudget"} <= kinds


def test_a_repeated_key_is_refused():
    # The schemas cannot see it (the last value wins), so the loader refuses it.
    with pytest.raises(yaml.YAMLError):
        list(yaml.load_all("kind: Service\nspec:\n  ports: []\n  ports: []\n", Loader=UniqueKeyLoader))


def test_the_validator_works_offline_from_bundled_schemas():
    # The schemas ship inside the package: validation must not depend on any download.
    assert kubernetes_validate.utils.all_versions()
    bundled = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (bundled / f"v{kubernetes_validate.latest_version()}-local-strict" / "_definitions.json").is_file()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("where,document", DOCUMENTS, ids=[where for where, _ in DOCUMENTS])
def test_manifest_is_valid_kubernetes(where, document, version):
    assert strict_errors(document, version) is None, f"{where}: {strict_errors(document, version)}"


@pytest.mark.parametrize("mistake", ["unknown container field", "replicas as a string",
                                     "unknown probe field", "misspelled spec key"])
def test_a_broken_manifest_fails_validation(mistake):
    broken = copy.deepcopy(one("Deployment", "trooply-worker-cpu"))
    container = pod_spec(broken)["containers"][0]
    if mistake == "unknown container field":
        container["livenessProbes"] = container.pop("livenessProbe")
    elif mistake == "replicas as a string":
        broken["spec"]["replicas"] = "2"
    elif mistake == "unknown probe field":
        container["livenessProbe"]["periodSecond"] = 60
    else:
        broken["spec"]["template"]["spec"]["nodeselector"] = {"a": "b"}
    assert strict_errors(broken, KUBERNETES_VERSIONS[0]), f"a manifest with a {mistake} passed validation"


def test_an_unknown_kind_is_an_error():
    with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
        kubernetes_validate.validate({"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "x"}},
                                     KUBERNETES_VERSIONS[0], strict=True)


# --- TROOPLY_* settings ------------------------------------------------------------------------------

def trooply_names(node) -> set[str]:
    if isinstance(node, dict):
        return set().union(set(), *(trooply_names(k) | trooply_names(v) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(set(), *(trooply_names(item) for item in node))
    return set(TROOPLY_NAME.findall(node)) if isinstance(node, str) else set()


def declared_settings(document: dict) -> set[str]:
    """TROOPLY_* keys a ConfigMap or Secret sets, or a container's env sets or mentions."""
    names = set()
    if document["kind"] == "ConfigMap":
        names |= {k for k in document.get("data", {}) if k.startswith("TROOPLY_")}
    if document["kind"] == "Secret":
        names |= {k for k in secret_data(document) if k.startswith("TROOPLY_")}
    if document["kind"] in WORKLOAD_KINDS:
        for container in containers(document):
            names |= {e["name"] for e in container.get("env", []) if e["name"].startswith("TROOPLY_")}
    return names | trooply_names(document)  # also names used in commands and probes


def test_every_trooply_variable_is_a_setting():
    unknown = {where: sorted(declared_settings(doc) - KNOWN_SETTINGS) for where, doc in DOCUMENTS}
    assert {where: names for where, names in unknown.items() if names} == {}


@pytest.mark.parametrize("where", ["configmap", "secret", "container env", "probe command"])
def test_an_unknown_trooply_variable_is_caught(where):
    if where == "configmap":
        broken = copy.deepcopy(one("ConfigMap", "trooply-config"))
        broken["data"]["TROOPLY_METRICS"] = "true"  # not a setting (yet)
    elif where == "secret":
        broken = copy.deepcopy(one("Secret", "trooply-secrets"))
        broken["stringData"]["TROOPLY_POSTGRES_PASSWORD"] = "x"
    elif where == "container env":
        broken = copy.deepcopy(one("Deployment", "trooply-worker-gpu"))
        pod_spec(broken)["containers"][0]["env"].append({"name": "TROOPLY_CLIP_DEVICES", "value": "cuda"})
    else:
        broken = copy.deepcopy(one("Deployment", "trooply-beat"))
        pod_spec(broken)["containers"][0]["livenessProbe"]["exec"]["command"][-1] += " $TROOPLY_BROKER"
    assert declared_settings(broken) - KNOWN_SETTINGS, f"an unknown TROOPLY_ variable in a {where} went unnoticed"


def workload_environment(workload: dict) -> dict[str, str]:
    """What a Trooply container's environment holds: its envFrom sources, then its literal env."""
    env = {}
    for container in containers(workload):
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env |= one("ConfigMap", source["configMapRef"]["name"])["data"]
            if "secretRef" in source:
                env |= secret_data(one("Secret", source["secretRef"]["name"]))
        env |= {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return {k: str(v) for k, v in env.items() if k.startswith("TROOPLY_")}


def trooply_workloads() -> list[dict]:
    return [doc for kind in WORKLOAD_KINDS for doc in objects(kind)
            if doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "trooply"]


@pytest.mark.parametrize("workload", trooply_workloads(), ids=lambda w: w["metadata"]["name"])
def test_each_trooply_workload_environment_is_valid_settings(workload, monkeypatch):
    env = workload_environment(workload)
    settings = settings_from(env, monkeypatch)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.qdrant.url and settings.redis_url
    for name in CLUSTER_SETTINGS & set(env):
        assert settings.by_variable(name) == int(env[name]) >= 1, name


def test_qdrant_cluster_settings_fit_the_cluster():
    config = one("ConfigMap", "trooply-config")["data"]
    peers = one("StatefulSet", "qdrant")["spec"]["replicas"]
    replication = int(config["TROOPLY_QDRANT_REPLICATION_FACTOR"])
    assert (int(config["TROOPLY_QDRANT_SHARD_NUMBER"]), replication,
            int(config["TROOPLY_QDRANT_WRITE_CONSISTENCY_FACTOR"])) == (3, 2, 1)
    assert 1 <= int(config["TROOPLY_QDRANT_WRITE_CONSISTENCY_FACTOR"]) <= replication <= peers


# --- the objects fit together ------------------------------------------------------------------------

def test_everything_lives_in_the_trooply_namespace():
    for where, doc in DOCUMENTS:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == NAMESPACE
        else:
            assert doc["metadata"].get("namespace") == NAMESPACE, where


def test_names_are_unique_per_kind():
    seen = [(doc["kind"], doc["metadata"]["name"]) for _, doc in DOCUMENTS]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("workload", [d for k in ("Deployment", "StatefulSet") for d in objects(k)],
                         ids=lambda w: w["metadata"]["name"])
def test_selectors_match_their_pod_template(workload):
    assert matches(workload["spec"]["selector"]["matchLabels"], workload["spec"]["template"]["metadata"]["labels"])


def _pod_labels() -> list[dict]:
    return [w["spec"]["template"]["metadata"]["labels"] for k in WORKLOAD_KINDS for w in objects(k)]


def test_services_and_budgets_select_pods():
    for service in objects("Service"):
        assert any(matches(service["spec"]["selector"], labels) for labels in _pod_labels()), service["metadata"]
        for port in service["spec"]["ports"]:
            if isinstance(port.get("targetPort"), str):  # a named port must exist on a selected pod
                selected = [w for k in WORKLOAD_KINDS for w in objects(k)
                            if matches(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
                names = {p.get("name") for w in selected for c in containers(w) for p in c.get("ports", [])}
                assert port["targetPort"] in names, (service["metadata"]["name"], port)
    for budget in objects("PodDisruptionBudget"):
        assert any(matches(budget["spec"]["selector"]["matchLabels"], labels) for labels in _pod_labels())


def test_references_resolve():
    config_maps = {d["metadata"]["name"] for d in objects("ConfigMap")}
    secrets = {d["metadata"]["name"]: secret_data(d) for d in objects("Secret")}
    for kind in WORKLOAD_KINDS:
        for workload in objects(kind):
            for container in containers(workload):
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        assert source["configMapRef"]["name"] in config_maps
                    if "secretRef" in source:
                        assert source["secretRef"]["name"] in secrets
                for entry in container.get("env", []):
                    ref = entry.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["key"] in secrets[ref["name"]], (workload["metadata"]["name"], ref)
                mounts = {m["name"] for m in container.get("volumeMounts", [])}
                volumes = {v["name"] for v in pod_spec(workload).get("volumes", [])}
                claims = {c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])}
                assert mounts <= volumes | claims, (workload["metadata"]["name"], mounts - volumes - claims)
    for hpa in objects("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        one(target["kind"], target["name"])
        assert "replicas" not in one(target["kind"], target["name"])["spec"], "the HPA owns the replica count"


def test_statefulsets_are_governed_by_headless_services():
    for statefulset in objects("StatefulSet"):
        service = one("Service", statefulset["spec"]["serviceName"])
        assert service["spec"].get("clusterIP") == "None"
        assert statefulset["spec"].get("volumeClaimTemplates"), "stateful data lives on persistent volumes"


def test_api_probes_and_autoscaling():
    api = one("Deployment", "trooply-api")
    container = pod_spec(api)["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    argv = container["args"]
    assert argv[:2] == ["uvicorn", "trooply.api.app:create_app"] and "--factory" in argv
    assert one("HorizontalPodAutoscaler", "trooply-api")["spec"]["minReplicas"] >= 2
    one("Service", "trooply-api")
    one("PodDisruptionBudget", "trooply-api")


def test_trooply_commands_are_real():
    from trooply.cli import _parser

    for workload in trooply_workloads():
        argv = pod_spec(workload)["containers"][0]["args"]
        if argv[0] == "trooply":
            _parser().parse_args(argv[1:])
    assert pod_spec(one("Job", "trooply-migrate"))["containers"][0]["args"] == ["trooply", "migrate"]
    assert pod_spec(one("Deployment", "trooply-beat"))["containers"][0]["args"] == ["trooply", "beat"]


def test_trooply_pods_run_as_non_root():
    for workload in trooply_workloads():
        assert pod_spec(workload)["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        for container in containers(workload):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_gpu_worker_runs_on_gpu_nodes_with_cuda():
    worker = one("Deployment", "trooply-worker-gpu")
    spec = pod_spec(worker)
    assert int(spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert spec["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert env_value(worker, "TROOPLY_CLIP_DEVICE") == "cuda"
    assert spec["containers"][0]["image"].endswith("-cuda")
    cpu = one("Deployment", "trooply-worker-cpu")
    assert "nvidia.com/gpu" not in pod_spec(cpu)["containers"][0]["resources"].get("limits", {})
    for name in ("trooply-worker-cpu", "trooply-worker-gpu"):
        one("PodDisruptionBudget", name)


def test_ingest_and_background_tasks_have_workers_of_their_own():
    """A model migration queues thousands of background tasks: they must not wait in front of ingest."""
    def queues(name: str) -> set[str]:
        return consumed_queues(pod_spec(one("Deployment", name))["containers"][0]["args"])

    assert queues("trooply-worker-cpu") == {INGEST_QUEUE}
    assert queues("trooply-worker-background") == background_queues()
    assert queues("trooply-worker-gpu") == {INGEST_QUEUE} | background_queues()
    one("PodDisruptionBudget", "trooply-worker-background")

def test_beat_is_a_singleton():
    beat = one("Deployment", "trooply-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def test_qdrant_runs_distributed():
    qdrant = one("StatefulSet", "qdrant")
    container = pod_spec(qdrant)["containers"][0]
    assert container["image"].startswith("qdrant/qdrant:")
    assert qdrant["spec"]["replicas"] == 3
    assert env_value(qdrant, "QDRANT__CLUSTER__ENABLED") == "true"
    script = " ".join(container["args"])
    assert "--bootstrap" in script and "--uri" in script and ":6335" in script
    headless = one("Service", qdrant["spec"]["serviceName"])
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert 6335 in {p["port"] for p in headless["spec"]["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    one("PodDisruptionBudget", "qdrant")
    assert one("ConfigMap", "trooply-config")["data"]["TROOPLY_QDRANT_URL"] == "http://qdrant:6333"


def test_compose_and_kubernetes_run_the_same_qdrant():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["qdrant"]["image"] == pod_spec(one("StatefulSet", "qdrant"))["containers"][0]["image"]
