"""The deployment files of deploy/ parse, and agree with each other and with the settings: every EDUPULSE_
variable they set is a setting, every API process has its own node name and its own data volume, the proxy
sends to exactly the API processes, systemd's unit is a valid unit file, Kubernetes' documents are whole."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import yaml

from test_docs import variables

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SETTINGS = set(variables())


def names_in(text: str) -> set[str]:
    return set(re.findall(r"\b(EDUPULSE_[A-Z_]*[A-Z])\b", text))


def test_every_variable_the_deployment_sets_is_a_setting() -> None:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file():
            unknown = names_in(path.read_text(encoding="utf-8")) - SETTINGS
            assert not unknown, f"{path.relative_to(DEPLOY)} sets {sorted(unknown)}, which are no settings"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def test_compose_runs_clickhouse_postgres_two_api_processes_and_a_proxy() -> None:
    services = compose()["services"]
    assert {"clickhouse", "postgres", "proxy"} <= set(services)
    apis = {name: s for name, s in services.items() if name.startswith("api-")}
    assert len(apis) == 2
    volumes = set()
    for name, service in apis.items():
        assert service["environment"]["EDUPULSE_NODE__NAME"] == name
        assert service["env_file"] == "edupulse.env"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        (mount,) = service["volumes"]
        assert mount.endswith(":/data")
        volumes.add(mount.split(":")[0])
    assert len(volumes) == 2  # a write-ahead log of its own for each
    assert volumes <= set(compose()["volumes"])
    env = dict(line.split("=", 1) for line in (DEPLOY / "edupulse.env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["EDUPULSE_EVENTS_URL"].startswith("clickhouse://edupulse:")
    assert env["EDUPULSE_EVENTS_URL"].endswith("@clickhouse:8123/edupulse")
    assert env["EDUPULSE_METADATA_URL"].startswith("postgresql://edupulse:")
    from edupulse.store.clickhouse_client import parse_url

    assert parse_url(env["EDUPULSE_EVENTS_URL"]).host == "clickhouse"


def test_the_proxy_sends_to_exactly_the_api_processes() -> None:
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert text.count("{") == text.count("}")
    upstream = re.search(r"upstream edupulse \{(.*?)\}", text, re.S)
    assert upstream is not None
    servers = set(re.findall(r"server ([\w-]+):8000", upstream.group(1)))
    assert servers == {name for name in compose()["services"] if name.startswith("api-")}
    assert "proxy_pass http://edupulse;" in text
    size = re.search(r"client_max_body_size (\d+)m;", text)
    assert size is not None
    from edupulse.conf import IngestSettings

    assert int(size.group(1)) * 1024 * 1024 >= IngestSettings().max_body_bytes


def test_the_systemd_unit_parses() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "systemd" / "edupulse@.service")
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    assert unit["Service"]["ExecStart"].endswith("edupulse serve")
    assert unit["Service"]["KillSignal"] == "SIGINT"
    assert "%i" in unit["Service"]["Environment"]


def test_the_kubernetes_example_parses() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "edupulse.yaml").read_text(encoding="utf-8")))
    kinds = {d["kind"]: d for d in documents}
    assert set(kinds) == {"Secret", "StatefulSet", "Service"}
    spec = kinds["StatefulSet"]["spec"]
    assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["EDUPULSE_NODE__NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert kinds["Service"]["spec"]["selector"] == spec["selector"]["matchLabels"]
