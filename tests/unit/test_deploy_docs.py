"""docs/deploy.md's examples, each checked by a tool: systemd-analyze, kubernetes-validate, YAML.

The CD controllers' configurations are also called against a real sidecar by
tests/integration/test_gate_webhook.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import kubernetes_validate
import pytest
import yaml

from strangler.sidecar.gate_answer import GateQuery
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
        "flagger-canary.yaml",
        "argo-analysis-template.yaml",
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


def flagger_webhooks() -> dict[str, dict[str, Any]]:
    """The Flagger Canary's webhooks in docs/deploy.md, by type."""
    canary = yaml.safe_load(blocks()["flagger-canary.yaml"])
    assert (canary["apiVersion"], canary["kind"]) == ("flagger.app/v1beta1", "Canary")
    return {hook["type"]: hook for hook in canary["spec"]["analysis"]["webhooks"]}


def argo_metric() -> dict[str, Any]:
    """The Argo Rollouts AnalysisTemplate's one metric in docs/deploy.md."""
    template = yaml.safe_load(blocks()["argo-analysis-template.yaml"])
    assert (template["apiVersion"], template["kind"]) == (
        "argoproj.io/v1alpha1",
        "AnalysisTemplate",
    )
    (metric,) = template["spec"]["metrics"]
    return metric  # type: ignore[no-any-return]


def test_flagger_webhooks_ask_the_gate_with_valid_options() -> None:
    """Both confirm hooks want a pass, the rollback hook a failure; every option parses."""
    hooks = flagger_webhooks()

    assert set(hooks) == {"confirm-traffic-increase", "confirm-promotion", "rollback"}
    assert {urlsplit(hook["url"]).path for hook in hooks.values()} == {"/_strangler/gate"}
    assert [GateQuery.parse(hook["metadata"]).ok_when for hook in hooks.values()] == [
        "pass",
        "pass",
        "fail",
    ]


def test_argo_template_reads_the_outcome_of_an_always_200_gate() -> None:
    """Argo counts non-2xx as errors, so the URL asks for ok_when=any; conditions on outcome."""
    metric = argo_metric()
    web = metric["provider"]["web"]
    url = urlsplit(web["url"])
    query = GateQuery.parse(dict(parse_qsl(url.query)))

    assert (url.path, query.ok_when, web["jsonPath"]) == ("/_strangler/gate", "any", "{$.outcome}")
    assert query.thresholds.max_mismatch == 0.005
    assert (metric["successCondition"], metric["failureCondition"]) == (
        'result == "pass"',
        'result == "fail"',
    )
