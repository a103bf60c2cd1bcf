"""The local dbt Cloud's webhooks follow the field notes: what is sent, when, signed how, retried how.

A recording receiver stands in for the relay; runs are recorded as finished without dbt (a webhook needs
nothing more), so these tests are fast. The ingestion gap's 404s for a real run's artifacts are checked in
tests/test_relay_end_to_end.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.emulator import CANCELLED, ERROR, SUCCESS, LocalDbtCloud
from tests.emulator.webhooks import record_finished_run

SECRET = "emulator-secret"


@dataclass
class Receiver:
    """Records each delivery (headers and body); answers `status` after `delay` seconds."""

    status: int = 200
    delay: float = 0.0
    received: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorder = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder.received.append((dict(self.headers.items()), body, time.monotonic()))
            time.sleep(recorder.delay)
            self.send_response(recorder.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield recorder
    server.shutdown()
    server.server_close()


@pytest.fixture
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDbtCloud]:
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud")) as emulator:
        emulator.webhooks.time_factor = 0.05  # 10 s -> 0.5 s; 2 s between attempts -> 0.1 s
        emulator.webhooks.ingestion_gap = 0.5  # room for a loaded machine: errored must still come first
        yield emulator


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_a_failed_run_sends_errored_at_once_and_completed_after_the_gap(
    cloud: LocalDbtCloud, receiver: Receiver
) -> None:
    job = cloud.add_job(["dbt build"], name="nightly", environment_id=3)
    cloud.webhooks.subscribe(receiver.url, SECRET, job_ids=(job,), name="relay")
    other = cloud.add_job(["dbt run"])
    record_finished_run(cloud.engine, other, ERROR, "failed")  # another job: not subscribed
    ended = time.monotonic()  # the run ends after this
    run_id = record_finished_run(cloud.engine, job, ERROR, "Invoke dbt with `dbt build` failed.")
    wait_until(lambda: len(receiver.received) == 3)
    time.sleep(0.3)
    bodies = receiver.bodies()
    types = [b["eventType"] for b in bodies]  # started and errored go out together, on their own threads
    assert sorted(types[:2]) == ["job.run.errored", "job.run.started"] and types[2] == "job.run.completed"
    arrived = {b["eventType"]: at for b, (_, _, at) in zip(bodies, receiver.received, strict=True)}
    # Measured from the run's end, not from errored's arrival: errored goes out on a thread of its own,
    # which a loaded machine may delay, while the ingestion gap is counted from the end of the run.
    assert arrived["job.run.completed"] - ended >= 0.5, "completed waits for the ingestion"
    assert run_id not in cloud.api.ingesting
    for headers, body, _ in receiver.received:
        assert headers["Authorization"] == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["Content-Type"] == "application/json"
    errored, completed = bodies[types.index("job.run.errored")], bodies[2]
    assert errored["accountId"] == cloud.account_id and isinstance(errored["accountId"], int)
    assert errored["webhookId"].startswith("wsu_") and errored["eventId"].startswith("wev_")
    assert errored["eventId"] != completed["eventId"] and errored["webhookName"] == "relay"
    assert errored["timestamp"].endswith("Z") and len(errored["timestamp"].split(".")[1]) == 10
    data = completed["data"]
    assert (data["jobId"], data["runId"], data["environmentId"]) == (str(job), str(run_id), "3")
    assert (data["runStatus"], data["runStatusCode"], data["jobName"]) == ("Errored", ERROR, "nightly")
    assert "runFinishedAt" in data and "runErroredAt" in errored["data"]


@pytest.mark.parametrize(
    ("status", "message", "events", "said"),
    [
        (SUCCESS, None, ["job.run.started", "job.run.completed"], "Success"),
        (
            CANCELLED,
            "This run timed out after running for 1 minute",
            ["job.run.started", "job.run.completed"],
            "Canceled",
        ),
        (CANCELLED, None, ["job.run.started", "job.run.completed"], "Canceled"),
    ],
)
def test_success_cancel_and_timeout_send_completed_only(
    cloud: LocalDbtCloud, receiver: Receiver, status: int, message: str | None, events: list[str], said: str
) -> None:
    job = cloud.add_job(["dbt build"])
    cloud.webhooks.subscribe(receiver.url, SECRET, job_ids=(job,))
    record_finished_run(cloud.engine, job, status, message)
    wait_until(lambda: len(receiver.received) == len(events))
    time.sleep(0.5)
    bodies = receiver.bodies()
    assert [b["eventType"] for b in bodies] == events
    assert (bodies[-1]["data"]["runStatus"], bodies[-1]["data"]["runStatusCode"]) == (said, status)
    assert bodies[-1]["data"]["runStatusMessage"] == (message or "")


def test_the_legacy_status_strings_switch(cloud: LocalDbtCloud, receiver: Receiver) -> None:
    cloud.webhooks.status_strings = "legacy"
    job = cloud.add_job(["dbt build"])
    cloud.webhooks.subscribe(receiver.url, SECRET, ("job.run.completed",), (job,))
    record_finished_run(cloud.engine, job, ERROR, "failed")
    wait_until(lambda: len(receiver.received) == 1)
    assert receiver.bodies()[0]["data"]["runStatus"] == "Error"


def test_an_event_not_answered_2xx_in_time_is_retried_and_5_failures_switch_the_webhook_off(
    cloud: LocalDbtCloud, receiver: Receiver
) -> None:
    job = cloud.add_job(["dbt build"])
    subscription = cloud.webhooks.subscribe(receiver.url, SECRET, ("job.run.completed",), (job,))
    receiver.delay = 0.7  # past the scaled 10 s (0.5 s): a 200 too late is a failure
    record_finished_run(cloud.engine, job, ERROR, "failed")
    wait_until(lambda: not subscription.active)
    attempts = list(cloud.webhooks.attempts)
    assert len(attempts) == 5 and {a.event_id for a in attempts} == {attempts[0].event_id}, "retries keep the id"
    assert [a.attempt for a in attempts] == [1, 2, 3, 4, 5]
    record_finished_run(cloud.engine, job, ERROR, "failed")
    time.sleep(1.0)
    assert len(cloud.webhooks.attempts) == 5, "a switched-off webhook sends nothing"


def test_a_delivery_answered_after_failures_resets_the_count(cloud: LocalDbtCloud, receiver: Receiver) -> None:
    job = cloud.add_job(["dbt build"])
    subscription = cloud.webhooks.subscribe(receiver.url, SECRET, ("job.run.completed",), (job,))
    receiver.status = 503
    record_finished_run(cloud.engine, job, ERROR, "failed")
    wait_until(lambda: len(cloud.webhooks.attempts) == 3)
    receiver.status = 200
    wait_until(lambda: cloud.webhooks.attempts[-1].status == 200)
    assert subscription.active and subscription.consecutive_failures == 0
    assert [a.status for a in cloud.webhooks.attempts][:3] == [503, 503, 503]


@pytest.mark.parametrize(("mode", "ids"), [("same-id", 1), ("new-id", 2)])
def test_the_duplicates_switch(cloud: LocalDbtCloud, receiver: Receiver, mode: str, ids: int) -> None:
    cloud.webhooks.duplicates = "same-id" if mode == "same-id" else "new-id"
    job = cloud.add_job(["dbt build"])
    cloud.webhooks.subscribe(receiver.url, SECRET, ("job.run.completed",), (job,))
    record_finished_run(cloud.engine, job, ERROR, "failed")
    wait_until(lambda: len(receiver.received) == 2)
    assert len({b["eventId"] for b in receiver.bodies()}) == ids
