"""Fault injection for the services' tests: a TCP proxy that can go silent, and an id ledger.

`FaultProxy` sits between a service and the real broker. In `forward` mode it copies bytes
both ways. In `blackhole` mode it stops copying without closing anything, the way a frozen
node, a dropped security-group rule or an expired NAT entry looks to a client: the socket stays
open and nothing arrives. In `silent` mode it also accepts new connections and never answers
them (a listener that completes TCP but never the AMQP handshake).

`Ledger` counts ids per scenario: sent, answered 2xx, consumed (unique), duplicates, lost. Every
fault test records its ledger's row as a user property (`fault_ledger`), which reaches the session from
any worker, and the session prints them as one table.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

MODES = ("forward", "blackhole", "silent")


class FaultProxy:
    """A TCP proxy on 127.0.0.1 to `target`; `mode` switches faults on and off while it runs."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._mode = "forward"
        self._closed = threading.Event()
        self._held: list[socket.socket] = []  # accepted while not forwarding; never answered
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        self._mode = mode
        if mode == "forward":  # connections accepted during the fault were never answered: drop them
            with self._lock:
                held, self._held = self._held, []
            for sock in held:
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._mode != "forward":
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        try:
            while not self._closed.is_set():
                if self._mode != "forward":
                    time.sleep(0.05)  # hold both sockets open and move nothing
                    continue
                readable, _, _ = select.select(list(peer), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.set_mode("forward")


@dataclass
class Ledger:
    """What happened to every id of one scenario."""

    scenario: str
    log: Path  # the consumer's PROCESSED_LOG, appended to across its restarts
    sent: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)  # answered 2xx
    rejected: int = 0  # 503 answers (each later retried with the same id)
    processed: list[str] = field(default_factory=list)  # every processing, in order (from PROCESSED_LOG)

    def read_processed(self, *logs: Path) -> None:
        self.processed = []
        for path in logs:
            if path.exists():
                for line in path.read_text().splitlines():
                    try:
                        self.processed.append(json.loads(line)["id"])
                    except (ValueError, KeyError):
                        continue  # blank, or cut short by a kill -9 mid-write

    @property
    def consumed(self) -> set[str]:
        return set(self.processed)

    @property
    def duplicates(self) -> int:
        """Ids processed more than once (each extra processing counts)."""
        return sum(n - 1 for n in Counter(self.processed).values() if n > 1)

    @property
    def lost(self) -> set[str]:
        """Ids the producer acknowledged that were never processed."""
        return self.accepted - self.consumed

    def row(self) -> tuple:
        return (self.scenario, len(self.sent), len(self.accepted), self.rejected, len(self.consumed),
                self.duplicates, len(self.lost))


HEADER = ("scenario", "sent", "2xx", "503s", "consumed", "duplicates", "lost")


def results_table(results: list[tuple]) -> str:
    rows = [HEADER, *results]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


class Clients:
    """`count` client threads posting new ids to the producer; a 503 or a broken request is retried
    with the same id (what the contract asks of clients) until it gets a 2xx or the clients stop."""

    def __init__(self, ledger: Ledger, url: str, prefix: str, count: int = 4) -> None:
        self.ledger, self.url, self.prefix = ledger, url, prefix
        self.stop = threading.Event()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._next = 0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def start(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def retarget(self, url: str) -> None:
        self.url = url  # a restarted producer listens elsewhere

    def _new_id(self) -> str:
        with self._lock:
            self._next += 1
            message_id = f"{self.prefix}-{self._next}"
            self.ledger.sent.add(message_id)
            return message_id

    def _run(self) -> None:
        session = requests.Session()
        message_id = self._new_id()
        while not self.stop.is_set():
            try:
                response = session.post(self.url + "/publish", json={"id": message_id, "payload": {}}, timeout=15)
            except requests.RequestException:
                time.sleep(0.1)  # the producer is gone or restarting: retry the same id
                continue
            if response.status_code == 201:
                with self._lock:
                    self.ledger.accepted.add(message_id)
                message_id = self._new_id()
            elif response.status_code == 503:
                with self._lock:
                    self.ledger.rejected += 1
                if "Retry-After" not in response.headers:
                    self.errors.append(f"503 without Retry-After: {response.text}")
                self.stop.wait(0.2)
            else:
                self.errors.append(f"unexpected answer {response.status_code}: {response.text}")
                return

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(20)
        assert not self.errors, self.errors[:5]
