"""Batch publishing (`POST /publish` with a JSON list): the contract against the real producer and broker.

Every message of a batch is reported on its own: confirmed only after the broker's confirm, else
"not accepted" with a reason and `Retry-After`; a batch with any invalid message is refused whole,
before anything is published.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.apps.conftest import open_channel, processed_ids, queue_depth
from tests.support.broker import Broker
from tests.support.services import ROOT, wait_until
from tests.support.shell_examples import bash_block, run_example

MAX_BATCH = 500


def batch(ids: list[str]) -> bytes:
    return json.dumps([{"id": message_id, "payload": {"n": n}} for n, message_id in enumerate(ids)]).encode()


def queued_ids(broker: Broker, queue: str, take: bool = False) -> list[str]:
    """The ids in `queue`, read without taking them (unacknowledged gets go back on close) unless `take`."""
    ids = []
    with open_channel(broker) as channel:
        while True:
            method, properties, _body = channel.basic_get(queue, auto_ack=take)
            if method is None:
                return ids
            ids.append(properties.message_id)


def cap(broker: Broker, queue: str, length: int) -> None:
    """A policy that lets `queue` hold `length` messages and makes the broker nack any publish beyond.

    (A quorum queue whose limit is removed keeps refusing until restarted, RabbitMQ 3.10: the limit is raised instead.)
    """
    if not broker.controllable:
        pytest.fail("this test sets a policy on the broker; run it against a node the tests start")
    definition = json.dumps({"max-length": length, "overflow": "reject-publish"})
    broker.node.ctl(
        "set_policy", "-p", broker.vhost, f"cap-{queue}", f"^{re.escape(queue)}$", definition, "--apply-to", "queues"
    )


def test_a_batch_is_confirmed_message_by_message_and_lands_in_the_queue_once(start, broker, topology):
    producer = start("producer", PUBLISH_RATE="0")
    producer.wait_ready()
    ids = [f"b-{i}" for i in range(MAX_BATCH)]
    response = producer.post("/publish", batch(ids))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["status"], answer["confirmed"], answer["not_accepted"]) == ("confirmed", MAX_BATCH, 0)
    assert answer["results"] == [{"id": i, "status": "confirmed"} for i in ids]  # in the order sent
    assert "Retry-After" not in response.headers
    assert sorted(queued_ids(broker, topology["RABBITMQ_QUEUE"])) == sorted(ids)
    assert producer.metric("burrow_messages_confirmed_total") == MAX_BATCH


def test_a_partly_accepted_batch_says_exactly_what_to_resend(start, broker, topology):
    """The broker nacks what does not fit the queue: those, and only those, are reported not accepted."""
    from producer.producer import REASONS, RETRY_AFTER

    queue = topology["RABBITMQ_QUEUE"]
    producer = start("producer", PUBLISH_RATE="0", PUBLISH_WAIT_SECONDS="1")
    producer.wait_ready()
    ids = [f"part-{i}" for i in range(20)]
    cap(broker, queue, 3)
    response = producer.post("/publish", batch(ids))
    assert response.status_code == 207, response.text
    answer = response.json()
    confirmed = [r["id"] for r in answer["results"] if r["status"] == "confirmed"]
    rest = [r["id"] for r in answer["results"] if r["status"] == "not accepted"]
    assert [r["id"] for r in answer["results"]] == ids
    assert confirmed and rest, answer
    assert (answer["status"], answer["confirmed"], answer["not_accepted"]) == (
        "partly confirmed",
        len(confirmed),
        len(rest),
    )
    # Nacked ones say so (and ask for the longest wait); ones never sent timed out; one being resent
    # when the wait ended is in flight (the lanes wait 0.5 s between attempts, so rarely).
    reasons = {r["reason"] for r in answer["results"] if r["status"] != "confirmed"}
    assert REASONS["nacked"] in reasons, reasons
    assert reasons <= {REASONS["nacked"], REASONS["timeout"], REASONS["in_flight"]}, reasons
    assert response.headers["Retry-After"] == str(RETRY_AFTER["nacked"])
    time.sleep(1.5)  # nothing not accepted is published later on the producer's own initiative
    assert sorted(queued_ids(broker, queue)) == sorted(confirmed)
    again = producer.post("/publish", batch(rest))  # still full: nothing confirmed, 503
    assert again.status_code == 503, again.text
    assert again.json()["confirmed"] == 0 and again.json()["status"] == "not accepted"
    assert again.headers["Retry-After"]
    cap(broker, queue, 1000)
    # A quorum queue tells its publishers it takes messages again once one is taken off it below
    # its limit: the confirmed ones are consumed here, then the client resends exactly the rest.
    taken = queued_ids(broker, queue, take=True)
    assert sorted(taken) == sorted(confirmed)
    taken += queued_ids(broker, queue, take=True)  # nothing else arrived meanwhile
    deadline = time.monotonic() + 30
    while (retried := producer.post("/publish", batch(rest))).status_code != 201 and time.monotonic() < deadline:
        assert retried.status_code in (207, 503), retried.text
        rest = [r["id"] for r in retried.json()["results"] if r["status"] == "not accepted"]
        time.sleep(int(retried.headers["Retry-After"]))
    assert retried.status_code == 201, retried.text
    assert Counter(taken + queued_ids(broker, queue)) == Counter(ids)  # every id once: none lost, none twice


def test_a_batch_while_the_broker_is_unreachable_gets_503_per_message(start):
    producer = start("producer", PUBLISH_RATE="0", RABBITMQ_PORT="1")
    wait_until(lambda: producer.ready_status() == 503, 20, "HTTP up, broker unreachable")
    response = producer.post("/publish", batch(["down-1", "down-2"]))
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert [r["reason"] for r in response.json()["results"]] == ["the broker is unreachable"] * 2


def message(i: int, **extra) -> dict:
    return {"id": f"m-{i}", "payload": {"n": i}, **extra}


BAD = [
    # (what, body, content type, status, text in "error", indexes listed in "invalid")
    ("empty list", b"[]", "application/json", 400, "an empty list publishes nothing", None),
    (
        "over the limit",
        json.dumps([message(i) for i in range(MAX_BATCH + 1)]).encode(),
        "application/json",
        413,
        "501 messages exceed the limit of 500",
        None,
    ),
    ("a string", b'"hello"', "application/json", 400, "must be a JSON object (one message) or a JSON list", None),
    ("a number", b"42", "application/json", 400, "must be a JSON object (one message) or a JSON list", None),
    (
        "mixed valid and invalid",
        json.dumps(
            [message(0), {"id": "m-1"}, message(2), 7, message(4, extra=1), {"id": 5, "payload": 1}, {"payload": 1}]
        ).encode(),
        "application/json",
        400,
        "5 of 7 messages are invalid; nothing was published",
        [1, 3, 4, 5, 6],
    ),
    (
        "duplicate ids",
        json.dumps([message(0), message(1), message(0), message(1)]).encode(),
        "application/json",
        400,
        "duplicate id (also at index 0)",
        [2, 3],
    ),
    (
        "a message over MAX_MESSAGE_BYTES",
        json.dumps([message(0), {"id": "big", "payload": "x" * 2000}]).encode(),
        "application/json",
        400,
        "exceeds 1024 (MAX_MESSAGE_BYTES)",
        [1],
    ),
    (
        "2 MiB body",
        json.dumps([{"id": f"x{i}", "payload": "x" * 1024} for i in range(2048)]).encode(),
        "application/json",
        413,
        "body exceeds 1048576 bytes",
        None,
    ),
    ("nested 2000 deep", b"[" * 2000 + b"]" * 2000, "application/json", 400, "not valid JSON: nested too deeply", None),
    (
        "a null id",
        json.dumps([message(0), {"id": None, "payload": 1}]).encode(),
        "application/json",
        400,
        "index 1: 'id' must be a non-empty string",
        [1],
    ),
    (
        "wrong content type",
        json.dumps([message(0)]).encode(),
        "text/plain",
        415,
        "Content-Type must be application/json",
        None,
    ),
]


def test_every_bad_batch_gets_a_clear_4xx_and_publishes_nothing(start, broker, topology):
    producer = start("producer", PUBLISH_RATE="0", MAX_MESSAGE_BYTES="1024")
    producer.wait_ready()
    for what, body, content_type, status, text, invalid in BAD:
        response = producer.post("/publish", body, content_type=content_type)
        assert response.status_code == status, (what, response.status_code, response.text[:300])
        answer = response.json()
        assert text in answer["error"], (what, answer["error"])
        assert "\n" not in answer["error"]
        if invalid is None:
            assert "invalid" not in answer, what
        else:
            assert [problem["index"] for problem in answer["invalid"]] == invalid, (what, answer["invalid"])
            assert all(problem["error"] for problem in answer["invalid"]), what
    assert producer.metric("burrow_messages_published_total") == 0
    assert queue_depth(broker, topology["RABBITMQ_QUEUE"]) == 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


CLIENTS, BATCHES, SIZE = 200, 2, 25


def test_200_concurrent_batch_clients_are_all_answered_without_500_and_memory_stays_bounded(start, tmp_path):
    log = tmp_path / "processed.jsonl"
    consumer = start("consumer", PROCESSED_LOG=str(log), PREFETCH_COUNT="50")
    producer = start("producer", PUBLISH_RATE="0")
    consumer.wait_ready()
    producer.wait_ready()
    assert producer.post("/publish", batch(["warm-up"])).status_code == 201  # imports and pools before the reading
    before = rss_kib(producer.process.pid)
    answers: Counter[int] = Counter()
    confirmed: set[str] = set()
    failures: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(CLIENTS)

    def client(c: int) -> None:
        go.wait()  # all 200 at once
        for b in range(BATCHES):
            ids = [f"load-{c}-{b}-{i}" for i in range(SIZE)]
            try:
                response = producer.post("/publish", batch(ids), headers={"Connection": "close"})
            except Exception as exc:  # noqa: BLE001 - an unanswered request is the failure counted here
                with lock:
                    failures.append(f"client {c}: {type(exc).__name__}: {exc}")
                continue
            with lock:
                answers[response.status_code] += 1
                if response.status_code in (201, 207):
                    confirmed.update(r["id"] for r in response.json()["results"] if r["status"] == "confirmed")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    after = rss_kib(producer.process.pid)
    print(
        f"\n{CLIENTS} concurrent batch clients x {BATCHES} batches of {SIZE}: answers {dict(answers)}; "
        f"producer RSS {before} KiB before, {after} KiB after ({after - before:+d} KiB)"
    )
    assert not failures, failures[:5]
    assert sum(answers.values()) == CLIENTS * BATCHES
    assert set(answers) <= {201, 207, 503}, answers
    assert answers[201] > 0
    assert after - before < 40 * 1024, f"RSS grew by {after - before} KiB"
    wait_until(lambda: confirmed <= set(processed_ids(log)), 180, "every confirmed id processed")


DOCS_ANSWER = (
    '{"status": "confirmed", "confirmed": 2, "not_accepted": 0, "results": [{"id": "order-1", "status": '
    '"confirmed"}, {"id": "order-2", "status": "confirmed"}]}'
)


def test_the_docs_shell_example_works_as_printed(broker: Broker, tmp_path):
    status, printed = run_example(bash_block(ROOT / "docs" / "batch-publishing.md"), broker, tmp_path / "out.txt")
    assert status == 0, printed
    assert DOCS_ANSWER in printed, printed


def unit_producer(wait: str = "0.1"):
    """A Producer whose lanes look connected but publish nothing (no broker): what the HTTP side sees."""
    from producer.producer import Producer

    from burrow_service.settings import load_settings

    env = {
        "RABBITMQ_HOST": "127.0.0.1",
        "RABBITMQ_USERNAME": "u",
        "RABBITMQ_PASSWORD": "p",
        "RABBITMQ_QUEUE": "unit.batch",
        "PUBLISH_WAIT_SECONDS": wait,
    }
    producer = Producer(load_settings(env))
    for lane in producer.lanes:
        lane.state.update(connected=True)
    return producer


def test_a_batch_that_does_not_fit_the_handoff_is_refused_whole_and_hands_over_nothing():
    from producer.producer import Handoff, new_message

    producer = unit_producer()
    producer.handoff = Handoff(3)
    assert producer.publish_all([new_message(1, "a"), new_message(2, "b")]) == ["timeout", "timeout"]
    assert producer.handoff.get() is None  # not confirmed in time: abandoned, never published later
    assert producer.publish_all([new_message(n, f"m-{n}") for n in range(4)]) == ["busy"] * 4
    assert producer.handoff.get() is None


def test_the_handoff_keeps_order_and_skips_abandoned_messages():
    from producer.producer import Handoff, Outgoing

    handoff = Handoff(10)
    items = [Outgoing({"id": str(n)}) for n in range(4)]
    assert handoff.put_all(items)
    assert items[1].abandon() == "abandoned"
    assert [handoff.get().message["id"] for _ in range(3)] == ["0", "2", "3"]
    started = time.monotonic()
    assert handoff.get(0.2) is None
    assert time.monotonic() - started >= 0.2
