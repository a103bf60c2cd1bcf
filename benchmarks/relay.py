"""The relay path's latency: from a run's end (the local dbt Cloud sends `job.run.completed`) to the
`repository_dispatch` arriving at the local GitHub, and to the restart's trigger.

Everything is local: the local dbt Cloud's webhooks (tests/emulator/webhooks.py), the relay as its own
process (`python -m restart relay`), the local GitHub (tests/fake_dispatches.py). The dispatch figures use
runs recorded as failed without dbt (a webhook needs nothing more); the trigger figure makes one real dbt
run fail, then runs the action from its image folder the moment the dispatch arrives, as a workflow on
`repository_dispatch` would start (GitHub's own queueing, seconds to minutes, is not measured).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tests.emulator import ERROR, LocalDbtCloud
from tests.emulator.webhooks import record_finished_run
from tests.fake_dispatches import Dispatch, FakeDispatches
from tests.relay_process import SECRET, running_relay
from tests.runner import run_action

RUNS = 20
GOAL = 1.0  # seconds, from the completed event to the dispatch, locally


def _figures(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[max(int(len(ordered) * 0.9) - 1, 0)]
    return f"{statistics.median(ordered) * 1000:.0f} | {p90 * 1000:.0f} | {ordered[-1] * 1000:.0f}"


def _dispatch_of(github: FakeDispatches, run_id: int, timeout: float) -> Dispatch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [d for d in github.dispatches if d.client_payload.get("run_id") == str(run_id)]
        if found:
            return found[0]
        time.sleep(0.005)
    raise AssertionError(f"no dispatch for run {run_id}")


def dispatch_latency(cloud: LocalDbtCloud) -> tuple[list[float], list[float]]:
    """(completed -> dispatch arrived, the relay's answer time) for RUNS failed runs, one at a time."""
    hooks = cloud.webhooks
    hooks.ingestion_gap = 0.0  # the gap is before `completed`, which is where the clock starts
    job = cloud.add_job(["dbt build"], name="bench")
    to_dispatch: list[float] = []
    answers: list[float] = []
    with FakeDispatches() as github, running_relay(github) as relay:
        subscription = hooks.subscribe(relay.url + "/", SECRET, ("job.run.completed",), (job,))
        for _ in range(RUNS):
            run_id = record_finished_run(cloud.engine, job, ERROR, "Invoke dbt with `dbt build` failed.")
            dispatch = _dispatch_of(github, run_id, timeout=30)
            to_dispatch.append(dispatch.arrived - hooks.sent[(run_id, "job.run.completed")])
            answers += [a.seconds for a in hooks.attempts if a.run_id == run_id]
        subscription.active = False
    return to_dispatch, answers


def trigger_latency(cloud: LocalDbtCloud, scratch: Path) -> tuple[float, float]:
    """(completed -> dispatch, completed -> the restart's trigger) for one real failed dbt run."""
    hooks = cloud.webhooks
    hooks.ingestion_gap = 1.0
    job = cloud.add_job(["dbt build"], name="bench-restart")
    offset = time.time() - time.monotonic()
    with FakeDispatches() as github, running_relay(github) as relay:
        subscription = hooks.subscribe(relay.url + "/", SECRET, ("job.run.completed",), (job,))
        cloud.set_faults(["stg_orders"])
        run_id = cloud.trigger(job)
        cloud.wait(run_id)
        cloud.set_faults([])
        dispatch = _dispatch_of(github, run_id, timeout=60)
        payload = dispatch.client_payload
        event = {"action": dispatch.event_type, "client_payload": payload, "branch": "main"}
        with_ = {"dbt-cloud-token": cloud.token, "dbt-cloud-host": cloud.base_url, "wait": "false"}
        result = run_action(scratch, with_, event=event, event_name="repository_dispatch")
        subscription.active = False
    if result.exit_code != 0:
        raise AssertionError(f"the restart failed:\n{result.log}")
    new_run = cloud.engine.runs[int(result.outputs["run-id"])]
    completed = hooks.sent[(run_id, "job.run.completed")]
    triggered = new_run.created_at.timestamp() - offset
    return dispatch.arrived - completed, triggered - completed


def table() -> list[str]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-relay-") as scratch,
        LocalDbtCloud(root=Path(scratch) / "cloud") as cloud,
    ):
        cloud.webhooks.time_factor = 1.0
        to_dispatch, answers = dispatch_latency(cloud)
        dispatched, triggered = trigger_latency(cloud, Path(scratch))
    verdict = "met" if max(to_dispatch) < GOAL else "MISSED"
    return [
        f"{RUNS} failed runs, one at a time (runs recorded as failed, no dbt); times in ms.",
        "",
        "| measure | median | p90 | max |",
        "|---|---:|---:|---:|",
        f"| run's end (`completed` sent) -> dispatch at GitHub | {_figures(to_dispatch)} |",
        f"| the relay's answer to dbt's delivery | {_figures(answers)} |",
        "",
        f"Goal: under {GOAL:g} s from the run's end to the dispatch: {verdict}.",
        "",
        "One real failed dbt run, the action started the moment the dispatch arrived (as a workflow on",
        "`repository_dispatch`, without GitHub's own queueing):",
        "",
        "| measure | seconds |",
        "|---|---:|",
        f"| run's end -> dispatch at GitHub | {dispatched:.2f} |",
        f"| run's end -> the restart's trigger (new run created) | {triggered:.2f} |",
    ]
