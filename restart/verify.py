"""Did the new run do the planned work, in the context it was sent? The plan, the context and the new
run in, a verdict out. Pure.

dbt only warns when a selector matches nothing (a node renamed or deleted since the failure, a dbt
version that selects differently, a selector bug), and the run still succeeds: comparing, node by
node, what each narrowed step was meant to rerun with what it recorded is the only way to know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from restart.artifacts import NodeResult
from restart.dbt_vocabulary import HOOK
from restart.microbatch import failed_batches_rebuilt
from restart.plan import Plan, StepPlan, align
from restart.records import CONTEXT_KEYS, ERROR, SUCCESS, Run

NAMED = 5  # missing nodes named in the error line
RAN = frozenset({SUCCESS, ERROR})  # step statuses of a step that ran to its end

# A per-node check beyond "it ran" (e.g. that every planned batch of a microbatch model ran):
# (the planned step, the node's result in the new run) -> '' when fine, else what is wrong.
NodeCheck = Callable[[StepPlan, NodeResult], str]
# The checks every verification makes: a microbatch step rebuilt the failed batches it was planned to.
CHECKS: tuple[NodeCheck, ...] = (failed_batches_rebuilt,)


@dataclass(frozen=True)
class StepCheck:
    """One command sent in steps_override, against the new run step that executed it."""

    plan: StepPlan
    new_index: int | None  # the new run's step (None: the new run never reached it)
    ran: bool  # the step ran to its end (success or error)
    missing: tuple[str, ...] = ()  # planned nodes it did not record
    unplanned: tuple[str, ...] = ()  # nodes it recorded that were not planned (hooks aside)
    unknown: bool = False  # a narrowed step whose node results could not be read

    @property
    def narrowed(self) -> bool:
        return self.plan.action == "narrow"


@dataclass(frozen=True)
class Problem:
    """A planned node that ran, but not as planned (found by a `NodeCheck`)."""

    unique_id: str
    problem: str


@dataclass(frozen=True)
class Verdict:
    """The new run against the plan."""

    steps: tuple[StepCheck, ...]
    problems: tuple[Problem, ...] = ()

    @property
    def planned(self) -> int:
        """Planned nodes (of the narrowed steps)."""
        return sum(len(set(s.plan.nodes)) for s in self.steps if s.narrowed)

    @property
    def checked(self) -> int:
        """Planned nodes whose step's results were read."""
        return sum(len(set(s.plan.nodes)) for s in self.steps if s.narrowed and not s.unknown)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(uid for s in self.steps for uid in s.missing)

    @property
    def unplanned(self) -> tuple[str, ...]:
        return tuple(uid for s in self.steps for uid in s.unplanned)

    @property
    def unknown(self) -> tuple[StepCheck, ...]:
        """Narrowed steps whose results could not be read: their nodes are unverified."""
        return tuple(s for s in self.steps if s.unknown)

    @property
    def unreached(self) -> tuple[StepCheck, ...]:
        """Steps the new run did not run to their end."""
        return tuple(s for s in self.steps if not s.ran)

    @property
    def ran(self) -> int:
        """Planned nodes that ran (any status)."""
        return self.checked - len(self.missing)

    @property
    def verified(self) -> bool:
        """Every step ran, and every planned node of the narrowed ones, as every check wanted."""
        return not (self.missing or self.unknown or self.unreached or self.problems)


def verify(
    plan: Plan,
    new_run: Run,
    results: Mapping[int, Sequence[NodeResult]],
    checks: Sequence[NodeCheck] = CHECKS,
) -> Verdict:
    """Compare each command the restart sent with what the new run's step for it did.

    `results` are the new run's node results by step index (a step missing from it had none to
    read). The new run's commands are the plan's steps_override, in order, after dbt Cloud's own
    setup steps: `align` pairs them as it pairs any run's commands with its steps.
    """
    sent = [s for s in plan.steps if s.sent is not None]
    paired, _ = align(replace(new_run, steps_override=tuple(plan.steps_override)))
    steps: list[StepCheck] = []
    problems: list[Problem] = []
    for planned, item in zip(sent, paired, strict=True):
        step = item.step
        ran = step is not None and step.status in RAN
        index = step.index if step is not None else None
        if planned.action != "narrow":
            steps.append(StepCheck(planned, index, ran))
            continue
        wanted = list(dict.fromkeys(planned.nodes))
        found = results.get(index) if index is not None else None
        if found is None:
            # Never reached: nothing of it ran. Reached but no results to read: unknown.
            steps.append(StepCheck(planned, index, ran, () if ran else tuple(wanted), unknown=ran))
            continue
        recorded = {r.unique_id: r for r in found}
        missing = tuple(uid for uid in wanted if uid not in recorded)
        planned_ids = set(wanted)
        unplanned = tuple(uid for uid in recorded if uid not in planned_ids and not uid.startswith(HOOK))
        steps.append(StepCheck(planned, index, ran, missing, unplanned))
        for uid in wanted:
            if uid in recorded:
                problems += [Problem(uid, p) for check in checks if (p := check(planned, recorded[uid]))]
    return Verdict(tuple(steps), tuple(problems))


def _names(unique_ids: Sequence[str], limit: int = NAMED) -> str:
    shown = ", ".join(unique_ids[:limit])
    return shown + (f" and {len(unique_ids) - limit} more" if len(unique_ids) > limit else "")


def complaint(verdict: Verdict, run_id: int) -> str:
    """Why a new run that succeeded did not do the planned work ('' when it did, or cannot be told).

    A new run that failed says so itself; results that could not be read prove nothing missing.
    """
    if verdict.missing:
        count = len(verdict.missing)
        return (
            f"run {run_id} succeeded but {count} planned node(s) did not run: {_names(verdict.missing)}. "
            "dbt only warns when a selector matches nothing: the node may have been renamed or deleted since "
            "the failed run, the job's dbt version may select differently, or the selector is wrong "
            "(a bug of dbt-cloud-restart). Their data was not rebuilt"
        )
    unreached = [s for s in verdict.unreached if s.plan.sent]
    if unreached:
        commands = "; ".join(f"`{s.plan.sent}`" for s in unreached[:3])
        return f"run {run_id} succeeded but {len(unreached)} command(s) sent did not run in it: {commands}"
    if verdict.problems:
        shown = "; ".join(f"{p.unique_id}: {p.problem}" for p in verdict.problems[:NAMED])
        return f"run {run_id} succeeded but {len(verdict.problems)} node(s) did not run as planned: {shown}"
    return ""


def headline(verdict: Verdict) -> str:
    """One line for the summary: `Verified: 24 of 24 planned nodes ran`, or what is missing."""
    steps = [s for s in verdict.steps if not s.narrowed]
    written = f"; {len(steps) - len([s for s in steps if not s.ran])} of {len(steps)} steps rerun as written ran"
    tail = written if steps else ""
    if verdict.unplanned:
        tail += f"; {len(verdict.unplanned)} unplanned node(s) ran too: {_names(verdict.unplanned)}"
    if verdict.verified:
        return f"Verified: {verdict.ran} of {verdict.planned} planned nodes ran{tail}"
    parts = [f"Not verified: {verdict.ran} of {verdict.planned} planned nodes ran{tail}"]
    if verdict.missing:
        parts.append(f"missing: {_names(verdict.missing)}")
    if verdict.unknown:
        unread = ", ".join(str(s.new_index) for s in verdict.unknown)
        parts.append(f"the node results of new run step(s) {unread} could not be read")
    if verdict.problems:
        parts.append(f"{len(verdict.problems)} node(s) did not run as planned")
    return "; ".join(parts)


@dataclass(frozen=True)
class ContextCheck:
    """The new run's trigger against the context it was triggered with (`restart.overrides`)."""

    differences: tuple[str, ...] = ()  # one per field its trigger records otherwise
    unknown: bool = False  # the new run was read without its trigger: nothing could be checked

    @property
    def verified(self) -> bool:
        return not (self.differences or self.unknown)


def check_context(sent: Mapping[str, object], new_run: Run) -> ContextCheck:
    """Whether the new run's trigger records every context field `sent`, as sent.

    Fields it records without being sent are not held against it: what dbt Cloud fills in by itself is
    not recorded publicly, and the request (no null, nothing the failed run lacked) is checked before.
    """
    if not new_run.context.recorded:
        return ContextCheck(unknown=True)
    got = new_run.context.overrides
    differences = []
    for key in CONTEXT_KEYS:
        if key not in sent:
            continue
        want, have = sent[key], got.get(key)
        if want == have and type(want) is type(have):
            continue
        if key in new_run.context.unread:
            differences.append(f"{key}: sent {want!r}, its trigger records a value this tool cannot read")
        else:
            differences.append(f"{key}: sent {want!r}, its trigger records {'none' if have is None else repr(have)}")
    return ContextCheck(tuple(differences))


def context_complaint(check: ContextCheck, run_id: int) -> str:
    """Why the new run's context is not the one sent ('' when it is, or cannot be told)."""
    if not check.differences:
        return ""
    shown = "; ".join(check.differences[:NAMED])
    more = f" and {len(check.differences) - NAMED} more" if len(check.differences) > NAMED else ""
    return (
        f"run {run_id} did not run in the context it was triggered with ({shown}{more}): it may have built "
        "another schema, branch or commit than the failed run"
    )
