"""The fault tests' counting for batch publishing: every id a batch answer reported confirmed is
consumed at least once, through a producer kill -9 with batches in flight, a broker kill -9 and a
30 s blackhole. The clients resend exactly what was not confirmed (or, after a broken request, the
whole batch with the same ids). The ledgers join the fault tests' table at the end of the session."""

from __future__ import annotations

import time

from tests.apps.test_faults import (  # noqa: F401 - fixtures, used as test arguments
    DETECTION_BOUND,
    FAST,
    SCHEDULING_SLACK,
    controlled,
    grow,
    proxy,
    scenario,
    settle,
    unready_within,
)
from tests.support.batch_clients import BatchClients
from tests.support.faults import Ledger

SIZE = 25  # messages per batch; 4 clients keep 100 messages in flight


def batch_flowing(start, ledger: Ledger, prefix: str, first: int = 200, **env: str):
    """A consumer (logging to the ledger), a producer and batch clients, with `first` ids confirmed."""
    consumer = start("consumer", PROCESSED_LOG=str(ledger.log), **env)
    producer = start("producer", PUBLISH_RATE="0", **env)
    consumer.wait_ready()
    producer.wait_ready()
    clients = BatchClients(ledger, producer.url, prefix, size=SIZE).start()
    grow(ledger, first, 60, "batch publishing")
    return consumer, producer, clients


def test_producer_kill9_with_batches_in_flight(start, controlled, scenario):  # noqa: F811
    scenario.scenario = "batches: producer kill -9"
    _consumer, producer, clients = batch_flowing(start, scenario, "bkill9")
    producer.kill()  # batches in flight die with it; their clients resend the same ids
    restarted = start("producer", PUBLISH_RATE="0")
    restarted.wait_ready(60)
    clients.retarget(restarted.url)
    grow(scenario, 200, 60, "batch publishing after the producer restarted")
    settle(scenario, clients, scenario.log)


def test_broker_kill9_with_batches_in_flight(start, controlled, scenario):  # noqa: F811
    scenario.scenario = "batches: broker kill -9 + restart"
    # The queues exist (and survived a clean restart) before the crash: see test_faults.py.
    setup = start("consumer", PROCESSED_LOG=str(scenario.log))
    setup.wait_ready()
    setup.terminate()
    controlled.restart()
    consumer, producer, clients = batch_flowing(start, scenario, "bcrash")
    controlled.crash_and_restart()
    producer.wait_ready(90)
    consumer.wait_ready(90)
    grow(scenario, 200, 60, "batch publishing after the broker came back")
    settle(scenario, clients, scenario.log)


def test_blackholed_connection_for_30s_with_batches(start, controlled, proxy, scenario):  # noqa: F811
    scenario.scenario = "batches: blackhole 30 s"
    consumer, producer, clients = batch_flowing(start, scenario, "bhole", **FAST, RABBITMQ_PORT=str(proxy.port))
    proxy.set_mode("blackhole")
    began = time.monotonic()
    unready_within(DETECTION_BOUND + SCHEDULING_SLACK, producer, consumer)
    time.sleep(max(0.0, 30 - (time.monotonic() - began)))
    proxy.set_mode("forward")
    producer.wait_ready(60)
    consumer.wait_ready(60)
    grow(scenario, 200, 60, "batch publishing after the path came back")
    settle(scenario, clients, scenario.log)
    assert scenario.rejected > 0, "batches during the blackhole must have been answered not accepted"
