"""Fault-test clients that publish in batches (`POST /publish` with a list), counted id by id."""

from __future__ import annotations

import requests

from tests.support.faults import Clients, Ledger


class BatchClients(Clients):
    """`count` client threads posting batches of `size` new ids. Every id a batch answer reports
    confirmed goes into the ledger as accepted; after a 207 or a 503 the client waits and resends
    exactly the ids reported not accepted, and after a broken request (the producer killed, the
    connection cut) it resends the whole batch with the same ids, as the contract asks."""

    def __init__(self, ledger: Ledger, url: str, prefix: str, count: int = 4, size: int = 20) -> None:
        super().__init__(ledger, url, prefix, count)
        self.size = size

    def _run(self) -> None:
        session = requests.Session()
        pending = [self._new_id() for _ in range(self.size)]
        while not self.stop.is_set():
            try:
                response = session.post(
                    self.url + "/publish", json=[{"id": i, "payload": {}} for i in pending], timeout=15
                )
            except requests.RequestException:
                self.stop.wait(0.1)  # the producer is gone or restarting: resend the same ids
                continue
            if response.status_code not in (201, 207, 503):
                self.errors.append(f"unexpected answer {response.status_code}: {response.text[:300]}")
                return
            results = response.json()["results"]
            if [r["id"] for r in results] != pending:
                self.errors.append(f"the answer does not report the batch it was sent: {response.text[:300]}")
                return
            with self._lock:
                self.ledger.accepted.update(r["id"] for r in results if r["status"] == "confirmed")
            if response.status_code == 201:
                pending = [self._new_id() for _ in range(self.size)]
                continue
            with self._lock:
                self.ledger.rejected += 1
            if "Retry-After" not in response.headers:
                self.errors.append(f"{response.status_code} without Retry-After: {response.text[:300]}")
            pending = [r["id"] for r in results if r["status"] == "not accepted"]
            self.stop.wait(0.2)
