"""Faults against the real broker and the real service processes, counted id by id.

Clients post new ids to the producer; a 503 or a broken request is retried with the same id,
as the publish contract asks. At the end of each scenario every id that got a 2xx must have been
processed by the consumer (read from its PROCESSED_LOG, which survives its restarts). The counts
of every scenario are printed as one table at the end of the test session.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.broker import Broker
from tests.support.faults import Clients, FaultProxy, Ledger
from tests.support.services import ServiceProcess, wait_until

# Heartbeats of 5 s: pika closes a silent connection within 2 * (5 + 5) = 20 s (see messaging.py).
HEARTBEAT = 5
DETECTION_BOUND = 2 * (HEARTBEAT + 5)
# Measured 19.1-19.2 s here: pika's check fires at the end of its second interval. The test adds
# the /ready probe's own latency and a busy machine's timer lag, and prints what it measured.
SCHEDULING_SLACK = 4
FAST = {"RABBITMQ_HEARTBEAT": str(HEARTBEAT), "RABBITMQ_HANDSHAKE_TIMEOUT": "3", "PUBLISH_WAIT_SECONDS": "2"}


@pytest.fixture
def controlled(broker: Broker) -> Broker:
    if not broker.controllable:
        pytest.fail("fault tests stop and kill the broker; run them against a node the tests start")
    return broker


@pytest.fixture
def proxy(broker: Broker) -> Iterator[FaultProxy]:
    fault = FaultProxy(broker.host, broker.port)
    yield fault
    fault.close()


@pytest.fixture
def scenario(request, tmp_path) -> Iterator[Ledger]:
    """The test's id ledger; its consumer logs to `ledger.log`. Recorded for the summary table."""
    ledger = Ledger(request.node.name, tmp_path / "processed.jsonl")
    yield ledger
    ledger.read_processed(ledger.log)
    request.node.user_properties.append(("fault_ledger", ledger.row()))


def settle(ledger: Ledger, clients: Clients, log, seconds: float = 90) -> None:
    """Stop the clients, wait until every acknowledged id is processed, then check nothing was lost."""
    clients.finish()
    assert ledger.accepted, "no publish was ever acknowledged: the scenario proved nothing"

    def all_processed() -> bool:
        ledger.read_processed(log)
        return ledger.accepted <= ledger.consumed

    try:
        wait_until(all_processed, seconds, "every acknowledged id processed")
    finally:
        ledger.read_processed(log)
    assert not ledger.lost, f"{len(ledger.lost)} acknowledged ids never processed: {sorted(ledger.lost)[:10]}"


def grow(ledger: Ledger, by: int, seconds: float, what: str) -> None:
    target = len(ledger.accepted) + by
    wait_until(lambda: len(ledger.accepted) >= target, seconds, what, interval=0.1)


def processed_count(ledger: Ledger, log) -> int:
    ledger.read_processed(log)
    return len(ledger.processed)


def unacknowledged(consumer: ServiceProcess) -> float:
    """Messages the consumer has processed (or recognised) and not yet acknowledged."""
    handled = consumer.metric("burrow_messages_consumed_total") - consumer.metric("burrow_messages_dead_lettered_total")
    return handled - consumer.metric("burrow_messages_acked_total")


def unready_within(seconds: float, *services: ServiceProcess) -> dict[str, float]:
    """Seconds until each service's /ready answered 503, measured from now, all polled together."""
    started, found = time.monotonic(), {}

    def all_unready() -> bool:
        for service in services:
            if service.role not in found and service.ready_status() == 503:
                found[service.role] = round(time.monotonic() - started, 1)
        return len(found) == len(services)

    wait_until(all_unready, seconds, f"/ready 503 on {[s.role for s in services]}", interval=0.1)
    return found


def flowing(start, ledger: Ledger, prefix: str, first: int = 100, **env: str):
    """A consumer (logging to the ledger), a producer and clients, with `first` ids acknowledged."""
    consumer = start("consumer", PROCESSED_LOG=str(ledger.log), **env)
    producer = start("producer", PUBLISH_RATE="0", **env)
    consumer.wait_ready()
    producer.wait_ready()
    clients = Clients(ledger, producer.url, prefix).start()
    grow(ledger, first, 30, "publishing")
    return consumer, producer, clients


@pytest.mark.parametrize("broker_state", ["broker-up", "broker-down"])
def test_producer_kill9_with_requests_in_flight(start, controlled, broker_state, scenario):
    scenario.scenario = f"producer kill -9, {broker_state}"
    log = scenario.log
    _consumer, producer, clients = flowing(start, scenario, "kill9")
    if broker_state == "broker-down":
        controlled.node.ctl("stop_app")
        unready_within(30, producer)
        rejected = scenario.rejected
        wait_until(lambda: scenario.rejected > rejected + 5, 20, "503s while the broker is down")
    producer.kill()  # requests in flight die with it; their clients retry the same ids
    if broker_state == "broker-down":
        controlled.node.ctl("start_app")
    restarted = start("producer", PUBLISH_RATE="0")
    restarted.wait_ready(60)
    clients.retarget(restarted.url)
    grow(scenario, 100, 60, "publishing after the producer restarted")
    settle(scenario, clients, log)
    if broker_state == "broker-down":
        assert scenario.rejected > 0


def test_broker_kill9_mid_stream_and_restart(start, controlled, scenario):
    scenario.scenario = "broker kill -9 + restart"
    log = scenario.log
    # The queues exist before the crash, as in any running system: RabbitMQ 3.10 keeps a new
    # quorum queue's registration in memory for a while, and a kill -9 within seconds of creating
    # the queue loses it (its Raft member then never starts; the broker logs "leader not known").
    # So the topology is declared and the broker restarted cleanly once, then killed mid-stream.
    setup = start("consumer", PROCESSED_LOG=str(log))
    setup.wait_ready()
    setup.terminate()
    controlled.restart()
    consumer, producer, clients = flowing(start, scenario, "crash", first=200)
    controlled.crash_and_restart()
    producer.wait_ready(90)
    consumer.wait_ready(90)
    grow(scenario, 200, 60, "publishing after the broker came back")
    settle(scenario, clients, log)


def test_consumer_kill9_mid_batch_and_restart(start, controlled, scenario):
    scenario.scenario = "consumer kill -9 + restart"
    log = scenario.log
    consumer = start("consumer", PROCESSED_LOG=str(log), PREFETCH_COUNT="50", WORK_SECONDS="0.01")
    producer = start("producer", PUBLISH_RATE="0")
    consumer.wait_ready()
    producer.wait_ready()
    clients = Clients(scenario, producer.url, "mid-batch").start()
    wait_until(lambda: processed_count(scenario, log) >= 150, 60, "consuming")
    # Killed while it holds processed (logged) messages it has not acknowledged yet (acks go in batches).
    wait_until(lambda: unacknowledged(consumer) > 0, 30, "processed messages not yet acknowledged")
    consumer.kill()  # processed and logged but not yet acknowledged: redelivered to the next one
    restarted = start("consumer", PROCESSED_LOG=str(log), PREFETCH_COUNT="50")
    restarted.wait_ready(30)
    grow(scenario, 100, 60, "publishing")
    settle(scenario, clients, log)
    # The redelivery happened and the processed-id log, which survives the restart, recognised it.
    assert restarted.metric("burrow_messages_duplicate_total") >= 1, "no redelivery reached the restarted consumer"
    assert scenario.duplicates == 0


def test_blackholed_connection_for_30s(start, controlled, proxy, scenario):
    scenario.scenario = "blackhole 30 s"
    log = scenario.log
    consumer, producer, clients = flowing(start, scenario, "blackhole", **FAST, RABBITMQ_PORT=str(proxy.port))
    proxy.set_mode("blackhole")
    began = time.monotonic()
    detected = unready_within(DETECTION_BOUND + SCHEDULING_SLACK, producer, consumer)
    print(f"\nblackhole: /ready 503 after {detected} s (bound {DETECTION_BOUND} s)")
    time.sleep(max(0.0, 30 - (time.monotonic() - began)))
    proxy.set_mode("forward")
    producer.wait_ready(60)
    consumer.wait_ready(60)
    grow(scenario, 100, 60, "publishing after the path came back")
    settle(scenario, clients, log)
    assert scenario.rejected > 0, "requests during the blackhole must have been refused"


def test_listener_that_accepts_and_never_answers(start, controlled, proxy, scenario):
    scenario.scenario = "silent listener"
    log = scenario.log
    proxy.set_mode("silent")
    via_proxy = {**FAST, "RABBITMQ_PORT": str(proxy.port)}
    consumer = start("consumer", PROCESSED_LOG=str(log), **via_proxy)
    producer = start("producer", PUBLISH_RATE="0", **via_proxy)
    wait_until(lambda: producer.ready_status() is not None and consumer.ready_status() is not None, 20, "HTTP up")
    time.sleep(8)  # more than two handshake timeouts: still not ready, still answering
    for service in (producer, consumer):
        ready = service.get("/ready")
        # Not merely "connecting": an attempt timed out and was given up (a service without connect
        # and handshake timeouts would wait on the silent listener forever and report no failure).
        assert ready.status_code == 503 and "broker unavailable: " in ready.json()["reason"], ready.text
        assert service.metric("burrow_broker_reconnects_total") >= 1, service.role
    asked = time.monotonic()
    refused = producer.post("/publish", json.dumps({"id": "silent-probe", "payload": {}}).encode())
    assert refused.status_code == 503 and refused.headers["Retry-After"], refused.text
    assert time.monotonic() - asked < 3
    proxy.set_mode("forward")
    producer.wait_ready(40)
    consumer.wait_ready(40)
    clients = Clients(scenario, producer.url, "silent").start()
    grow(scenario, 100, 30, "publishing once the listener answers")
    settle(scenario, clients, log)


def test_memory_alarm_blocks_publishers(start, controlled, scenario):
    scenario.scenario = "memory alarm"
    log = scenario.log
    consumer, producer, clients = flowing(start, scenario, "alarm", PUBLISH_WAIT_SECONDS="2")
    controlled.node.ctl("set_vm_memory_high_watermark", "0")
    try:
        unready_within(30, producer)
        assert "block" in producer.get("/ready").json()["reason"]
        asked = time.monotonic()
        refused = requests.post(producer.url + "/publish", json={"id": "alarm-probe", "payload": {}}, timeout=10)
        assert refused.status_code == 503 and refused.headers["Retry-After"], refused.text
        assert time.monotonic() - asked < 2 + 1
        accepted = len(scenario.accepted)
        time.sleep(3)
        assert len(scenario.accepted) == accepted, "a publish was acknowledged while the broker blocked publishers"
    finally:
        controlled.node.ctl("set_vm_memory_high_watermark", "0.4")
    producer.wait_ready(60)
    assert consumer.ready_status() == 200
    grow(scenario, 100, 60, "publishing after the alarm cleared")
    settle(scenario, clients, log)
    assert scenario.rejected > 0
