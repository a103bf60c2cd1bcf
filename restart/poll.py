"""Waiting on dbt Cloud: a new run until it finishes, a busy job until it is idle.

Both take an injected clock and wait through `Stop` (which raises `Interrupted` on a cancel), so tests
run them without taking time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from restart import actions
from restart.decide import Busy, busy_with
from restart.records import Run
from restart.settings import Settings
from restart.signals import Stop
from restart.transport import ApiError

POLL_CAP = 30.0  # seconds: the longest pause between two status checks


class Poller(Protocol):
    """What waiting needs of dbt Cloud (`restart.api.DbtCloud` has it)."""

    def get_run(self, run_id: int, include: Iterable[str] = ...) -> Run: ...

    def recent_runs(self, job_id: int, limit: int = ...) -> list[Run]: ...


def wait_for(
    client: Poller,
    run: Run,
    settings: Settings,
    log: actions.Log,
    stop: Stop,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Run, bool]:
    """Poll until the run completes or `timeout` passes; (latest run, timed out).

    The interval starts at `poll-interval` and grows by a quarter after every poll that saw no change,
    up to `POLL_CAP` (or `poll-interval` when larger); a status change brings it back down. A poll that
    fails for a reason that passes (rate limit, 5xx, no answer) is not the end: polling goes on, backing
    off, until `timeout`.
    """
    started = clock()
    last = None
    interval = settings.poll_interval
    unread = 0  # polls in a row that could not read the run
    while True:
        elapsed = clock() - started
        if run.status != last:
            last = run.status
            interval = settings.poll_interval
            log.info(f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] run {run.id}: {run.status_name}")
        else:
            interval = min(interval * 1.25, max(POLL_CAP, settings.poll_interval))
        if run.is_complete:
            return run, False
        if elapsed >= settings.timeout:
            return run, True
        stop.sleep(min(interval, max(settings.timeout - elapsed, 0.0)))
        try:
            run = client.get_run(run.id, include=())
            unread = 0
        except ApiError as exc:
            if not exc.transient:
                raise
            unread += 1
            say = log.warning if unread == 1 else log.info
            say(f"could not read run {run.id} ({exc}); still waiting for it")


def wait_while_busy(
    client: Poller,
    settings: Settings,
    log: actions.Log,
    stop: Stop,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Busy | None, list[Run]]:
    """The job's recent runs, and None when none is active, else the run the job is busy with.

    With `if-job-running: wait` it polls until the job is idle or `timeout` passes.
    """
    started = clock()
    while True:
        recent = client.recent_runs(settings.job_id)
        first = busy_with(recent)
        if first is None:
            return None, recent
        if settings.if_job_running != "wait":
            return Busy(first), recent
        if clock() - started >= settings.timeout:
            return Busy(first, waited=settings.timeout), recent
        log.info(f"{Busy(first).describe(settings.job_id)}; waiting for it to finish")
        stop.sleep(settings.poll_interval)
