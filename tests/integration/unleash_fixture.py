"""A real Unleash server for integration tests: npm ``unleash-server`` on loopback.

Started as a node process (``unleash_server.mjs``) against a fresh PostgreSQL database,
with an admin and a client (backend) API token created at start through Unleash's
``INIT_*_API_TOKENS`` variables. Without node, the npm packages or PostgreSQL the tests
skip (and fail under CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import (
    REPO_ROOT,
    free_port,
    fresh_pg_database,
    require,
    require_node,
    running_process,
)

LAUNCHER = Path(__file__).with_name("unleash_server.mjs")
ADMIN_TOKEN = "*:*.strangler-integration-admin"
CLIENT_TOKEN = "default:development.strangler-integration-client"
STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class UnleashServer:
    """Where the test server listens and the tokens it accepts."""

    base_url: str
    admin_token: str = ADMIN_TOKEN
    client_token: str = CLIENT_TOKEN

    @property
    def api_url(self) -> str:
        """The API base the SDK and STRANGLER_UNLEASH_URL take."""
        return f"{self.base_url}/api"


@contextmanager
def running_unleash(log_dir: Path) -> Iterator[UnleashServer]:
    """Run unleash-server on a fresh database until the block ends; drop the database after."""
    node = require_node()
    require(
        (REPO_ROOT / "node_modules" / "unleash-server" / "package.json").is_file(),
        "node_modules/unleash-server is missing: run `make test` (npm ci)",
    )
    with _fresh_database() as database_url:
        port = free_port()
        env = {
            "UNLEASH_TEST_DATABASE_URL": database_url,
            "UNLEASH_TEST_PORT": str(port),
            "INIT_ADMIN_API_TOKENS": ADMIN_TOKEN,
            "INIT_BACKEND_API_TOKENS": CLIENT_TOKEN,
            "SEND_TELEMETRY": "false",
            "CHECK_VERSION": "false",
            "LOG_LEVEL": "warn",
        }
        base_url = f"http://127.0.0.1:{port}"
        with running_process(
            [node, str(LAUNCHER)],
            ready_url=f"{base_url}/health",
            env=env,
            timeout=STARTUP_TIMEOUT_S,
            log_path=log_dir / "unleash-server.log",
        ):
            yield UnleashServer(base_url)


@contextmanager
def _fresh_database() -> Iterator[str]:
    with fresh_pg_database("strangler_unleash") as url:
        yield url.set(drivername="postgresql").render_as_string(hide_password=False)
