"""The sidecar: pass-through proxy, order intake, SNS endpoint, admin API, metrics.

Build the app with ``strangler.sidecar.app.create_app``; ``strangler serve``
(strangler.cli.serve) runs it under gunicorn. This package imports nothing on its own
so that ``strangler serve`` can prepare Prometheus multi-process mode before
prometheus_client is loaded.
"""
