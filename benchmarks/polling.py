"""Polling cost: status requests per minute while waiting for a long run, with a fake clock.

`restart.poll.wait_for` starts at poll-interval and grows the pause by a quarter per unchanged poll
up to 30 s; a fixed interval is the comparison. The run is queued for 20 s then runs for an hour.
"""

from __future__ import annotations

import io
from typing import Any

from restart import actions
from restart.poll import wait_for
from restart.records import Run, run_from_json
from restart.settings import parse
from tests.factories import Clock, FakeStop

RUN_SECONDS = 3600.0


class _Client:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.times: list[float] = []

    def get_run(self, run_id: int, include: Any = ()) -> Run:
        self.times.append(self.clock.now)
        status = 1 if self.clock.now < 20 else (3 if self.clock.now < RUN_SECONDS else 10)
        return run_from_json({"id": run_id, "job_definition_id": 1, "status": status})


def poll_times(interval: float) -> list[float]:
    clock = Clock()
    client = _Client(clock)
    settings = parse(
        {
            "dbt-cloud-token": "t",
            "account-id": "1",
            "job-id": "1",
            "poll-interval": str(interval),
            "timeout": str(RUN_SECONDS * 2),
        }
    )
    log = actions.Log(actions=False, stream=io.StringIO())
    start = run_from_json({"id": 1, "job_definition_id": 1, "status": 1})
    wait_for(client, start, settings, log, FakeStop(clock), clock=clock)  # type: ignore[arg-type]
    return client.times


def per_minute(times: list[float], start: float, end: float) -> float:
    return sum(1 for t in times if start <= t < end) / ((end - start) / 60)


def table() -> list[str]:
    lines = [
        "| poll-interval | calls in minute 1 | calls/min, minutes 10-60 | total calls for a 60-min run "
        "| fixed interval: calls/min | fixed: total | completion noticed after |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for interval in (2.0, 10.0, 30.0):
        times = poll_times(interval)
        fixed = RUN_SECONDS / interval
        lines.append(
            f"| {interval:g} s | {per_minute(times, 0, 60):.0f} | {per_minute(times, 600, 3600):.1f} "
            f"| {len(times)} | {60 / interval:.1f} | {fixed:.0f} | {times[-1] - RUN_SECONDS:.1f} s |"
        )
    return lines


if __name__ == "__main__":
    print("\n".join(table()))
