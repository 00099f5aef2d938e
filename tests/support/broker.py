"""A real RabbitMQ for the tests: RABBITMQ_URL, else 127.0.0.1:5672, else the Debian rabbitmq-server.

Never a mock. When none can be had the tests fail (they do not skip): `.ci/run`
requires the broker.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str
    password: str
    vhost: str
    controllable: bool  # rabbitmqctl can stop and start this broker
    metrics_url: str = "http://127.0.0.1:15692"  # RabbitMQ's Prometheus plugin

    def env(self) -> dict[str, str]:
        return {
            "RABBITMQ_HOST": self.host,
            "RABBITMQ_PORT": str(self.port),
            "RABBITMQ_USERNAME": self.username,
            "RABBITMQ_PASSWORD": self.password,
            "RABBITMQ_VHOST": self.vhost,
        }

    def restart(self, down_seconds: float = 2.0) -> None:
        """Stop the broker application (every connection drops), wait, start it again."""
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
        time.sleep(down_seconds)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60)
        wait_for_port(self.host, self.port, 60)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing listens on {host}:{port} after {seconds:.0f} s")


def ensure_broker() -> Broker:
    url = os.environ.get("RABBITMQ_URL")
    if url:
        parsed = urlparse(url)
        vhost = unquote(parsed.path[1:]) if len(parsed.path) > 1 else "/"
        return Broker(
            parsed.hostname or "127.0.0.1",
            parsed.port or 5672,
            unquote(parsed.username or "guest"),
            unquote(parsed.password or "guest"),
            vhost,
            controllable=False,
            metrics_url=os.environ.get("RABBITMQ_METRICS_URL", "http://127.0.0.1:15692"),
        )
    controllable = shutil.which("rabbitmqctl") is not None
    if not port_open("127.0.0.1", 5672):
        start_local_broker()
    if controllable and not port_open("127.0.0.1", 15692):
        subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_prometheus"], check=True, capture_output=True, timeout=120)
        wait_for_port("127.0.0.1", 15692, 60)
    return Broker("127.0.0.1", 5672, "guest", "guest", "/", controllable=controllable)


def start_local_broker() -> None:
    if shutil.which("rabbitmq-server") is None:
        if os.geteuid() != 0:
            raise RuntimeError("no RabbitMQ broker: set RABBITMQ_URL, start one on 127.0.0.1:5672, or run as root")
        subprocess.run(["apt-get", "install", "-y", "-qq", "rabbitmq-server"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    subprocess.Popen(["rabbitmq-server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port("127.0.0.1", 5672, 90)
    subprocess.run(["rabbitmqctl", "await_startup"], check=True, capture_output=True, timeout=90)
