"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the official Compose Specification JSON schema (vendored in
deploy/schemas/, see its README) after Compose-style variable interpolation; every TROOPLY_* name it
mentions must be a field of Settings, and each service's environment must be accepted by Settings.
The checks are shown to fail on real mistakes (an unknown key, an unknown TROOPLY_ variable, ...).
"""

import copy
import importlib
import json
import re
import tomllib
from pathlib import Path

import jsonschema
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
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA_FILE = ROOT / "deploy" / "schemas" / "compose-spec.json"

TROOPLY_SERVICES = ("api", "worker", "worker-background", "worker-gpu", "beat", "migrate")
REQUIRED_SERVICES = ("api", "worker", "worker-background", "beat", "migrate", "redis", "qdrant", "postgres")


# --- helpers -----------------------------------------------------------------------------------------

def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())  # resolves the anchors and `<<` merge keys


_INTERPOLATION = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, environ: dict[str, str]):
    """Compose's variable interpolation ($$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err})."""
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        escaped, name, operator, argument, bare = match.groups()
        if escaped:
            return "$"
        name = name or bare
        present = name in environ
        empty = present and environ[name] == ""
        if operator in (":-", "-"):
            use_default = not present or (operator == ":-" and empty)
            return argument if use_default else environ[name]
        if operator in (":?", "?"):
            if not present or (operator == ":?" and empty):
                raise ValueError(f"required variable {name} is unset: {argument}")
            return environ[name]
        if not present:
            # Compose substitutes "" with a warning; here every variable must carry a default.
            raise ValueError(f"variable {name} has no default")
        return environ[name]

    return _INTERPOLATION.sub(substitute, value)


def schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(document: dict) -> list[str]:
    errors = schema_validator().iter_errors(interpolate(document, {}))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def trooply_names(node) -> set[str]:
    """Every TROOPLY_* name anywhere in the document: keys, values, commands, interpolations."""
    if isinstance(node, dict):
        return set().union(*(trooply_names(k) | trooply_names(v) for k, v in node.items())) if node else set()
    if isinstance(node, list):
        return set().union(*(trooply_names(item) for item in node)) if node else set()
    return set(TROOPLY_NAME.findall(node)) if isinstance(node, str) else set()


def unknown_trooply_names(document: dict) -> set[str]:
    return trooply_names(document) - KNOWN_SETTINGS


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in interpolate(env, {}).items()}


def command(service: dict) -> list[str]:
    value = interpolate(service.get("command"), {})
    assert isinstance(value, list), "commands are written in exec form (a list)"
    return value


# --- the compose file --------------------------------------------------------------------------------

def test_vendored_schema_is_the_compose_specification():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["title"] == "Compose Specification"
    assert {"services", "volumes", "networks"} <= set(schema["properties"])


def test_no_key_is_repeated():
    yaml.load(COMPOSE_FILE.read_text(), Loader=UniqueKeyLoader)
    with pytest.raises(yaml.YAMLError):
        yaml.load("services:\n  api:\n    image: a\n    image: b\n", Loader=UniqueKeyLoader)
    merged = yaml.load("x: &x {a: 1, b: 2}\ny: {<<: *x, b: 3}\n", Loader=UniqueKeyLoader)
    assert merged["y"] == {"a": 1, "b": 3}  # a merge key overridden is not a repetition


def test_compose_file_matches_the_compose_specification():
    assert schema_errors(load_compose()) == []


@pytest.mark.parametrize("mistake", [
    "unknown service key", "unknown healthcheck key", "unknown depends_on condition",
    "healthcheck retries not a number", "unknown top-level key",
])
def test_schema_rejects_a_broken_copy(mistake):
    broken = copy.deepcopy(load_compose())
    api = broken["services"]["api"]
    if mistake == "unknown service key":
        api["helthcheck"] = api.pop("healthcheck")
    elif mistake == "unknown healthcheck key":
        api["healthcheck"]["interval_seconds"] = 15
    elif mistake == "unknown depends_on condition":
        api["depends_on"]["postgres"]["condition"] = "service_ready"
    elif mistake == "healthcheck retries not a number":
        api["healthcheck"]["retries"] = ["five"]
    elif mistake == "unknown top-level key":
        broken["service"] = broken.pop("services")
    assert schema_errors(broken), f"the schema accepted a compose file with an {mistake}"


def test_every_variable_has_a_default():
    interpolate(load_compose(), {})  # raises on a variable without a default
    with pytest.raises(ValueError):
        interpolate({"x": "${NO_DEFAULT}"}, {})
    assert interpolate({"x": ["$${A}", "${B:-b}", "${C-c}"]}, {"C": ""}) == {"x": ["${A}", "b", ""]}


def test_required_services_exist():
    services = load_compose()["services"]
    assert set(REQUIRED_SERVICES) <= set(services)
    assert services["qdrant"]["image"].startswith("qdrant/qdrant:")
    assert any("qdrant/storage" in v for v in services["qdrant"]["volumes"]), "Qdrant keeps its data on a volume"
    assert any("/var/lib/postgresql/data" in v for v in services["postgres"]["volumes"])


def test_every_trooply_variable_is_a_setting():
    assert unknown_trooply_names(load_compose()) == set()


@pytest.mark.parametrize("where", ["environment", "shared anchor", "command"])
def test_an_unknown_trooply_variable_is_caught(where):
    broken = copy.deepcopy(load_compose())
    if where == "environment":
        broken["services"]["worker"]["environment"]["TROOPLY_WORKER_CONCURRENCY"] = "4"
    elif where == "shared anchor":
        broken["x-trooply-env"]["TROOPLY_QDRANT_URI"] = "http://qdrant:6333"
    else:
        broken["services"]["beat"]["command"] = ["sh", "-c", "trooply beat --every $$TROOPLY_BEAT_EVERY"]
    assert unknown_trooply_names(broken), f"an unknown TROOPLY_ variable in the {where} went unnoticed"


@pytest.mark.parametrize("name", TROOPLY_SERVICES)
def test_each_trooply_service_environment_is_valid_settings(name, monkeypatch):
    service = load_compose()["services"][name]
    env = environment(service)
    settings = settings_from(env, monkeypatch)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.qdrant.url and settings.redis_url


def test_a_bad_setting_value_is_caught(monkeypatch):
    env = environment(load_compose()["services"]["worker"]) | {"TROOPLY_ENCODE_BATCH_SIZE": "lots"}
    with pytest.raises(ValueError):
        settings_from(env, monkeypatch)


def test_every_service_has_a_health_check():
    for name, service in load_compose()["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no health check"
        if name == "migrate":
            assert check.get("disable") is True  # a one-shot: its exit status is what others wait for
        else:
            assert check.get("test") and check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_the_api_is_healthy_only_when_ready():
    check = " ".join(load_compose()["services"]["api"]["healthcheck"]["test"])
    assert "/readyz" in check


def test_dependencies_are_waited_for_by_condition():
    services = load_compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on with conditions, not a bare list"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on an unknown service {target}"
            expected = "service_completed_successfully" if target == "migrate" else "service_healthy"
            assert rule.get("condition") == expected, f"{name} -> {target}"
    for name in ("api", "worker", "worker-background"):
        assert set(services[name]["depends_on"]) == {"migrate", "postgres", "redis", "qdrant"}, name
    assert set(services["migrate"]["depends_on"]) == {"postgres"}
    assert services["migrate"]["restart"] == "no"


def test_named_volumes_are_declared():
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts the undeclared volume {source}"


def test_commands_are_real_entry_points():
    from trooply.cli import _parser

    services = load_compose()["services"]
    for name in TROOPLY_SERVICES:
        argv = command(services[name])
        if argv[0] == "trooply":
            _parser().parse_args(argv[1:])  # exits (SystemExit) on an unknown command or option
        else:
            assert argv[:2] == ["uvicorn", "trooply.api.app:create_app"] and "--factory" in argv, name
            module, attribute = argv[1].split(":")
            assert callable(getattr(importlib.import_module(module), attribute))
            assert int(argv[argv.index("--workers") + 1]) >= 1
    assert command(services["api"])[0] == "uvicorn"
    assert command(services["worker"])[:2] == ["trooply", "worker"]
    assert command(services["beat"]) == ["trooply", "beat"]
    assert command(services["migrate"]) == ["trooply", "migrate"]


def test_ingest_and_background_tasks_have_workers_of_their_own():
    """A model migration queues thousands of background tasks: they must not wait in front of ingest."""
    services = load_compose()["services"]
    assert consumed_queues(command(services["worker"])) == {INGEST_QUEUE}
    assert consumed_queues(command(services["worker-background"])) == background_queues()


def test_a_mistyped_command_is_caught():
    from trooply.cli import _parser

    with pytest.raises(SystemExit):
        _parser().parse_args(["wroker", "--concurrency", "2"])


def test_gpu_worker_asks_for_a_gpu_and_uses_cuda():
    worker = load_compose()["services"]["worker-gpu"]
    assert worker["profiles"] == ["gpu"]  # off unless asked for
    assert worker["build"]["args"]["VARIANT"] == "cuda"
    assert environment(worker)["TROOPLY_CLIP_DEVICE"] == "cuda"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)


# --- the Dockerfile ----------------------------------------------------------------------------------

def _pinned(requirement_prefix: str) -> str:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in dependencies if d.startswith(requirement_prefix + "=="))


def test_dockerfile_installs_the_pinned_torch_pair():
    text = DOCKERFILE.read_text()
    for package in ("torch", "torchvision"):
        assert f'"{_pinned(package)}"' in text, f"the Dockerfile does not install pyproject's {_pinned(package)}"


def test_dockerfile_is_multi_stage_non_root_with_cpu_and_cuda_variants():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.MULTILINE | re.IGNORECASE)
    names = {alias for _, alias in stages}
    assert {"base-cpu", "base-cuda", "builder", "runtime"} <= names
    assert re.search(r"^ARG VARIANT=cpu$", text, flags=re.MULTILINE)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, flags=re.MULTILINE)
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:[\w.]+-runtime-", text, flags=re.MULTILINE)
    assert "download.pytorch.org/whl/cpu" in text
    runtime = text[text.index("AS runtime"):]
    user = re.findall(r"^USER\s+(\S+)", runtime, flags=re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("root", "0"), "the image runs as a non-root user"
    for path in ("pyproject.toml", "README.md", "trooply", "workers", "migrations", "profiles"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", text, flags=re.MULTILINE), f"{path} is not copied"
    assert "pip install --no-deps -e ." in text  # migrations/ and profiles/ resolve next to the package
    assert TROOPLY_NAME.findall(text) and set(TROOPLY_NAME.findall(text)) <= KNOWN_SETTINGS


def test_the_build_context_keeps_the_virtualenv_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
