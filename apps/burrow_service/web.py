"""The HTTP side both services share: /health, /ready, /metrics, served by waitress.

The HTTP threads never touch pika: they read `BrokerState` and hand work to the
messaging thread through thread-safe queues.
"""

from __future__ import annotations

import json
import threading

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from waitress.server import create_server

from burrow_service.messaging import Service

# Liveness is about the process only: restarting a pod never fixes a broker outage.
HEALTH_BODY = json.dumps({"status": "UP!"})


def json_response(body: dict, status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def create_app(service: Service) -> Flask:
    app = Flask(service.role)

    @app.get("/health")
    def health() -> Response:
        return Response(HEALTH_BODY, status=200, mimetype="application/json")

    @app.get("/ready")
    def ready() -> Response:
        state = service.state.readiness()
        if service.stopping.is_set():
            return json_response({"status": "NOT READY", "reason": "shutting down"}, 503)
        if not state.ready:
            return json_response({"status": "NOT READY", "reason": state.reason}, 503)
        return json_response({"status": "READY"}, 200)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), status=200, content_type=CONTENT_TYPE_LATEST)  # its charset once

    return app


class HttpServer:
    """waitress, a production WSGI server, on its own threads; `close` stops it."""

    def __init__(self, app: Flask, port: int, threads: int = 8, host: str = "0.0.0.0") -> None:
        self._server = create_server(
            app, host=host, port=port, threads=threads, ident=None, clear_untrusted_proxy_headers=True
        )
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.close()
