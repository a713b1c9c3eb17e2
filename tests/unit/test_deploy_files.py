"""Static checks of the deployment files: they parse, and agree with the code.

No container engine runs in CI, so these tests check what can go stale: service
names, ports, ``MODELMONITOR_*`` variables (each must be a Settings field, and the
values must validate) and commands (each must parse with the real CLI parser).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmonitor.cli import build_parser
from modelmonitor.settings import Settings, parse_host_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
ROOT_COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ENV_EXAMPLE = ROOT / "config" / "env.example"
K8S = ROOT / "deploy" / "k8s"
PARTS = ("proxy", "worker", "api")
_VAR = re.compile(r"\bMODELMONITOR_[A-Z0-9_]+\b")
_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def k8s_documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return documents


def field_for(variable: str) -> str:
    return variable.removeprefix("MODELMONITOR_").lower().split("__")[0]


def resolve(value: str) -> str:
    """Compose interpolation with the defaults: ``${A:-x}`` -> ``x``."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def modelmonitor_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if "modelmonitor" in str(service.get("image", ""))
    }


def parses(argv: list[str]) -> bool:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def k8s_containers() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in k8s_documents():
        if doc["kind"] in ("Deployment", "Job"):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                found.append((doc["metadata"]["name"], container))
    return found


def test_every_file_parses() -> None:
    assert compose()["services"]
    assert yaml.safe_load(ROOT_COMPOSE.read_text())
    assert k8s_documents()
    assert DOCKERFILE.read_text().strip()


def test_root_compose_includes_the_one_definition() -> None:
    root = yaml.safe_load(ROOT_COMPOSE.read_text())
    included = [entry if isinstance(entry, str) else entry["path"] for entry in root["include"]]
    assert included == ["deploy/docker-compose.yml"]
    assert "services" not in root, "services belong in deploy/docker-compose.yml"


def test_compose_has_the_production_topology() -> None:
    services = compose()["services"]
    for name in (*PARTS, "postgres", "rabbitmq", "redis"):
        assert name in services, name
    assert services["postgres"]["image"].startswith("timescale/timescaledb")
    assert "management" in services["rabbitmq"]["image"]
    assert services["pgadmin"]["profiles"] == ["tools"]
    for name in ("postgres", "rabbitmq", "redis", "api", "proxy"):
        assert "healthcheck" in services[name], f"{name} needs a healthcheck"


def test_compose_dependencies_wait_for_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            assert condition in ("service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
    assert services["worker"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_compose_commands_are_modelmonitor_subcommands() -> None:
    services = modelmonitor_services()
    assert {*PARTS, "migrate"} <= set(services)
    for name, service in services.items():
        assert parses(service["command"]), f"{name}: {service['command']}"
    assert services["proxy"]["command"] == ["proxy"]
    assert services["worker"]["command"] == ["worker"]
    assert services["api"]["command"] == ["api"]


def test_compose_variables_are_settings_and_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, service in modelmonitor_services().items():
        environment = service.get("environment") or {}
        for variable in environment:
            if variable.startswith("MODELMONITOR_"):
                assert field_for(variable) in Settings.model_fields, f"{name}: {variable}"
        for variable in [v for v in os.environ if v.startswith("MODELMONITOR_")]:
            monkeypatch.delenv(variable)
        for variable, value in environment.items():
            monkeypatch.setenv(variable, resolve(str(value)))
        Settings()  # raises on an invalid value


def test_compose_ports_match_the_settings() -> None:
    services = compose()["services"]
    for name, variable in (("api", "MODELMONITOR_API"), ("proxy", "MODELMONITOR_LISTEN")):
        _, port = parse_host_port(services[name]["environment"][variable])
        published = [resolve(str(entry)).rsplit(":", 1)[1] for entry in services[name]["ports"]]
        assert str(port) in published, f"{name} listens on {port} but publishes {published}"


def test_env_example_names_only_settings() -> None:
    variables = set(_VAR.findall(ENV_EXAMPLE.read_text()))
    assert {"MODELMONITOR_TARGET", "MODELMONITOR_BROKER_URL", "MODELMONITOR_DATABASE_URL"} <= (
        variables
    )
    for variable in variables:
        assert field_for(variable) in Settings.model_fields, variable


def test_every_modelmonitor_variable_anywhere_is_a_setting() -> None:
    texts = [COMPOSE.read_text(), DOCKERFILE.read_text(), ENV_EXAMPLE.read_text()]
    texts += [path.read_text() for path in K8S.glob("*.yaml")]
    for text in texts:
        for variable in _VAR.findall(text):
            assert field_for(variable) in Settings.model_fields, variable


def test_dockerfile_builds_the_dashboard_then_the_package() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.MULTILINE)
    assert len(stages) >= 2
    assert any(image.startswith("node") for image, _ in stages)
    assert "npm ci" in text and "npm run build" in text
    assert "src/modelmonitor/static" in text
    assert '".[production]"' in text
    assert 'ENTRYPOINT ["modelmonitor"]' in text
    command = re.search(r"^CMD\s+(\[.*\])", text, re.MULTILINE)
    assert command and parses(yaml.safe_load(command.group(1)))


def test_k8s_deployments_probes_resources_and_config() -> None:
    documents = k8s_documents()
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in documents}
    for part in PARTS:
        assert ("Deployment", f"modelmonitor-{part}") in names
    for part in ("api", "proxy"):
        assert ("Service", f"modelmonitor-{part}") in names
    config_maps = {d["metadata"]["name"] for d in documents if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"] for d in documents if d["kind"] == "Secret"}
    for owner, container in k8s_containers():
        assert parses(container["args"]), f"{owner}: {container['args']}"
        assert container["resources"]["requests"], owner
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps
            if "secretRef" in source:
                assert source["secretRef"]["name"] in secrets
        for variable in container.get("env", []):
            assert field_for(variable["name"]) in Settings.model_fields, variable["name"]
        if owner.startswith("modelmonitor-") and owner.removeprefix("modelmonitor-") in PARTS:
            assert "readinessProbe" in container and "livenessProbe" in container, owner
    api = next(c for owner, c in k8s_containers() if owner == "modelmonitor-api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/health"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    for document in documents:
        if document["kind"] in ("ConfigMap", "Secret"):
            data = document.get("data") or document.get("stringData") or {}
            for variable in data:
                assert field_for(variable) in Settings.model_fields, variable


def test_k8s_ports_match_the_settings() -> None:
    documents = k8s_documents()
    for part, variable in (("api", "MODELMONITOR_API"), ("proxy", "MODELMONITOR_LISTEN")):
        container = next(c for o, c in k8s_containers() if o == f"modelmonitor-{part}")
        env = {item["name"]: item["value"] for item in container["env"]}
        _, port = parse_host_port(env[variable])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert port in ports.values()
        service = next(
            d for d in documents if d["kind"] == "Service" and d["metadata"]["name"].endswith(part)
        )
        for entry in service["spec"]["ports"]:
            target = entry["targetPort"]
            assert target in ports or target in ports.values()


def test_kustomization_lists_existing_files() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource


GRAFANA = ROOT / "deploy" / "grafana"


def dashboards() -> dict[str, dict[str, Any]]:
    import json

    return {
        path.name: json.loads(path.read_text())
        for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def test_grafana_dashboards_are_provisioned_by_the_monitoring_profile() -> None:
    boards = dashboards()
    assert {board["uid"] for board in boards.values()} == {
        "modelmonitor-overview",
        "modelmonitor-service",
        "modelmonitor-system",
        "modelmonitor-alerting",
    }
    for name, board in boards.items():
        variables = {variable["name"] for variable in board["templating"]["list"]}
        assert "datasource" in variables, name
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            assert panel["targets"], (name, panel["title"])
            assert panel["datasource"]["uid"] == "${datasource}"
    services = compose()["services"]
    grafana, prometheus = services["grafana"], services["prometheus"]
    assert grafana["profiles"] == prometheus["profiles"] == ["monitoring"]
    mounts = {volume.split(":")[1] for volume in grafana["volumes"]}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"} <= mounts
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/modelmonitor.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    # Proxies and workers serve /metrics on their health port, where Prometheus looks.
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    ports = {
        job["job_name"]: job["dns_sd_configs"][0]["port"]
        for job in scrape["scrape_configs"]
        if "dns_sd_configs" in job
    }
    for part in ("proxy", "worker"):
        listen = services[part]["environment"]["MODELMONITOR_HEALTH_LISTEN"]
        assert listen.endswith(f":{ports[f'modelmonitor-{part}']}")
