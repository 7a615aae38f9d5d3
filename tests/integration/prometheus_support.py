"""A real Prometheus (Debian's ``prometheus`` package) for the integration tests.

It runs on a free loopback port with a temporary config and storage directory, scrapes
the given targets every second and evaluates the shipped rules every second.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.helpers import REPO_ROOT, free_port, require, running_process

__all__ = [
    "DASHBOARD",
    "OPERATIONS_DOC",
    "RULES",
    "PromQueryError",
    "dashboard_queries",
    "doc_queries",
    "query",
    "running_prometheus",
]

RULES = REPO_ROOT / "deploy" / "prometheus" / "strangler-rules.yml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "strangler-dashboard.json"
OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"
# Grafana's interval macros, as Grafana would fill them in for a 1-minute step.
_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
_PROMQL_BLOCK = re.compile(r"^```promql\n(.*?)^```$", re.M | re.S)


class PromQueryError(AssertionError):
    """Prometheus refused a query (bad PromQL, unknown function, ...)."""


@contextmanager
def running_prometheus(workdir: Path, targets: Sequence[str]) -> Iterator[str]:
    """Prometheus scraping ``targets`` (host:port) every second with the shipped rules."""
    binary = shutil.which("prometheus")
    require(binary is not None, "prometheus is missing (apt-get install -y prometheus)")
    assert binary is not None
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {"job_name": "strangler", "static_configs": [{"targets": list(targets)}]}
                ],
            }
        )
    )
    url = f"http://127.0.0.1:{port}"
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with running_process(args, ready_url=f"{url}/-/ready", log_path=workdir / "prometheus.log"):
        yield url


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """The instant vector (a scalar as one sample) ``expr`` gives now; PromQueryError if refused."""
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = answer.json()
    if answer.status_code != 200 or body.get("status") != "success":
        raise PromQueryError(f"{expr!r}: {answer.status_code} {body.get('error', body)}")
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return result


def dashboard_queries() -> list[tuple[str, str]]:
    """Every panel target of the Grafana dashboard: (panel title and refId, PromQL)."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    found = []
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            for macro, value in _MACROS.items():
                expr = expr.replace(macro, value)
            found.append((f"{panel['title']} [{target['refId']}]", expr))
    return found


def doc_queries() -> list[str]:
    """Every ```promql block of docs/operations.md, as Prometheus would be asked it."""
    return [" ".join(block.split()) for block in _PROMQL_BLOCK.findall(OPERATIONS_DOC.read_text())]
