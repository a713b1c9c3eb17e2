"""The shipped compose file and k8s manifests turn authentication on by default, with
secrets from the environment, so the published API never starts open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelmonitor.auth.network import is_loopback_host
from modelmonitor.settings import parse_host_port

ROOT = Path(__file__).resolve().parents[2]


def test_compose_requires_an_admin_token_from_the_environment() -> None:
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    api = compose["services"]["api"]["environment"]
    host, _ = parse_host_port(api["MODELMONITOR_API"])
    assert not is_loopback_host(host)  # published: auth must be on
    # ``:?`` makes compose refuse to start without the variable; no default secret.
    assert api["MODELMONITOR_ADMIN_TOKEN"].startswith("${MODELMONITOR_ADMIN_TOKEN:?")
    assert "api" in api["MODELMONITOR_AUTH__ALLOWED_HOSTS"]  # Prometheus scrapes api:8000
    env_example = (ROOT / "config/env.example").read_text()
    assert "\nMODELMONITOR_ADMIN_TOKEN=" in env_example


def test_k8s_api_takes_its_admin_token_from_a_secret() -> None:
    documents: list[dict[str, Any]] = []
    for path in (ROOT / "deploy/k8s").glob("*.yaml"):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d and "metadata" in d]
    secrets = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Secret"}
    assert "MODELMONITOR_ADMIN_TOKEN" in secrets["modelmonitor-auth"]["stringData"]
    api = next(d for d in documents if d["metadata"]["name"] == "modelmonitor-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    refs = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
    assert "modelmonitor-auth" in refs
    env = {item["name"]: item["value"] for item in container["env"]}
    assert not is_loopback_host(parse_host_port(env["MODELMONITOR_API"])[0])
