"""A small client for the Unleash Admin API: the calls rollout control needs, and no more.

Every request has a timeout; connection errors and 502/503/504 answers are retried a
bounded number of times (every call here is idempotent, except creating a flag, where
"already exists" counts as done). Errors of ``requests`` and refusals of the server are
translated to :class:`~strangler.exceptions.UnleashAdminError` at this boundary.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from strangler.backoff import Backoff
from strangler.exceptions import UnleashAdminError

__all__ = ["FeatureEnvironment", "UnleashAdminClient"]

_RETRIED_STATUSES = frozenset({502, 503, 504})
_BODY_EXCERPT = 300


@dataclass(frozen=True, slots=True)
class FeatureEnvironment:
    """One flag in one environment, as the Admin API shows it (active strategies only)."""

    flag: str
    environment: str
    enabled: bool
    strategies: tuple[Mapping[str, Any], ...]


class UnleashAdminClient:
    """Reads and changes one project's flags in one environment through the Admin API.

    ``api_url`` is the API base, as for the SDK (``http://unleash:4242/api``); ``token``
    is an Admin API token.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        project: str = "default",
        environment: str = "development",
        session: requests.Session | None = None,
        timeout_s: float = 5.0,
        retries: int = 2,
        backoff_s: float = 0.2,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.project = project
        self.environment = environment
        self._token = token
        self._session = session or requests.Session()
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s

    def feature_environment(self, flag: str) -> FeatureEnvironment:
        """The flag's state in the configured environment; raises UnleashAdminError."""
        feature = self._request("GET", self._feature_path(flag))
        for environment in feature.get("environments") or []:
            if environment.get("name") == self.environment:
                strategies = tuple(
                    strategy
                    for strategy in environment.get("strategies") or []
                    if not strategy.get("disabled")
                )
                return FeatureEnvironment(
                    flag, self.environment, environment.get("enabled") is True, strategies
                )
        raise UnleashAdminError(
            f"flag {flag!r} has no environment {self.environment!r} in project "
            f"{self.project!r}; set STRANGLER_UNLEASH_ENVIRONMENT to one it has",
            url=self._url(self._feature_path(flag)),
        )

    def patch_strategy(
        self, flag: str, strategy_id: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Apply JSON-patch ``operations`` to one strategy; returns the updated strategy."""
        path = f"{self._environment_path(flag)}/strategies/{quote(strategy_id, safe='')}"
        return self._request("PATCH", path, json=list(operations))

    def set_enabled(self, flag: str, enabled: bool) -> None:
        """Turn the flag on or off in the configured environment (idempotent)."""
        self._request("POST", f"{self._environment_path(flag)}/{'on' if enabled else 'off'}")

    def create_flag(self, feature: Mapping[str, Any]) -> bool:
        """Create a flag with its strategies from a flag-file feature; False if it exists.

        The flag is created disabled, then enabled in the environment when the file says so.
        """
        name = str(feature["name"])
        created = self._create_feature(feature)
        if created:
            for strategy in feature.get("strategies") or []:
                self._request(
                    "POST", f"{self._environment_path(name)}/strategies", json=dict(strategy)
                )
            self.set_enabled(name, feature.get("enabled") is True)
        return created

    def _create_feature(self, feature: Mapping[str, Any]) -> bool:
        body = {
            "name": feature["name"],
            "type": feature.get("type", "experiment"),
            "description": feature.get("description", ""),
            "impressionData": feature.get("impressionData", False),
        }
        try:
            self._request(
                "POST", f"/admin/projects/{quote(self.project, safe='')}/features", json=body
            )
        except UnleashAdminError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def _feature_path(self, flag: str) -> str:
        return f"/admin/projects/{quote(self.project, safe='')}/features/{quote(flag, safe='')}"

    def _environment_path(self, flag: str) -> str:
        return f"{self._feature_path(flag)}/environments/{quote(self.environment, safe='')}"

    def _url(self, path: str) -> str:
        return f"{self.api_url}{path}"

    def _request(self, method: str, path: str, *, json: Any = None) -> dict[str, Any]:
        url = self._url(path)
        attempt = 0
        while True:
            last_try = attempt >= self._retries
            try:
                response = self._session.request(
                    method,
                    url,
                    json=json,
                    headers={"Authorization": self._token, "Accept": "application/json"},
                    timeout=self._timeout_s,
                )
            except requests.RequestException as exc:
                if last_try:
                    raise UnleashAdminError(
                        f"Unleash Admin API at {url} did not answer after {attempt + 1} "
                        f"tries: {exc}",
                        url=url,
                    ) from exc
            else:
                if last_try or response.status_code not in _RETRIED_STATUSES:
                    return _answer(method, url, response)
            time.sleep(Backoff(self._backoff_s).delay_s(attempt + 1))
            attempt += 1


def _answer(method: str, url: str, response: requests.Response) -> dict[str, Any]:
    if response.ok:
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise UnleashAdminError(
                f"{method} {url} answered {response.status_code} with a body that is not JSON",
                url=url,
                status=response.status_code,
            ) from exc
        return body if isinstance(body, dict) else {"items": body}
    raise UnleashAdminError(
        f"{method} {url} was refused with {response.status_code}: {_refusal(response)}"
        + _hint(response.status_code),
        url=url,
        status=response.status_code,
    )


def _refusal(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:_BODY_EXCERPT] or response.reason
    if not isinstance(body, dict) or not body.get("message"):
        return response.text[:_BODY_EXCERPT]
    details = [
        str(detail["message"])
        for detail in body.get("details") or []
        if isinstance(detail, dict)
        and detail.get("message")
        and detail["message"] != body["message"]
    ]
    return "; ".join([str(body["message"]), *details])


def _hint(status: int) -> str:
    if status in (401, 403):
        return " (check STRANGLER_UNLEASH_ADMIN_TOKEN: it must be an Admin API token)"
    if status == 404:
        return " (check the flag name, STRANGLER_UNLEASH_PROJECT and STRANGLER_UNLEASH_ENVIRONMENT)"
    return ""
