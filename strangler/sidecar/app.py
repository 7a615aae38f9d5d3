"""The sidecar app factory: the /_strangler/ API in Flask, the proxy beside it.

``create_app`` returns a Flask app whose ``wsgi_app`` is a thin dispatcher: requests for
``/_strangler/...`` and ``/metrics`` go through Flask, except ``POST
/_strangler/notifications`` (a lean WSGI callable: the intake is the hot write path);
everything else goes straight to the lean proxy callable, so proxied requests pay
nothing for Flask. Every part is injectable;
what is not given is built from the settings. Background work (the runtime's workers)
starts with ``sidecar_state(app).start()``; ``strangler serve`` does that in each
gunicorn worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask, Response, g, request

from strangler.ledger.engine import in_memory
from strangler.settings import Settings
from strangler.sidecar import (
    admin,
    dashboard,
    gate_endpoint,
    intake,
    ops,
    reads,
    report_endpoint,
    sns_endpoint,
)
from strangler.sidecar.access_log import AccessLog
from strangler.sidecar.auth import AdminToken
from strangler.sidecar.dispatch import SidecarDispatch
from strangler.sidecar.errors import register_error_handlers
from strangler.sidecar.intake import NOTIFICATIONS_PATH
from strangler.sidecar.intake_wsgi import NotificationEndpoint
from strangler.sidecar.interception import FieldMapping, OrderRoute
from strangler.sidecar.metrics import SidecarMetrics
from strangler.sidecar.proxy import ProxyApp, UpstreamPool, make_upstream_pool
from strangler.sidecar.proxy_intake import InterceptedAnswers
from strangler.sidecar.readiness import Readiness, tcp_probe
from strangler.sidecar.report_process import ReportProcess, ThreadReports
from strangler.sidecar.seams import (
    ReportRunner,
    RolloutController,
    SidecarLedger,
    SidecarRuntime,
)
from strangler.sidecar.sns import CertFetcher, SnsVerifier
from strangler.sidecar.sns_http import HttpCertFetcher, HttpSubscriptionConfirmer
from strangler.sidecar.state import EXTENSION, SidecarState, sidecar_state

__all__ = ["create_app"]

TEE_LIMIT = 1024 * 1024


def create_app(
    settings: Settings,
    *,
    runtime: SidecarRuntime | None = None,
    rollout: RolloutController | None = None,
    upstream_pool: UpstreamPool | None = None,
    cert_fetcher: CertFetcher | None = None,
    subscription_confirmer: Callable[[str], None] | None = None,
    metrics: SidecarMetrics | None = None,
    readiness_probe: Callable[[str], str | None] | None = None,
) -> Flask:
    """Build the sidecar WSGI app; nothing starts until ``sidecar_state(app).start()``.

    Raises ConfigurationError when STRANGLER_ORDER_ROUTE or STRANGLER_ORDER_FIELDS is wrong.
    """
    route = OrderRoute.parse(settings.order_route)
    mapping = FieldMapping.parse(settings.order_fields)
    built = runtime is None
    runtime = runtime if runtime is not None else _runtime_from(settings)
    metrics = metrics if metrics is not None else SidecarMetrics()
    readiness = Readiness(
        runtime.ledger, runtime.flags, settings.upstream_url, probe=readiness_probe or tcp_probe
    )
    metrics.watch(runtime.ledger, runtime.flags, readiness=readiness)
    state = SidecarState(
        settings=settings,
        runtime=runtime,
        rollout=rollout if rollout is not None else _rollout_from(settings, runtime.ledger),
        metrics=metrics,
        access_log=AccessLog(),
        admin_token=AdminToken(settings.admin_token),
        sns=SnsVerifier(
            topic_arns=settings.sns_topic_arns, cert_fetcher=cert_fetcher or HttpCertFetcher()
        ),
        confirm_subscription=subscription_confirmer or HttpSubscriptionConfirmer(),
        readiness=readiness,
        reports=_reports_for(settings, runtime, built=built),
    )
    proxy = ProxyApp(
        settings.upstream_url,
        pool=upstream_pool
        or make_upstream_pool(settings.upstream_url, maxsize=settings.serve_threads),
        timeout_s=settings.upstream_timeout_s,
        metrics=metrics,
        access_log=state.access_log,
        intercept=route.matches,
        on_answer=InterceptedAnswers(
            mapping, runtime.router, runtime.ledger, metrics, tee_limit=TEE_LIMIT
        ),
        tee_limit=TEE_LIMIT,
    )
    return _flask_app(state, proxy)


def _reports_for(settings: Settings, runtime: SidecarRuntime, *, built: bool) -> ReportRunner:
    """A child process at a lower CPU priority, unless no other process can open the ledger."""
    url = settings.effective_ledger_url
    if built and not in_memory(url):
        return ReportProcess(url, log_format=settings.log_format)
    return ThreadReports(runtime)


def _flask_app(state: SidecarState, proxy: ProxyApp) -> Flask:
    """The /_strangler/ API in Flask, with ``proxy`` taking every other path."""
    app = Flask("strangler.sidecar", static_folder=None)
    app.extensions[EXTENSION] = state
    parts = (dashboard, ops, reads, report_endpoint, gate_endpoint, intake, sns_endpoint, admin)
    for part in parts:
        app.register_blueprint(part.blueprint)
    register_error_handlers(app)
    app.before_request(_started)
    app.after_request(_log_request)
    lean = {("POST", NOTIFICATIONS_PATH): NotificationEndpoint(state)}
    app.wsgi_app = SidecarDispatch(app.wsgi_app, proxy, lean=lean)  # type: ignore[method-assign]
    return app


def _started() -> None:
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    sidecar_state().access_log.record(
        method=request.method,
        path=request.path,
        status=response.status_code,
        duration_s=time.perf_counter() - g.get("started", time.perf_counter()),
        order_id=g.get("order_id"),
    )
    return response


def _runtime_from(settings: Settings) -> SidecarRuntime:
    from strangler.routing.runtime import Runtime  # noqa: PLC0415  (heavy; only when not injected)

    return Runtime.from_settings(settings)


def _rollout_from(settings: Settings, ledger: SidecarLedger) -> RolloutController:
    """The settings' controller, recording its changes on the sidecar's ledger timeline;
    going live asks the gate about that ledger."""
    from strangler.rollout.controller import rollout_controller_from_settings  # noqa: PLC0415
    from strangler.rollout.evidence import comparison_evidence  # noqa: PLC0415

    controller = rollout_controller_from_settings(settings, timeline=ledger)
    controller.evidence = lambda: comparison_evidence(controller, ledger)
    return controller
