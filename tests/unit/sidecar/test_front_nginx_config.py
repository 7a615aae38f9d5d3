"""The generated front-mode nginx.conf: what it routes where, and that nginx accepts it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from strangler.cli.main import main
from strangler.exceptions import ConfigurationError
from strangler.settings import Settings
from strangler.sidecar.front_nginx import front_paths, nginx_config
from tests.helpers import require


def nginx_accepts(settings: Settings) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` on the config generated from ``settings``."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    require(nginx is not None, "nginx is not installed (apt-get install -y nginx)")
    assert nginx is not None
    paths = front_paths(settings)
    paths.root.mkdir(parents=True)
    paths.config.write_text(nginx_config(settings, paths))
    return subprocess.run(
        [nginx, "-t", "-q", "-p", str(paths.root), "-c", str(paths.config), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("upstream", "route"),
    [
        ("http://127.0.0.1:8000", "POST /orders"),
        ("https://localhost:8443/api/v1/", "PUT /api/v1/orders/"),
        ("http://[::1]:8000", "POST /"),
    ],
)
def test_nginx_accepts_the_generated_config(tmp_path: Path, upstream: str, route: str) -> None:
    """Plain, TLS-with-prefix and IPv6 upstreams, and a root order route, all pass nginx -t."""
    settings = Settings(data_dir=tmp_path, upstream_url=upstream, order_route=route)
    checked = nginx_accepts(settings)
    assert checked.returncode == 0, checked.stderr


def test_the_config_sends_only_three_things_to_python(tmp_path: Path) -> None:
    """The order route (its method only), /_strangler/ and /metrics go to the app socket."""
    settings = Settings(data_dir=tmp_path, order_route="PATCH /shop/orders")
    paths = front_paths(settings)
    config = nginx_config(settings, paths)
    assert f"server unix:{paths.app_socket};" in config
    assert r"location ~ ^\/shop\/orders/?$ {" in config
    assert "if ($request_method = PATCH) {" in config
    assert config.count("proxy_pass http://strangler_app") == 3
    assert "listen 127.0.0.1:8080;" in config


def test_an_upstream_path_prefix_is_kept_with_the_raw_uri(tmp_path: Path) -> None:
    """A prefix in STRANGLER_UPSTREAM_URL goes before the client's raw request URI."""
    settings = Settings(data_dir=tmp_path, upstream_url="http://10.0.0.5:9000/svc/")
    config = nginx_config(settings, front_paths(settings))
    assert "server 10.0.0.5:9000;" in config
    assert "proxy_pass http://strangler_upstream/svc$request_uri;" in config


def test_a_bad_upstream_url_is_named(tmp_path: Path) -> None:
    """An upstream URL that is not http(s) is refused naming STRANGLER_UPSTREAM_URL."""
    settings = Settings(data_dir=tmp_path, upstream_url="ftp://orders")
    with pytest.raises(ConfigurationError, match="STRANGLER_UPSTREAM_URL"):
        nginx_config(settings, front_paths(settings))


def test_front_config_nginx_prints_the_config(tmp_path: Path) -> None:
    """`strangler front-config nginx` prints the config serve --front nginx would run."""
    env = {"STRANGLER_DATA_DIR": str(tmp_path), "STRANGLER_UPSTREAM_URL": "http://up:81"}
    result = CliRunner().invoke(main, ["front-config", "nginx"], env=env)
    settings = Settings(data_dir=tmp_path, upstream_url="http://up:81")
    assert result.exit_code == 0, result.output
    assert result.output == nginx_config(settings, front_paths(settings))


def test_front_config_names_a_bad_setting(tmp_path: Path) -> None:
    """A bad order route is a clear error and exit code 1."""
    env = {"STRANGLER_DATA_DIR": str(tmp_path), "STRANGLER_ORDER_ROUTE": "orders"}
    result = CliRunner().invoke(main, ["front-config", "nginx"], env=env)
    assert result.exit_code == 1
    assert "STRANGLER_ORDER_ROUTE" in result.output


@pytest.mark.parametrize(
    ("upstream", "server", "sni"),
    [
        ("https://orders.example.com", "server orders.example.com:443;", True),
        ("http://orders.example.com", "server orders.example.com:80;", False),
    ],
    ids=["https", "http"],
)
def test_tls_upstreams_send_the_server_name(
    tmp_path: Path, upstream: str, server: str, sni: bool
) -> None:
    """An upstream without a port gets its scheme's; an https one gets SNI, a plain one not."""
    settings = Settings(data_dir=tmp_path, upstream_url=upstream)
    config = nginx_config(settings, front_paths(settings))
    assert (True, sni) == (server in config, "    proxy_ssl_server_name on;\n" in config)
