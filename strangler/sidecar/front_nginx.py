"""Front mode: the nginx configuration that puts nginx in the data path.

nginx listens on the public port (``STRANGLER_SERVE_HOST``/``_PORT``) and sends every
request straight to the upstream over a keep-alive pool, except three, which go to the
Python app on a unix socket: the order-creating route (``STRANGLER_ORDER_ROUTE``, that
method only, so that its answer is sent once the order is durable), ``/_strangler/`` and
``/metrics``. The config is the template ``templates/nginx.conf`` (Jinja2) rendered with
values from Settings, no IO beyond reading the template; ``strangler front-config nginx``
prints it and ``strangler serve --front nginx`` runs it (see strangler.sidecar.supervisor).

What nginx does as the Python proxy does: method, raw path, query, body, status and
headers preserved; Keep-Alive, TE, Upgrade, Expect, Proxy-Authorization and
Proxy-Connection dropped on the way in; Date and Server replaced by nginx's own;
X-Forwarded-For, -Proto and -Host appended to; bodies streamed both ways, chunked ones
too; a failed upstream is a JSON 502, a slow one a JSON 504; every answer carries
``X-Content-Type-Options: nosniff``. One difference: headers named in a request's
Connection header are not dropped (nginx cannot name them).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from strangler.exceptions import ConfigurationError
from strangler.settings import Settings
from strangler.sidecar.interception import OrderRoute

__all__ = ["FrontPaths", "front_paths", "nginx_config"]

_CONNECT_TIMEOUT_S = 5
_TEMPLATE = "nginx.conf"


@dataclass(frozen=True, slots=True)
class FrontPaths:
    """Where front mode keeps nginx's files and the Python app's socket."""

    root: Path

    @property
    def config(self) -> Path:
        """The generated nginx.conf."""
        return self.root / "nginx.conf"

    @property
    def app_socket(self) -> Path:
        """The unix socket the Python app (gunicorn) listens on."""
        return self.root / "app.sock"

    @property
    def error_log(self) -> Path:
        """nginx's error log."""
        return self.root / "nginx-error.log"

    @property
    def pid_file(self) -> Path:
        """nginx's master pid file."""
        return self.root / "nginx.pid"


def front_paths(settings: Settings) -> FrontPaths:
    """Front mode's files, under ``<data dir>/front`` (absolute, as nginx needs)."""
    return FrontPaths((settings.data_dir / "front").resolve())


def nginx_config(settings: Settings, paths: FrontPaths) -> str:
    """The whole nginx.conf for front mode; raises ConfigurationError on a bad upstream URL
    or order route (naming the setting)."""
    upstream = _Upstream.parse(settings.upstream_url)
    route = OrderRoute.parse(settings.order_route)
    return _template().render(
        paths=paths,
        upstream=upstream,
        route=route,
        order_regex=_order_regex(route.path),
        listen=f"{_bracketed(settings.serve_host)}:{settings.serve_port}",
        workers=settings.serve_workers,
        run_as_root=os.geteuid() == 0,
        timeout_s=settings.upstream_timeout_s,
        connect_timeout_s=min(settings.upstream_timeout_s, _CONNECT_TIMEOUT_S),
    )


@dataclass(frozen=True, slots=True)
class _Upstream:
    """The order service as nginx names it: ``server host:port`` and a proxy_pass target."""

    host: str
    port: int
    tls: bool
    proxy_pass: str

    @classmethod
    def parse(cls, url: str) -> _Upstream:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"STRANGLER_UPSTREAM_URL must be an http:// or https:// URL, got {url!r}"
            )
        tls = parts.scheme == "https"
        target = f"{parts.scheme}://strangler_upstream"
        # A path prefix goes before the client's raw URI; without one, nginx passes it as is.
        prefix = parts.path.rstrip("/")
        return cls(
            host=_bracketed(parts.hostname),
            port=parts.port or (443 if tls else 80),
            tls=tls,
            proxy_pass=f"{target}{prefix}$request_uri" if prefix else target,
        )


def _order_regex(path: str) -> str:
    """The location regex of the order path, with or without a trailing slash."""
    if path == "/":
        return "^/$"
    return "^" + re.escape(path.rstrip("/")).replace("/", "\\/") + "/?$"


def _bracketed(host: str) -> str:
    """An IPv6 address in brackets, as nginx's listen and server directives want it."""
    return f"[{host}]" if ":" in host else host


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("strangler.sidecar", "templates"),
        # An nginx config, not HTML: escaping would corrupt it. Values come from Settings.
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(_TEMPLATE)
