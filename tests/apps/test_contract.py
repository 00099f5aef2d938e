"""The HTTP contract and configuration errors of both services."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.apps.conftest import queue_depth
from tests.support.services import APPS, wait_until

ROLES = ("producer", "consumer")


def published_nothing(producer, broker, topology) -> bool:
    """Nothing reached the queue (read on the broker), and the producer's own counter, which must be
    exposed (a missing metric is not a zero), agrees."""
    families = producer.get("/metrics").text
    assert "burrow_messages_published_total{" in families, "the producer does not expose burrow_messages_published_total"
    return queue_depth(broker, topology["RABBITMQ_QUEUE"]) == 0 and producer.metric("burrow_messages_published_total") == 0


@pytest.mark.parametrize("role", ROLES)
def test_health_is_exactly_up_and_ready_follows_the_broker(start, role):
    service = start(role, PUBLISH_RATE="0")
    service.wait_ready()
    health = service.get("/health")
    assert health.status_code == 200
    assert health.content == b'{"status": "UP!"}'
    assert health.headers["Content-Type"] == "application/json"
    ready = service.get("/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "READY"})


@pytest.mark.parametrize("role", ROLES)
def test_metrics_are_prometheus_text_with_connection_state(start, role):
    service = start(role, PUBLISH_RATE="0")
    service.wait_ready()
    response = service.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert service.metric("burrow_broker_connected") == 1.0
    for name in ("burrow_messages_published_total", "burrow_messages_acked_total", "burrow_message_processing_seconds_count"):
        assert name in response.text


@pytest.mark.parametrize("role", ROLES)
def test_health_stays_up_and_ready_fails_while_the_broker_is_unreachable(start, role):
    service = start(role, RABBITMQ_PORT="1", PUBLISH_RATE="0")
    wait_until(lambda: service.ready_status() is not None, 20, "HTTP up")
    assert service.get("/health").status_code == 200
    ready = service.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "NOT READY"
    assert "broker" in ready.json()["reason"]


def run_with_env(role: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "PUBLISH_", "PREFETCH_"))}
    return subprocess.run(
        [sys.executable, str(APPS / role / f"{role}.py")],
        env={**clean, **env, "PYTHONPATH": str(APPS)},
        capture_output=True,
        text=True,
        timeout=30,
    )


BASE = {"RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_USERNAME": "u", "RABBITMQ_PASSWORD": "secret-value"}


@pytest.mark.parametrize(
    ("role", "env", "expected"),
    [
        ("producer", {"RABBITMQ_USERNAME": "u", "RABBITMQ_PASSWORD": "p"}, "RABBITMQ_HOST is not set"),
        ("consumer", {**BASE, "RABBITMQ_PORT": "amqp"}, "RABBITMQ_PORT='amqp' is invalid"),
        ("consumer", {**BASE, "PREFETCH_COUNT": "0"}, "PREFETCH_COUNT='0' is invalid (an integer 1-1000)"),
        ("producer", {**BASE, "PUBLISH_RATE": "fast"}, "PUBLISH_RATE='fast' is invalid"),
        ("producer", {**BASE, "HTTP_PORT": "70000"}, "HTTP_PORT='70000' is invalid"),
        ("producer", {**BASE, "PUBLISH_TOKEN": "short"}, "PUBLISH_TOKEN=<hidden> is invalid (a bearer token of 32-256"),
        ("producer", {**BASE, "PUBLISH_TOKENS_DIR": "/nonexistent"},
         "PUBLISH_TOKENS_DIR='/nonexistent' is invalid (a readable directory with a file holding a bearer token"),
    ],
)
def test_bad_configuration_exits_with_one_line_naming_the_variable(role, env, expected):
    result = run_with_env(role, env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert "secret-value" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'"just a string"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"id": "a"}).encode(), "'payload' is required"),
        (json.dumps({"payload": 1, "extra": True}).encode(), "unknown keys ['extra']"),
        (json.dumps({"payload": 1, "id": 7}).encode(), "'id' must be a non-empty string"),
        (json.dumps({"payload": 1, "id": ""}).encode(), "'id' must be a non-empty string"),
        (json.dumps({"payload": 1, "id": "x" * 129}).encode(), "'id' must be a non-empty string"),
        (json.dumps({"payload": 1, "id": ["a"]}).encode(), "'id' must be a non-empty string"),
        (json.dumps({"payload": 1, "id": None}).encode(), "'id' must be a non-empty string"),
        pytest.param(b'{"payload": ' + b"[" * 2000 + b"]" * 2000 + b"}", "not valid JSON: nested too deeply", id="deep"),
    ],
)
def test_bad_publish_bodies_get_400_and_publish_nothing(start, broker, topology, body, reason):
    producer = start("producer", PUBLISH_RATE="0")
    producer.wait_ready()
    response = producer.post("/publish", body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert published_nothing(producer, broker, topology)


TOKEN = "T0k3n" * 8  # 40 letters and digits


def test_a_public_producer_publishes_only_for_its_bearer_token(start, broker, topology):
    producer = start("producer", PUBLISH_RATE="0", PUBLISH_TOKEN=TOKEN)
    producer.wait_ready()
    body = json.dumps({"payload": {"n": 1}, "id": "auth-1"}).encode()
    refused = [producer.post("/publish", body),
               producer.post("/publish", body, headers={"Authorization": f"Bearer {TOKEN[:-1]}x"}),
               producer.post("/publish", body, headers={"Authorization": f"Basic {TOKEN}"}),
               producer.post("/publish", body, headers={"Authorization": "Bearer"})]
    assert [r.status_code for r in refused] == [401] * 4
    assert refused[0].headers["WWW-Authenticate"] == 'Bearer realm="burrow"'
    assert published_nothing(producer, broker, topology)  # nothing refused was published
    accepted = producer.post("/publish", body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (accepted.status_code, accepted.json()) == (201, {"id": "auth-1", "status": "confirmed"})
    assert producer.get("/health").status_code == 200  # health needs no token (load balancers, DNS checks)
    assert TOKEN not in producer.log_path.read_text(errors="replace")


def mount_secret(directory: Path, files: dict[str, str], generation: int) -> None:
    """Write `files` the way the kubelet updates a mounted Secret: a new timestamped directory,
    then one atomic swap of the `..data` symlink that every file's symlink goes through."""
    version = directory / f"..2026_{generation:02d}"
    version.mkdir()
    for name, value in files.items():
        (version / name).write_text(value)
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    (directory / "..data_tmp").symlink_to(version.name)
    os.replace(directory / "..data_tmp", directory / "..data")


def test_a_public_producer_takes_a_rotated_token_without_a_restart(start, broker, topology, tmp_path):
    """Two tokens are valid during a rotation (current and previous); the producer re-reads the
    mounted Secret when the kubelet swaps it, and the token rotated out stops working."""
    old, current, new = ("0ld" * 12, "Cur" * 12, "N3w" * 12)
    secret = tmp_path / "producer-auth"
    secret.mkdir()
    mount_secret(secret, {"publish-token": current, "previous-publish-token": old}, 1)
    producer = start("producer", PUBLISH_RATE="0", PUBLISH_TOKENS_DIR=str(secret))
    producer.wait_ready()

    def status(token: str, n: int) -> int:
        body = json.dumps({"payload": {"n": n}, "id": f"rotate-{n}"}).encode()
        return producer.post("/publish", body, headers={"Authorization": f"Bearer {token}"}).status_code

    assert [status(current, 1), status(old, 2), status(new, 3)] == [201, 201, 401]
    mount_secret(secret, {"publish-token": new, "previous-publish-token": current}, 2)
    assert [status(new, 4), status(current, 5), status(old, 6)] == [201, 201, 401]
    # a Secret emptied by mistake does not open the producer: the last good tokens stay in force
    mount_secret(secret, {"publish-token": "", "previous-publish-token": ""}, 3)
    assert [status(new, 7), status(old, 8)] == [201, 401]
    assert producer.post("/publish", b'{"payload": 1}').status_code == 401
    log = producer.log_path.read_text(errors="replace")
    assert not any(token in log for token in (old, current, new))


def test_oversized_publish_body_gets_413(start, broker, topology):
    producer = start("producer", PUBLISH_RATE="0")
    producer.wait_ready()
    response = producer.post("/publish", json.dumps({"payload": "x" * (1024 * 1024)}).encode())
    assert response.status_code == 413
    two_mib = producer.post("/publish", json.dumps({"payload": "x" * (2 * 1024 * 1024)}).encode())
    assert two_mib.status_code == 413, two_mib.text
    assert published_nothing(producer, broker, topology)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_declared_json_gets_415(start, broker, topology, content_type):
    producer = start("producer", PUBLISH_RATE="0")
    producer.wait_ready()
    response = producer.post("/publish", json.dumps({"payload": 1}).encode(), content_type=content_type)
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert published_nothing(producer, broker, topology)


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), which a short-lived buffer also raises."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def post_declared_length(port: int, size: int) -> int:
    """POST /publish a body of `size` bytes (JSON whitespace), sent in 1 MiB pieces so the test itself
    stays small; the status the producer answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.putrequest("POST", "/publish")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        piece = b" " * (1024 * 1024)
        for _ in range(size // len(piece)):
            connection.send(piece)
        return connection.getresponse().status
    finally:
        connection.close()


def test_200_concurrent_requests_good_and_bad_are_all_answered_and_memory_stays_bounded(start):
    """Peak memory, not what is left afterwards: a body read whole and then dropped shows only here."""
    producer = start("producer", PUBLISH_RATE="0")
    producer.wait_ready()
    bodies = [
        json.dumps({"id": f"burst-{i}", "payload": {"i": i}}).encode() if i % 4 else b"[not json" for i in range(200)
    ]
    producer.post("/publish", bodies[1])  # warm up: imports and connection pools before the first reading
    before = peak_rss_kib(producer.process.pid)
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=200) as pool:
            answers = list(pool.map(lambda body: producer.post("/publish", body).status_code, bodies))
        assert Counter(answers) == {201: 150, 400: 50}, Counter(answers)
    huge = producer.post("/publish", b"[" + b"1," * (1024 * 1024) + b"1]")
    assert huge.status_code == 413
    assert post_declared_length(producer.port, 200 * 1024 * 1024) == 413
    after = peak_rss_kib(producer.process.pid)
    print(f"\nproducer peak RSS {before} KiB before, {after} KiB after 600 concurrent requests, a 2 MiB and a 200 MiB body")
    assert after - before < 40 * 1024, f"peak RSS grew by {after - before} KiB"


def test_images_install_exactly_the_versions_the_tests_run():
    import re
    import tomllib

    from tests.support.services import ROOT

    pipfile = tomllib.loads((ROOT / "Pipfile").read_text())["packages"]
    pins = dict(line.split("==") for line in (APPS / "requirements.txt").read_text().splitlines() if "==" in line and not line.startswith("#"))
    assert pins, "apps/requirements.txt pins nothing"
    for name, version in pins.items():
        assert pipfile[name] == f"=={version}", name
    for role in ROLES:
        dockerfile = (APPS / role / "Dockerfile").read_text()
        assert "-r requirements.txt" in dockerfile
        assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
        assert "STOPSIGNAL SIGTERM" in dockerfile and "EXPOSE 5000" in dockerfile
