"""What a restart saves: the work of the failed run it does not redo. Pure: the plan and artifacts in.

- in a narrowed step, the nodes that had succeeded (the plan's `kept`), and the `execution_time`
  dbt recorded for them;
- in a dropped step (it succeeded), its nodes when its run_results.json was read, and its duration
  from `run_steps` (else the sum of its nodes' times).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from restart import commands as cmds
from restart.artifacts import RunResults
from restart.dbt_vocabulary import EXECUTES, HOOK
from restart.engines import Engine
from restart.microbatch import batches_avoided
from restart.plan import Plan, StepPlan, results_belong_to
from restart.records import Run


@dataclass(frozen=True)
class Avoided:
    """The failed run's work the restart does not redo, and the size of the failed run."""

    nodes: int  # nodes that had succeeded and are not rerun (where known)
    seconds: float  # their execution time, plus the durations of dropped steps
    unknown_steps: tuple[int, ...] = ()  # dropped steps whose nodes are not known (their time is counted)
    previous_nodes: int = 0  # nodes the failed run ran or held back, in the steps whose results were read
    previous_partial: bool = False  # some step of the failed run ran nodes that are not counted
    batches: int = 0  # batches of partly failed microbatch models that had succeeded and are not rebuilt


def _command(step: StepPlan) -> cmds.DbtCommand | None:
    try:
        return cmds.parse(step.command)
    except cmds.CommandParseError:
        return None


def dropped_to_read(plan: Plan) -> dict[int, cmds.DbtCommand]:
    """The dropped steps that executed nodes, whose run_results.json tells which: step index -> command.

    Only these are worth one more download: every other count is known from the planning's reads.
    """
    wanted = {}
    for step in plan.steps:
        if step.action != "skip" or step.step_index is None:
            continue
        command = _command(step)
        if command is not None and command.name in EXECUTES:
            wanted[step.step_index] = command
    return wanted


def avoided(plan: Plan, previous: Run, dropped: Mapping[int, RunResults | None]) -> Avoided:
    """The work avoided; `dropped` holds the run_results.json read for `dropped_to_read` (None: unreadable)."""
    durations = {s.index: s.seconds for s in previous.steps}
    to_read = dropped_to_read(plan)
    nodes, previous_nodes, seconds = 0, 0, 0.0
    unknown: list[int] = []
    partial = False
    for step in plan.steps:
        if step.action == "narrow":
            nodes += len(step.kept)
            seconds += sum(r.execution_time for r in step.kept)
            previous_nodes += len(step.kept) + len(set(step.nodes))  # what it ran, and what it held back
            continue
        if step.action == "rerun":
            partial = partial or step.step_index is not None  # it ran (in part) in the failed run
            continue
        index = step.step_index
        assert index is not None  # a dropped step ran
        command = to_read.get(index)
        results = dropped.get(index) if command is not None else None
        if (
            results is not None
            and command is not None
            and not results_belong_to(results, command, Engine.of(results.dbt_version, previous.dbt_version))
        ):
            results = None  # the API answered with another step's run_results.json
        done = [r for r in results.results if not r.unique_id.startswith(HOOK)] if results else []
        if command is not None and results is None:
            unknown.append(index)
            partial = True
        nodes += len(done)
        previous_nodes += len(done)
        took = durations.get(index)
        seconds += took if took is not None else sum(r.execution_time for r in done)
    batches = batches_avoided(plan.batch_steps)
    return Avoided(nodes, seconds, tuple(unknown), previous_nodes, partial, batches)


def duration(seconds: float) -> str:
    """`6 min 12 s`, `45 s`, `1 h 3 min`: rounded to the second."""
    total = round(seconds)
    hours, minutes, secs = total // 3600, total // 60 % 60, total % 60
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def headline(saved: Avoided) -> str:
    """`Skipped 41 nodes that already succeeded: about 6 min 12 s of warehouse time`."""
    unknown = len(saved.unknown_steps)
    steps = f" (and {unknown} step{'s' if unknown != 1 else ''} whose nodes are not known)" if unknown else ""
    noun = "node" if saved.nodes == 1 else "nodes"
    time = duration(saved.seconds)
    batches = f", and {saved.batches} microbatch batch{'es' if saved.batches != 1 else ''}" if saved.batches else ""
    return f"Skipped {saved.nodes} {noun}{batches} that already succeeded{steps}: about {time} of warehouse time"
