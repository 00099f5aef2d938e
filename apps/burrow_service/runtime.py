"""Process entry point: settings, logs, signals, the HTTP server, and the messaging loop."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable

from flask import Flask

from burrow_service import logs
from burrow_service.messaging import Service
from burrow_service.settings import Settings, SettingsError, load_settings
from burrow_service.web import HttpServer, create_app

log = logging.getLogger("burrow.runtime")


def main(role: str, make_service: Callable[[Settings], Service], routes: Callable[[Flask, Service], None] | None = None) -> int:
    """Run one service until SIGTERM/SIGINT; return the exit status."""
    logs.configure()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{role}: configuration error: {exc}", file=sys.stderr)
        return 2
    service = make_service(settings)

    def stop(signum: int, _frame: object) -> None:
        log.info("stopping: finishing in-flight work", extra={"signal": signal.Signals(signum).name})
        service.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app = create_app(service)
    if routes:
        routes(app, service)
    try:
        server = HttpServer(app, settings.http_port, settings.http_threads).start()
    except OSError as exc:
        print(f"{role}: cannot listen on HTTP_PORT={settings.http_port}: {exc.strerror}", file=sys.stderr)
        return 2
    log.info("started", extra={"role": role, "http_port": settings.http_port})
    service.run()
    server.close()
    log.info("stopped cleanly", extra={"role": role})
    return 0
