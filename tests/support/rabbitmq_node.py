"""A dedicated RabbitMQ node for one test run: its own node name, ports, data directory,
cookie and enabled-plugins file, so a run never shares a broker with anything else and
always starts from nothing.

    python -m tests.support.rabbitmq_node start DIR   # prints `export …` lines for the shell
    python -m tests.support.rabbitmq_node stop DIR    # stops the node and removes DIR

`.ci/run` uses the command line; `tests/support/broker.py` uses `RabbitMqNode` directly when
no broker is named. The Debian package's scripts (`rabbitmq-server`, `rabbitmqctl`) are run
directly, not through the wrapper that switches to the machine's shared `rabbitmq` user.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "node.json"
SCRIPT_DIRS = ("/usr/lib/rabbitmq/bin",)  # Debian keeps the unwrapped scripts here


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks outgoing connections' local ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        with socket.socket(family) as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                if family == socket.AF_INET6 and exc.errno == errno.EAFNOSUPPORT:
                    continue
                return False
    return True


def free_port() -> int:
    """A free TCP port *below* the ephemeral range.

    A node that restarts must get its ports back. A port from the ephemeral range can meanwhile
    become the local port of any outgoing connection (a client reconnecting to the restarting
    node, say), and the node then fails to listen (eaddrinuse): found by running the suite twice
    against one node.
    """
    low, _ = ephemeral_ports()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates[:500]:
        if _bindable(port):
            return port
    raise RuntimeError(f"no free TCP port below {low}")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def rabbitmq_script(name: str) -> str:
    """The unwrapped RabbitMQ script `name`, or the one on PATH; installs Debian's package as root."""
    for directory in SCRIPT_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("RabbitMQ is not installed: install Debian's rabbitmq-server, or set RABBITMQ_URL")
    subprocess.run(["apt-get", "install", "-y", "-qq", "rabbitmq-server"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, capture_output=True)
    return rabbitmq_script(name)


@dataclass(frozen=True)
class RabbitMqNode:
    """One node's identity; everything it writes lives under `home`."""

    home: str
    nodename: str
    amqp_port: int
    dist_port: int
    metrics_port: int

    @classmethod
    def create(cls, home: Path, plugins: tuple[str, ...] = (), config: str = "") -> RabbitMqNode:
        """A node under `home` with the Prometheus plugin and `plugins`; `config` is appended to its
        rabbitmq.conf."""
        home.mkdir(parents=True, exist_ok=True)
        node = cls(str(home.resolve()), f"burrow-test-{uuid.uuid4().hex[:10]}@localhost",
                   free_port(), free_port(), free_port())
        (home / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}\n"
            f"prometheus.tcp.port = {node.metrics_port}\n"
            "prometheus.tcp.ip = 127.0.0.1\n"
            + config
        )
        (home / "enabled_plugins").write_text(f"[{','.join(('rabbitmq_prometheus', *plugins))}].\n")
        (home / "rabbitmq-env.conf").write_text("")  # never read the machine's /etc/rabbitmq/rabbitmq-env.conf
        (home / STATE_FILE).write_text(json.dumps(asdict(node)))
        return node

    @classmethod
    def load(cls, home: Path) -> RabbitMqNode:
        return cls(**json.loads((home / STATE_FILE).read_text()))

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def env(self) -> dict[str, str]:
        """What `rabbitmq-server` and `rabbitmqctl` need to find this node and only this node."""
        home = Path(self.home)
        return {
            **os.environ,
            "HOME": self.home,  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        }

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """Run `rabbitmqctl -n <node> …` against this node; returns its output."""
        result = subprocess.run([rabbitmq_script("rabbitmqctl"), "-n", self.nodename, *args], env=self.env(),
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result.stdout

    def start(self, seconds: float = 120) -> None:
        log = (Path(self.home) / "server.log").open("ab")
        subprocess.Popen([rabbitmq_script("rabbitmq-server")], env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, cwd=self.home)
        deadline = time.monotonic() + seconds
        while not port_open("127.0.0.1", self.amqp_port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.nodename} did not start; see {self.home}/server.log")
            time.sleep(0.5)
        self.ctl("await_startup", timeout=seconds)
        while not port_open("127.0.0.1", self.metrics_port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.nodename}: Prometheus plugin not listening")
            time.sleep(0.5)

    def kill(self, seconds: float = 60) -> None:
        """SIGKILL the node's Erlang VM: a crash, with no clean shutdown and nothing flushed on the way out."""
        os.kill(int((Path(self.home) / "rabbitmq.pid").read_text().strip()), signal.SIGKILL)
        deadline = time.monotonic() + seconds
        while port_open("127.0.0.1", self.amqp_port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {self.nodename} still listens after SIGKILL")
            time.sleep(0.2)

    def halt(self) -> None:
        """Stop the node cleanly and keep its data (it can be started again)."""
        self.ctl("stop", str(Path(self.home) / "rabbitmq.pid"), timeout=60)

    def stop(self) -> None:
        """Stop the node (if it runs) and remove everything it wrote."""
        try:
            # With the pid file, rabbitmqctl returns only once the node's process has exited.
            self.ctl("stop", str(Path(self.home) / "rabbitmq.pid"), timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pid_file = Path(self.home) / "rabbitmq.pid"
            if pid_file.exists():
                with contextlib.suppress(ValueError, ProcessLookupError):
                    os.kill(int(pid_file.read_text().strip()), 9)
        shutil.rmtree(self.home, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tests.support.rabbitmq_node start|stop DIR", file=sys.stderr)
        return 2
    home = Path(argv[1])
    if argv[0] == "stop":
        if (home / STATE_FILE).exists():
            RabbitMqNode.load(home).stop()
        return 0
    node = RabbitMqNode.create(home)
    node.start()
    print(f"export RABBITMQ_URL={node.url}")
    print(f"export RABBITMQ_METRICS_URL={node.metrics_url}")
    print(f"export BURROW_RABBITMQ_NODE_HOME={node.home}")
    print(f"echo 'ci: RabbitMQ node {node.nodename} on 127.0.0.1:{node.amqp_port} (data in {node.home})'")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
