"""Run the producer and consumer as separate processes, the way Kubernetes runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.rabbitmq_node import free_port

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "apps"


class ServiceProcess:
    """One service process with its own HTTP port; stopped (SIGKILL as last resort) on `close`."""

    def __init__(self, role: str, env: dict[str, str], log_dir: Path) -> None:
        self.role = role
        self.port = free_port()
        self.log_path = log_dir / f"{role}-{self.port}.log"
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, **env, "HTTP_PORT": str(self.port), "PYTHONPATH": str(APPS)}
        self.process = subprocess.Popen(
            [sys.executable, str(APPS / role / f"{role}.py")], env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=5)

    def post(self, path: str, data: bytes, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(self.url + path, data=data, headers={"Content-Type": content_type, **(headers or {})},
                             timeout=10)

    def wait_ready(self, seconds: float = 30) -> None:
        try:
            wait_until(lambda: self._status("/ready") == 200, seconds, f"{self.role} ready")
        except AssertionError as exc:  # say why: what /ready answers and the service's last log lines
            try:
                answer = self.get("/ready").text.strip()
            except requests.RequestException as error:
                answer = f"no answer ({type(error).__name__})"
            tail = "\n".join(self.logs().splitlines()[-25:])
            raise AssertionError(f"{exc}; /ready says: {answer}\nlast lines of {self.log_path.name}:\n{tail}") from None

    def _status(self, path: str) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.role} exited with {self.process.returncode}:\n{self.logs()}")
        try:
            return self.get(path).status_code
        except requests.RequestException:
            return None

    def ready_status(self) -> int | None:
        return self._status("/ready")

    def metric(self, name: str) -> float:
        """Sum of a metric's samples (all label sets) from /metrics."""
        total = 0.0
        for family in text_string_to_metric_families(self.get("/metrics").text):
            for sample in family.samples:
                if sample.name == name:
                    total += sample.value
        return total

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no signal handler, no drain, nothing flushed (an OOM kill or a lost node)."""
        self.process.kill()
        self.process.wait(30)

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def wait_until(check, seconds: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")
