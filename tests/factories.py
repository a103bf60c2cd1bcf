"""Builders the tests (and benchmarks) share: runs as the API describes them, node results, a fake clock.

One definition each, so a field added to `Run` or a change to how dbt Cloud names its setup steps is
made here once.
"""

from __future__ import annotations

import signal
from typing import Any

from restart.artifacts import ManifestNode, NodeResult, RunResults
from restart.records import ERROR, SUCCESS, Job, Run, Step
from restart.signals import Stop

# The steps dbt Cloud runs before a job's commands.
SETUP = ["Clone git repository", "Create profile from connection Snowflake", "Invoke dbt with `dbt deps`"]
DBT_VERSION = "1.11.2"  # the engine that writes hand-made results (file: selectors match stems from 1.6)


def run_record(**fields: Any) -> Run:
    """A finished, failed run of job 7 with plain defaults; `fields` replace any of them."""
    defaults: dict[str, Any] = {
        "id": 100,
        "job_id": 7,
        "status": ERROR,
        "href": "",
        "status_message": "",
        "duration": "",
        "finished_at": "",
        "cause": "",
        "steps_override": None,
        "steps": (),
        "job": Job(7, "nightly", (), False),
        "can_retry": None,
        "retry_not_supported_reason": None,
    }
    return Run(**{**defaults, **fields})


def make_run(
    commands: list[str],
    statuses: list[int],
    *,
    status: int = ERROR,
    override: list[str] | None = None,
    freshness: bool = False,
    extra_before: list[tuple[str, int]] | None = None,
) -> Run:
    """A run of a job whose steps are `commands`: dbt Cloud's setup steps, `extra_before`, then one step
    per status in `statuses` (commands past them never started)."""
    names = [(n, SUCCESS) for n in SETUP] + list(extra_before or [])
    names += [(f"Invoke dbt with `{c}`", s) for c, s in zip(override or commands, statuses, strict=False)]
    return run_record(
        status=status,
        steps_override=tuple(override) if override else None,
        steps=tuple(Step(i + 1, n, s) for i, (n, s) in enumerate(names)),
        job=Job(7, "nightly", tuple(commands), freshness),
    )


def results(which: str, nodes: dict[str, str], **args: object) -> RunResults:
    """One step's run_results.json: `nodes` (unique_id -> status) written by `dbt <which>`."""
    found = tuple(NodeResult(u, s, f"{s} in {u}") for u, s in nodes.items())
    return RunResults(found, {"which": which, **args}, dbt_version=DBT_VERSION)


def node(uid: str, fqn: list[str], versioned: bool = False, depends: tuple[str, ...] = ()) -> ManifestNode:
    """A manifest node named by its unique_id and fqn."""
    kind, package = uid.split(".")[:2]
    name = fqn[-2] if versioned else fqn[-1]
    return ManifestNode(uid, kind, package, name, tuple(fqn), versioned, depends)


def node_of(uid: str, *parents: str) -> ManifestNode:
    """A manifest node read off its unique_id (`model.shop.orders`: fqn `shop.orders`, `models/orders.sql`)."""
    kind, package, name = uid.split(".")[:3]
    return ManifestNode(uid, kind, package, name, (package, name), False, parents, path=f"models/{name}.sql")


class Clock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class FakeStop(Stop):
    """The real `Stop` whose waits move `clock` instead of taking time; it differs in nothing else.

    With `cancel_after`, the runner's SIGTERM arrives during that many-th wait (which then raises
    `Interrupted`, as the real one does).
    """

    def __init__(self, clock: Clock | None = None, cancel_after: int | None = None) -> None:
        super().__init__()
        self.clock = clock or Clock()
        self.cancel_after = cancel_after

    @property
    def pauses(self) -> list[float]:
        return self.clock.pauses

    def wait(self, seconds: float) -> bool:
        self.clock.sleep(seconds)
        if self.cancel_after is not None and len(self.pauses) >= self.cancel_after:
            self.signum = signal.SIGTERM
            self.event.set()
        return self.requested
