"""docs/deploy.md's examples, each checked by a tool: systemd-analyze, kubernetes-validate, YAML."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helpers import REPO_ROOT, require

DOC = REPO_ROOT / "docs" / "deploy.md"
_BLOCK = re.compile(r"^```\w+ file=(\S+)\n(.*?)^```$", re.M | re.S)
K8S_VERSION = "1.30"


def blocks() -> dict[str, str]:
    """The fenced blocks of docs/deploy.md that name a file, by that name."""
    return dict(_BLOCK.findall(DOC.read_text()))


def test_the_doc_has_every_example() -> None:
    """Two systemd units, a pod and the Envoy routes are there to be checked."""
    assert set(blocks()) == {
        "strangler-sidecar.service",
        "strangler-worker.service",
        "pod.yaml",
        "envoy-routes.yaml",
    }


def verify_unit(tmp_path: Path, name: str, text: str) -> tuple[int, str]:
    """systemd-analyze verify on ``text`` (ExecStart pointed at this checkout's strangler)."""
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is missing (apt-get install -y systemd)")
    assert analyze is not None
    strangler = Path(sys.executable).with_name("strangler")
    unit = tmp_path / name
    unit.write_text(text.replace("/opt/strangler/.venv/bin/strangler", str(strangler)))
    checked = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return checked.returncode, checked.stderr.strip()


@pytest.mark.parametrize("name", ["strangler-sidecar.service", "strangler-worker.service"])
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path, name: str) -> None:
    """systemd-analyze verify finds nothing wrong: exit 0 and not one warning."""
    assert verify_unit(tmp_path, name, blocks()[name]) == (0, "")


def test_systemd_analyze_does_flag_a_misspelt_key(tmp_path: Path) -> None:
    """A unit with a misspelt key gets a warning (the check can fail)."""
    text = blocks()["strangler-worker.service"].replace("RestartSec=", "RestartSecs=")
    assert "Unknown key" in verify_unit(tmp_path, "broken.service", text)[1]


def test_pod_is_valid_kubernetes() -> None:
    """The pod validates strictly against Kubernetes' bundled schemas, probes as documented."""
    pod = yaml.safe_load(blocks()["pod.yaml"])
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    (sidecar,) = [c for c in pod["spec"]["containers"] if c["name"] == "strangler"]
    assert sidecar["args"] == ["serve", "--front", "nginx"]
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/_strangler/readyz"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/_strangler/healthz"
    env = {item["name"]: item for item in sidecar["env"]}
    assert env["STRANGLER_LEDGER_URL"]["valueFrom"]["secretKeyRef"]["key"] == "ledger-url"
    assert env["STRANGLER_UNLEASH_URL"]["value"].startswith("http://")


def test_a_broken_pod_is_refused() -> None:
    """The validator does refuse a pod with a misspelt field (the check can fail)."""
    pod = yaml.safe_load(blocks()["pod.yaml"])
    pod["spec"]["containers"][1]["readinesProbe"] = pod["spec"]["containers"][1].pop(
        "readinessProbe"
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_envoy_routes_send_three_things_to_the_sidecar() -> None:
    """The Envoy routes: POST /orders, /_strangler/ and /metrics to the sidecar, rest direct."""
    config: dict[str, Any] = yaml.safe_load(blocks()["envoy-routes.yaml"])
    routes = config["route_config"]["virtual_hosts"][0]["routes"]
    table = [
        (
            route["match"].get("safe_regex", {}).get("regex")
            or route["match"].get("prefix")
            or route["match"].get("path"),
            route["route"]["cluster"],
        )
        for route in routes
    ]
    assert table == [
        ("^/orders/?$", "strangler_sidecar"),
        ("/_strangler/", "strangler_sidecar"),
        ("/metrics", "strangler_sidecar"),
        ("/", "order_service"),
    ]
    method = routes[0]["match"]["headers"][0]
    assert (method["name"], method["string_match"]["exact"]) == (":method", "POST")
    assert {cluster["name"] for cluster in config["clusters"]} == {
        "strangler_sidecar",
        "order_service",
    }
