"""The minimal Python pass-through bench/proxy.py compares the sidecar with.

A raw WSGI app forwarding with requests (one Session, its pool sized to the worker's
threads, no per-request proxy or netrc lookups), run under the same gunicorn settings as
the sidecar. It drops hop-by-hop headers and nothing else: no X-Forwarded-*, no
streaming, no metrics, no logging.
Configured by BENCH_UPSTREAM_URL and BENCH_THREADS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import requests
from requests.adapters import HTTPAdapter

UPSTREAM = os.environ["BENCH_UPSTREAM_URL"].rstrip("/")
_session = requests.Session()
_session.trust_env = False
_session.mount("http://", HTTPAdapter(pool_maxsize=int(os.environ.get("BENCH_THREADS", "16"))))
_HOP = {
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-encoding",
    "host",
}


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Forward the request; answer with the upstream's status, headers and body."""
    headers = {
        key[5:].replace("_", "-"): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and key[5:].replace("_", "-").lower() not in _HOP
    }
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else None
    answer = _session.request(
        environ["REQUEST_METHOD"],
        UPSTREAM + environ.get("RAW_URI", "/"),
        headers=headers,
        data=body,
        allow_redirects=False,
        timeout=30,
    )
    content = answer.content
    kept = [(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP]
    start_response(
        f"{answer.status_code} {answer.reason}", [*kept, ("Content-Length", str(len(content)))]
    )
    return [content]
