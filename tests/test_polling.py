"""Polling: prompt on changes, polite on long runs, bounded by the timeout."""

from __future__ import annotations

import io
from typing import Any

import pytest

from restart import actions
from restart.poll import wait_for, wait_while_busy
from restart.records import Run, run_from_json
from restart.settings import parse
from restart.transport import ApiError
from tests.factories import Clock, FakeStop


class Client:
    """A run that is queued for 1 poll, then running until `done_at` seconds."""

    def __init__(self, clock: Clock, done_at: float) -> None:
        self.clock, self.done_at, self.calls = clock, done_at, 0

    def get_run(self, run_id: int, include: Any = ()) -> Run:
        self.calls += 1
        status = 10 if self.clock.now >= self.done_at else 3
        return run_from_json({"id": run_id, "job_definition_id": 1, "status": status})


def settings(**values: str) -> Any:
    return parse({"dbt-cloud-token": "t", "account-id": "1", "job-id": "1", **values})


def test_long_runs_are_polled_less_often_up_to_a_cap() -> None:
    clock = Clock()
    stop = FakeStop(clock)
    client = Client(clock, done_at=1800)
    out = actions.Log(actions=False, stream=open("/dev/null", "w"))  # noqa: SIM115
    start = run_from_json({"id": 7, "job_definition_id": 1, "status": 1})

    final, timed_out = wait_for(client, start, settings(), out, stop, clock=clock)  # type: ignore[arg-type]

    assert (final.status, timed_out) == (10, False)
    assert stop.pauses[0] == 10.0 and stop.pauses[1] == 10.0  # the status changed: back to poll-interval
    assert max(stop.pauses) == 30.0
    assert client.calls < 70, f"{client.calls} calls for 30 minutes (a fixed 10 s interval makes 180)"
    assert clock.now - 1800 <= 30.0, "completion noticed within one capped interval"


def test_timeout_bounds_the_last_pause() -> None:
    clock = Clock()
    stop = FakeStop(clock)
    client = Client(clock, done_at=10_000)
    out = actions.Log(actions=False, stream=open("/dev/null", "w"))  # noqa: SIM115
    start = run_from_json({"id": 7, "job_definition_id": 1, "status": 3})

    _, timed_out = wait_for(client, start, settings(timeout="45"), out, stop, clock=clock)  # type: ignore[arg-type]

    assert timed_out and clock.now == 45.0


class Flaky(Client):
    """Like `Client`, but every read before `recovers_at` seconds fails: rate-limited, or refused for good."""

    def __init__(self, clock: Clock, done_at: float, recovers_at: float, status: int = 429) -> None:
        super().__init__(clock, done_at)
        self.recovers_at, self.status = recovers_at, status

    def get_run(self, run_id: int, include: Any = ()) -> Run:
        if self.clock.now < self.recovers_at:
            raise ApiError("dbt Cloud rate-limited run 7 (HTTP 429)", self.status)
        return super().get_run(run_id, include)


def test_failed_polls_that_may_pass_keep_the_wait_going_until_the_timeout() -> None:
    clock = Clock()
    stop = FakeStop(clock)
    stream = io.StringIO()
    out = actions.Log(actions=True, stream=stream)
    start = run_from_json({"id": 7, "job_definition_id": 1, "status": 3})

    final, timed_out = wait_for(Flaky(clock, 100, 600), start, settings(), out, stop, clock=clock)  # type: ignore[arg-type]
    assert (final.status, timed_out) == (10, False)
    assert stream.getvalue().count("::warning::could not read run 7") == 1, "one warning, then quieter lines"

    never = Flaky(clock, 10_000, 10_000)
    _, timed_out = wait_for(never, start, settings(timeout="120"), out, FakeStop(clock), clock=clock)  # type: ignore[arg-type]
    assert timed_out


def test_a_poll_refused_for_good_ends_the_wait() -> None:
    clock = Clock()
    out = actions.Log(actions=False, stream=io.StringIO())
    start = run_from_json({"id": 7, "job_definition_id": 1, "status": 3})
    with pytest.raises(ApiError):
        wait_for(Flaky(clock, 100, 600, status=401), start, settings(), out, FakeStop(clock), clock=clock)  # type: ignore[arg-type]


class BusyJob:
    """A job whose run 9 stays running until `idle_at` seconds on `clock`."""

    def __init__(self, clock: Clock, idle_at: float) -> None:
        self.clock, self.idle_at = clock, idle_at

    def get_run(self, run_id: int, include: Any = ()) -> Run:
        raise AssertionError("not asked while waiting for a busy job")

    def recent_runs(self, job_id: int, limit: int = 25) -> list[Run]:
        status = 20 if self.clock.now >= self.idle_at else 3
        return [run_from_json({"id": 9, "job_definition_id": job_id, "status": status})]


@pytest.mark.parametrize(
    ("idle_at", "busy", "waited"),
    [
        (25.0, "", 30.0),
        (10_000.0, "run 9 of job 1 is running after waiting 60s", 60.0),
    ],
)
def test_a_busy_job_is_waited_for_up_to_the_timeout(idle_at: float, busy: str, waited: float) -> None:
    clock = Clock()
    out = actions.Log(actions=False, stream=io.StringIO())
    found, recent = wait_while_busy(
        BusyJob(clock, idle_at),
        settings(**{"timeout": "60", "poll-interval": "10", "if-job-running": "wait"}),
        out,
        FakeStop(clock),
        clock=clock,
    )
    said = found.describe(1) if found else ""
    assert (said, clock.now, [r.id for r in recent]) == (busy, waited, [9])
