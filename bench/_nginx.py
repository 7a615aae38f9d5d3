"""One nginx process with the benches' servers in its http block (nginx from the system)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from strangler.demo.processes import running

__all__ = ["nginx"]


@contextmanager
def nginx(root: Path, servers: str, *, ready_url: str) -> Iterator[int]:
    """One nginx process (one worker) with ``servers`` in its http block, in ``root``;
    yields its master's pid once ``ready_url`` answers."""
    root.mkdir()
    conf = root / "nginx.conf"
    conf.write_text(_conf(root, servers))
    args = ["nginx", "-c", str(conf), "-p", str(root), "-e", str(root / "nginx-error.log")]
    with running(args, ready_url=ready_url, log_path=root / "nginx.log") as process:
        yield process.pid


def _conf(work: Path, servers: str) -> str:
    user = "user root;" if os.geteuid() == 0 else ""
    temp = " ".join(
        f"{kind}_temp_path {work / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    return f"""{user}
worker_processes 1;
daemon off;
pid {work / "nginx.pid"};
events {{ worker_connections 1024; }}
http {{
  access_log off;
  {temp} uwsgi_temp_path {work / "uwsgi"}; scgi_temp_path {work / "scgi"};
  keepalive_requests 1000000;{servers}
}}
"""
