"""A message a request was told is not accepted is never published afterwards (fast tier).

The HTTP side (`Producer.publish_all`) and one publishing thread (`Producer._publish`) are driven
step by step with events against a stand-in channel, so each interleaving happens in a known order:
abandoned while queued (never published), claimed before the wait ended (reported in flight),
nacked (reported as a nack)."""

from __future__ import annotations

import threading

import pytest
from pika.exceptions import NackError
from producer.producer import Producer, new_message

from burrow_service.settings import load_settings


def producer() -> Producer:
    """Lanes that look connected, no broker, no scheduled messages; requests wait 0.1 s for confirms."""
    env = {
        "RABBITMQ_HOST": "127.0.0.1",
        "RABBITMQ_USERNAME": "u",
        "RABBITMQ_PASSWORD": "p",
        "RABBITMQ_QUEUE": "unit.states",
        "PUBLISH_WAIT_SECONDS": "0.1",
        "PUBLISH_RATE": "0",
    }
    service = Producer(load_settings(env))
    for lane in service.lanes:
        lane.state.update(connected=True)
    return service


class Channel:
    """Records `basic_publish`; with `hold`, stays inside it until `release` is set; can nack."""

    def __init__(self, hold: bool = False, nack: bool = False) -> None:
        self.published: list[str] = []
        self.entered, self.release = threading.Event(), threading.Event()
        self.hold, self.nack = hold, nack

    def basic_publish(self, exchange, routing_key, body, properties, mandatory):
        self.published.append(properties.message_id)
        self.entered.set()
        if self.hold:
            assert self.release.wait(10)
        if self.nack:
            raise NackError([])


class Request(threading.Thread):
    """An HTTP thread: `publish_all` (or the single-message path) and its answer."""

    def __init__(self, service: Producer, ids: list[str], single: bool) -> None:
        super().__init__(daemon=True)
        self.service, self.single = service, single
        self.messages = [new_message(n, i) for n, i in enumerate(ids)]
        self.answer: list[str | None] | None = None

    def run(self) -> None:
        if self.single:
            self.answer = [self.service.publish_confirmed(self.messages[0])]
        else:
            self.answer = self.service.publish_all(self.messages)

    def finished(self) -> list[str | None] | None:
        self.join(10)
        return self.answer


@pytest.mark.parametrize("single", [True, False], ids=["single", "batch"])
def test_a_message_taken_but_not_yet_sent_when_the_wait_ends_is_never_published(single):
    service = producer()
    request = Request(service, ["a"], single)
    request.start()
    taken = service.handoff.get(10)  # the publishing thread takes the message...
    assert request.finished() == ["timeout"]  # ...the request gives up and answers "not accepted"...
    channel = Channel()
    assert service._publish(channel, service.lanes[0], taken)  # ...then the thread gets to publish it
    assert channel.published == []  # nothing reaches the broker after "not accepted"
    assert service.lanes[0].retry is None and service.handoff.get() is None


@pytest.mark.parametrize("single", [True, False], ids=["single", "batch"])
def test_a_message_handed_to_the_broker_when_the_wait_ends_is_reported_in_flight(single):
    service = producer()
    ids = ["a"] if single else ["a", "b"]
    request = Request(service, ids, single)
    request.start()
    channel = Channel(hold=True)
    lane = service.lanes[0]
    taken = service.handoff.get(10)
    publishing = threading.Thread(target=service._publish, args=(channel, lane, taken), daemon=True)
    publishing.start()
    assert channel.entered.wait(10)  # inside basic_publish, the confirm not back yet
    expected = ["in_flight"] if single else ["in_flight", "timeout"]  # "b" was still queued: dropped
    assert request.finished() == expected
    channel.release.set()
    publishing.join(10)
    assert taken.state == "confirmed" and channel.published == ["a"]
    assert service.handoff.get() is None  # "b" was abandoned while queued


@pytest.mark.parametrize("single", [True, False], ids=["single", "batch"])
def test_a_nacked_message_is_reported_as_nacked_and_not_retried_after_the_answer(single):
    service = producer()
    request = Request(service, ["a"], single)
    request.start()
    channel = Channel(nack=True)
    lane = service.lanes[0]
    taken = service.handoff.get(10)
    assert service._publish(channel, lane, taken) is False  # the broker said no; the lane keeps it to retry
    assert request.finished() == ["nacked"]
    assert service._next(lane, 0) is None  # the lane's retry was abandoned: dropped, not sent again
    assert channel.published == ["a"] and lane.retry is None
