"""What to do with the run to restart, decided over data alone: no API call, no clock, no log.

The executor (`restart.orchestrate.restart`) reads the facts (the previous run, the job's recent runs,
the plan or dbt Cloud's own rerun plan), asks these functions, and carries out the answer: a
`Finished` outcome (with what to log), or a `TriggerRequest` saying what to start. Every function
here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, assert_never

from restart import transient
from restart.cause import count_restarts, failure_behind, read_marker
from restart.context import REPOSITORY_DISPATCH, Context
from restart.outcome import Outcome, OutcomeStatus
from restart.overrides import NewContext, merge, sha_note, unread_refusal
from restart.plan import Plan
from restart.records import ACTIVE, CANCELLED, QUEUED, STARTING, SUCCESS, Run
from restart.settings import Settings
from restart.verify import ContextCheck, Verdict, complaint, context_complaint

RETRY_REASONS = {
    "RETRY_UNSUPPORTED_CMD": "a step runs a command dbt retry does not support",
    "RETRY_UNSUPPORTED_VERSION": "the run's dbt version does not support dbt retry",
    "RETRY_NOT_LATEST_RUN": "it is not the job's latest run",
    "RETRY_NOT_FAILED_RUN": "it did not fail",
    "RETRY_NO_RUN_RESULTS": "it left no run_results.json",
}
MAX_FAILURE_IN_NOTICE = 300  # characters of a persistent failure's message in the `restart-on: transient` notice
DELAY_CAP = 1800.0  # seconds: the longest wait `delay` grows to (30 minutes), unless `delay` itself is longer

Level = Literal["info", "notice", "warning", "error"]
# What the new run is: the plan's steps (select), the job as it is (full: the previous run succeeded and
# `if-previous-succeeded: run`), or dbt Cloud's own rerun from failure (native).
Kind = Literal["select", "full", "native"]


@dataclass(frozen=True)
class Say:
    """One line for the log: its level, its text and (for annotations) a title."""

    level: Level
    text: str
    title: str = ""


@dataclass(frozen=True, kw_only=True)
class Finished:
    """The restart ends here, without a trigger."""

    outcome: Outcome
    say: tuple[Say, ...] = ()
    follow_up: bool = False  # a planned restart (dry run): still read what it would save (`followup.conclude`)


@dataclass(frozen=True, kw_only=True)
class TriggerRequest:
    """A run to start, and what to send for it."""

    kind: Kind
    body: Mapping[str, Any]  # the POST body (cause, steps_override, the context); empty for `native`
    marker: str  # the rendered cause marker the trigger protocol looks for; '' for `native` (no cause sent)
    plan: Plan | None = None
    details: tuple[str, ...] = ()  # for the summary: what dbt Cloud said its rerun will run
    classified: tuple[transient.Failure, ...] = ()
    say: tuple[Say, ...] = ()
    context: NewContext | None = None  # the context sent (None for `native`: dbt Cloud's rerun keeps it)

    @property
    def follow_up(self) -> bool:
        """Whether the new run is checked against the plan and the work avoided is read."""
        return self.kind == "select"


@dataclass(frozen=True)
class Proceed:
    """Nothing stops the restart; `earlier` restarts of the same failure were already made."""

    earlier: int


Decision = Finished | TriggerRequest


def default_cause(run: Run, context: Context) -> str:
    cause = f"Restart of run #{run.id} from its point of failure"
    if context.dbt_event_label:
        cause += f" after {context.dbt_event_label}"
    if context.triggering_url:
        return f"{cause} after failed workflow run {context.triggering_url}"
    return cause + (f" by {context.run_url}" if context.run_url else "")


def skip_for_event(context: Context) -> str:
    """Why the triggering event means there is nothing to restart ('' when there is)."""
    if context.event_name == "workflow_run" and context.triggering_conclusion != "failure":
        conclusion = context.triggering_conclusion or "unknown"
        return f"the triggering workflow run {context.triggering_label} concluded `{conclusion}`, not `failure`"
    return ""


def previous_problem(settings: Settings, run: Run) -> str:
    """'' or why `run` cannot be the run to restart: another job's run, or one not finished."""
    if run.job_id != settings.job_id:
        return f"run {run.id} belongs to job {run.job_id}, not to job-id {settings.job_id}"
    if not run.is_complete:
        return f"run {run.id} is still {run.status_name}: wait for it to finish before restarting"
    return ""


def event_details(context: Context) -> tuple[str, ...]:
    """For the summary: the event that started this restart (a failed workflow run, a dbt Cloud event)."""
    if context.triggering_url:
        return (f"Triggered by failed workflow run {context.triggering_label}: {context.triggering_url}",)
    if context.dbt_event_label:
        return (f"Triggered by {context.dbt_event_label}, dispatched by the relay",)
    return ()


def skip_dispatched(settings: Settings, context: Context, previous: Run, recent: list[Run]) -> Finished | None:
    """Under `repository_dispatch`: not a run that succeeded, one a person cancelled, or a stale event's.

    The relay filters these already; this is defence in depth against a forged, mistaken or replayed
    event. A run its job's timeout cancelled says so in its status message (`Run.timed_out`) and is
    restarted. A run older than every run the recent list holds belongs to an old delivery replayed.
    """
    if context.event_name != REPOSITORY_DISPATCH:
        return None
    why = ""
    if previous.status == SUCCESS:
        why = f"run {previous.id} succeeded: the repository_dispatch event names a run that did not fail"
    elif previous.status == CANCELLED and not previous.timed_out:
        why = f"run {previous.id} was cancelled, not stopped by its job's timeout: a cancelled run is not restarted"
    elif recent and all(run.id > previous.id for run in recent):
        why = f"run {previous.id} is older than the job's {len(recent)} latest runs: a stale event"
    if not why:
        return None
    return _finished(settings, "skipped", why, Say("notice", f"{why}; nothing to restart"), previous=previous)


def restarts(run: Run, previous: Run) -> bool:
    """Whether `run` restarts exactly `previous`: its marker names it, or it is dbt Cloud's rerun of it."""
    if run.id == previous.id:
        return False
    if run.retrying_run_id == previous.id:
        return True
    marker = read_marker(run.cause)
    return marker is not None and marker.restarts_run(previous.id)


def first_restart(previous: Run, runs: list[Run], before: int | None = None) -> Run | None:
    """The earliest-created of `runs` that restarts exactly `previous` (and, given `before`, is older than it)."""
    found = [run for run in runs if restarts(run, previous) and (before is None or run.id < before)]
    return min(found, key=lambda run: run.id, default=None)


def duplicate(settings: Settings, previous: Run, recent: list[Run]) -> Finished | None:
    """`previous` already restarted (running, queued or finished, whatever its result): exit 0 with a notice.

    The same failure dispatched twice (two relays, a redelivery, a re-run workflow) starts one restart.
    A restart that failed is restarted through its own failure, not through this one's again. A dry run
    says the same: it reports what a real run would do.
    """
    run = first_restart(previous, recent)
    if run is None:
        return None
    done = "rerun from failure" if run.retrying_run_id == previous.id else "restarted"
    text = f"run {previous.id} was already {done} by run {run.id} ({run.status_name})"
    hint = f"; restart run {run.id} instead if it failed" if run.is_complete and run.status != SUCCESS else ""
    say = Say("notice", f"{text}: {run.href}{hint}", "Already restarted")
    details = (f"Already restarted by run #{run.id}: {run.href}",)
    return _finished(settings, "skipped", text + hint, say, previous=previous, existing=run, details=details)


@dataclass(frozen=True)
class Twin:
    """Another restart of the same run, created before ours; `cancel`: ours has not started, so it gives way."""

    earlier: Run
    cancel: bool


def twin(previous: Run, ours: Run, recent: list[Run]) -> Twin | None:
    """Right after our trigger: a restart of `previous` created first (by another copy), as `recent` shows.

    `ours` is taken from `recent` when it is there (its status now), else as the trigger answered.
    """
    earlier = first_restart(previous, recent, before=ours.id)
    if earlier is None:
        return None
    now = next((run for run in recent if run.id == ours.id), ours)
    return Twin(earlier, cancel=now.status in (QUEUED, STARTING))


def gave_way(settings: Settings, previous: Run, earlier: Run, ours: Run) -> Finished:
    """The end of a restart whose run `ours` was cancelled for `earlier`, another copy's restart of
    `previous` created first (`twin`)."""
    text = f"run {previous.id} is already restarted by run {earlier.id} ({earlier.status_name}), created first"
    say = Say(
        "notice", f"{text}: {earlier.href}; cancelled run {ours.id} that this restart had started", "Already restarted"
    )
    details = (
        f"Already restarted by run #{earlier.id}: {earlier.href}",
        f"Run #{ours.id}, triggered at the same time, was cancelled before it started.",
    )
    return _finished(settings, "skipped", text, say, previous=previous, existing=earlier, details=details)


@dataclass(frozen=True)
class Delay:
    """How long to wait before triggering, and why (for the log and the summary)."""

    seconds: float
    reason: str = ""


def delay_before(delay: float, earlier: int) -> Delay:
    """`delay`, doubled for each earlier restart of the same failure, capped at `DELAY_CAP` (or `delay`).

    A failure that keeps coming back gets more time to recover (a flaky warehouse), but never more than
    half an hour between attempts unless `delay` asks for more.
    """
    if delay <= 0:
        return Delay(0.0)
    if earlier <= 0:
        return Delay(delay, f"delay {delay:g}s")
    doubled = delay * 2 ** min(earlier, 32)
    grown = min(doubled, max(DELAY_CAP, delay))
    capped = " (capped)" if grown < doubled else ""
    reason = f"delay {delay:g}s doubled for each of {earlier} earlier restart(s) of this failure{capped}"
    return Delay(grown, reason)


def retries_and_causes(previous: Run, recent: list[Run]) -> tuple[dict[int, int], dict[int, str]]:
    """From the job's recent runs and the previous run: run -> the run it reruns natively, run -> cause."""
    retrying: dict[int, int] = {}
    causes: dict[int, str] = {}
    for run in recent:
        causes[run.id] = run.cause
        if run.retrying_run_id is not None:
            retrying[run.id] = run.retrying_run_id
    if previous.retrying_run_id is not None:
        retrying[previous.id] = previous.retrying_run_id
    return retrying, causes


def check_attempts(settings: Settings, previous: Run, recent: list[Run]) -> tuple[int, str]:
    """(earlier restarts of the same failure among the job's recent runs, '' or why not restart again)."""
    if settings.max_attempts == 0:
        return 0, ""
    retrying, causes = retries_and_causes(previous, recent)
    original = failure_behind(previous.id, previous.cause, retrying, causes)
    earlier = count_restarts(original, retrying, causes)
    if earlier >= settings.max_attempts:
        return earlier, (
            f"run {original} has already been restarted {earlier} time(s) (max-attempts {settings.max_attempts}); "
            "not restarting it again"
        )
    return earlier, ""


def _finished(
    settings: Settings, status: OutcomeStatus, headline: str, say: Say, code: int = 0, **fields: Any
) -> Finished:
    outcome = Outcome(status=status, headline=headline, strategy=settings.strategy, exit_code=code, **fields)
    return Finished(outcome=outcome, say=(say,))


@dataclass(frozen=True)
class Busy:
    """The job is busy with `run` (its oldest active run); `waited` seconds were spent waiting (None: not waited)."""

    run: Run
    waited: float | None = None

    def describe(self, job_id: int) -> str:
        said = f"run {self.run.id} of job {job_id} is {self.run.status_name}"
        return said if self.waited is None else f"{said} after waiting {self.waited:g}s"


def busy_with(recent: list[Run]) -> Run | None:
    """The run the job is busy with: the oldest of its active runs (`recent` is newest first), or None."""
    active = [r for r in recent if r.status in ACTIVE]
    return active[-1] if active else None


def gate(settings: Settings, previous: Run, recent: list[Run], busy: Busy | None) -> Finished | Proceed:
    """Whether anything stops the restart before planning: a busy job, the loop guard, a run that succeeded."""
    if busy is not None:
        message = f"{busy.describe(settings.job_id)}: not starting another run of the job"
        if settings.if_job_running == "fail":
            return _finished(
                settings, "error", message, Say("error", message, "dbt-cloud-restart"), 1, previous=previous
            )
        return _finished(settings, "skipped", message, Say("warning", message), previous=previous)
    if previous.status == SUCCESS:
        mode = settings.if_previous_succeeded
        if mode == "skip":
            say = Say("notice", f"run {previous.id} succeeded: nothing to restart")
            return _finished(
                settings, "skipped", f"run #{previous.id} succeeded; nothing to restart", say, previous=previous
            )
        if mode == "fail":
            message = f"run {previous.id} succeeded and if-previous-succeeded is `fail`"
            return _finished(
                settings, "error", message, Say("error", message, "dbt-cloud-restart"), 1, previous=previous
            )
        return Proceed(0)
    earlier, refusal = check_attempts(settings, previous, recent)
    if refusal:
        return _finished(settings, "skipped", refusal, Say("warning", refusal, "Loop guard"), previous=previous)
    return Proceed(earlier)


def route(settings: Settings, previous: Run) -> Kind:
    """Which kind of new run the restart starts (once `gate` let it through)."""
    if previous.status == SUCCESS:
        return "full"
    return "native" if settings.strategy == "native" else "select"


def new_context(settings: Settings, previous: Run) -> NewContext | Finished:
    """The context of the new run (`restart.overrides.merge`), or the end of the restart when the failed
    run's context cannot be kept (a field of its trigger could not be read)."""
    context = merge(previous.context, settings.payload, settings.context)
    refusal = unread_refusal(context, previous.id)
    if refusal:
        say = Say("error", refusal, "dbt-cloud-restart")
        return _finished(settings, "error", refusal, say, 1, previous=previous, context=context)
    return context


def context_says(context: NewContext) -> tuple[Say, ...]:
    """What to tell about the new run's context: a pinned commit is rerun as it was."""
    note = sha_note(context)
    return (Say("notice", note, "Pinned commit"),) if note else ()


def full_run(settings: Settings, previous: Run, cause: str, marker: str) -> Decision:
    """The previous run succeeded and `if-previous-succeeded: run`: the job again, as it is, in its context."""
    context = new_context(settings, previous)
    if isinstance(context, Finished):
        return context
    if settings.dry_run:
        headline = f"would run job {settings.job_id} in full"
        outcome = Outcome(
            status="planned", headline=headline, strategy=settings.strategy, previous=previous, context=context
        )
        return Finished(outcome=outcome, say=context_says(context))
    body = {"cause": cause, **context.body}
    return TriggerRequest(kind="full", body=body, marker=marker, context=context, say=context_says(context))


def native_refusal(previous: Run) -> str:
    """'' or why dbt Cloud will not rerun `previous` from failure (it says so in `can_retry`)."""
    if previous.can_retry is not False:
        return ""
    reason = previous.retry_not_supported_reason or "unknown"
    why = RETRY_REASONS.get(reason, reason)
    if previous.timed_out:  # dbt Cloud cancels a timed-out run, and will not rerun a cancelled one
        why += ": it was cancelled by its job's timeout; strategy `select` restarts it"
    return f"dbt Cloud cannot rerun run {previous.id} from failure ({reason}: {why})"


def native_rerun(settings: Settings, previous: Run, native: tuple[str, ...]) -> Decision:
    """dbt Cloud's rerun from failure (`native`, not refused); `native` is what it said it will run."""
    if settings.dry_run:
        headline = f"would ask dbt Cloud to rerun job {settings.job_id}"
        planned = Outcome(status="planned", headline=headline, strategy="native", previous=previous, details=native)
        return Finished(outcome=planned)
    return TriggerRequest(kind="native", body={}, marker="", details=native)


def select_rerun(settings: Settings, previous: Run, plan: Plan, cause: str, marker: str) -> Decision:
    """The plan's steps (`select`): nothing to rerun, failures not all transient, a dry run, or the trigger."""
    if not plan.steps_override:
        nothing = Say("warning", f"run {previous.id} failed outside its commands; there is nothing to rerun")
        return _finished(settings, "skipped", "nothing to rerun", nothing, previous=previous, plan=plan)
    classified: tuple[transient.Failure, ...] = ()
    say: tuple[Say, ...] = ()
    if settings.restart_on == "transient":
        compiled = transient.compile_patterns(settings.transient_patterns or transient.DEFAULT_PATTERNS)
        classified = tuple(transient.failures(plan, previous, compiled))
        persistent = next((f for f in classified if not f.transient), None)
        if persistent is not None or not classified:
            why = f"{persistent.where} failed persistently: {persistent.reason}" if persistent else "no failure found"
            message = f"not restarting run {previous.id} (restart-on: transient): {why}"
            # Remote text goes in as escaped data of one notice line: it cannot start a command.
            shown = f" ({' '.join(persistent.message.split())[:MAX_FAILURE_IN_NOTICE]})" if persistent else ""
            notice = Say("notice", message + shown)
            return _finished(settings, "skipped", message, notice, previous=previous, plan=plan, classified=classified)
        say = (Say("info", f"all {len(classified)} failure(s) look transient: restarting"),)
    context = new_context(settings, previous)
    if isinstance(context, Finished):
        return context
    say += context_says(context)
    if settings.dry_run:
        headline = f"{len(plan.steps_override)} step(s) planned, not triggered"
        planned = Outcome(
            status="planned",
            headline=headline,
            strategy=settings.strategy,
            previous=previous,
            plan=plan,
            context=context,
        )
        return Finished(outcome=planned, say=say, follow_up=True)
    body = {"cause": cause, "steps_override": plan.steps_override, **context.body}
    return TriggerRequest(
        kind="select", body=body, marker=marker, plan=plan, classified=classified, say=say, context=context
    )


# -- after the trigger ------------------------------------------------------------------------------

FAILED_STATES: frozenset[OutcomeStatus] = frozenset({"error", "cancelled", "timeout"})
# How waiting for the new run ended: not waited for (`wait: false`), lost track of (its status could not
# be read), interrupted (the workflow was cancelled), timed out (`timeout`), or finished.
Ending = Literal["not-waited", "lost", "interrupted", "timed-out", "finished"]
ReportState = Literal["pending", "success", "failure"]


def exit_for(settings: Settings, status: OutcomeStatus) -> int:
    """The step's exit code for a new run that ended `status`."""
    return 1 if status in FAILED_STATES and settings.fail_on_run_failure else 0


def after_wait(
    settings: Settings,
    previous: Run,
    request: TriggerRequest,
    new_run: Run,
    ending: Ending,
    *,
    detail: str = "",
    signal_exit: int = 0,
) -> Finished:
    """What the wait's `ending` means for the restart: its outcome, and what to log.

    `detail` is the error that lost track of the run (`lost`), or what became of it (`interrupted`,
    `timed-out`: cancelled, left running); `signal_exit` is the exit code a cancel asks for.
    """
    id_, status = new_run.id, new_run.status_known
    fields: dict[str, Any] = {
        "previous": previous,
        "plan": request.plan,
        "new_run": new_run,
        "strategy": settings.strategy,
        "classified": request.classified,
        "details": request.details,
    }
    match ending:
        case "not-waited":
            return Finished(outcome=Outcome(status=status, headline=f"run #{id_} started", **fields))
        case "lost":
            say = Say("error", f"lost track of run {id_}: {detail}", "dbt-cloud-restart")
            outcome = Outcome(status=status, headline=f"run #{id_} started; {detail}", exit_code=1, **fields)
            return Finished(outcome=outcome, say=(say,))
        case "interrupted":
            fields["details"] = (*request.details, detail)
            say = Say("error", f"the workflow was cancelled while run {id_} was {status}. {detail}", "Cancelled")
            outcome = Outcome(
                status="cancelled", headline=f"interrupted; {detail}", exit_code=signal_exit, interrupted=True, **fields
            )
            return Finished(outcome=outcome, say=(say,))
        case "timed-out":
            fields["details"] = (*request.details, *((detail,) if detail else ()))
            say = Say("error", f"run {id_} did not finish within {settings.timeout:g}s", "Timeout")
            return Finished(
                outcome=Outcome(status="timeout", headline=f"run #{id_} timed out", exit_code=1, **fields), say=(say,)
            )
        case "finished":
            says: tuple[Say, ...] = ()
            if status != "success":
                reason = f": {new_run.status_message}" if new_run.status_message else ""
                says = (Say("error", f"run {id_} ended {status}{reason}", "dbt Cloud run failed"),)
            code = exit_for(settings, status)
            return Finished(
                outcome=Outcome(status=status, headline=f"run #{id_} {status}", exit_code=code, **fields), say=says
            )
        case _:
            assert_never(ending)


def trigger_unknown(
    settings: Settings, previous: Run, request: TriggerRequest, look_for: str, message: str
) -> Finished:
    """The trigger's answer was lost and nothing could say whether it started a run (`message` says why)."""
    headline = f"a run of job {settings.job_id} may have started: look for {look_for}"
    details = (
        *request.details,
        f"The answer to the trigger was lost and dbt Cloud could not say whether it started a run:"
        f" look in job {settings.job_id} for {look_for}.",
        "Nothing was sent twice: follow or cancel that run in dbt Cloud before restarting again.",
    )
    outcome = Outcome(
        status="error",
        headline=headline,
        exit_code=1,
        previous=previous,
        plan=request.plan,
        strategy=settings.strategy,
        details=details,
    )
    return Finished(outcome=outcome, say=(Say("error", message, "Trigger answer lost"),))


def cancelled_before_trigger(settings: Settings, previous: Run | None, plan: Plan | None, signal_exit: int) -> Finished:
    """The workflow was cancelled before a run was started: nothing triggered; what was found is kept."""
    outcome = Outcome(
        status="cancelled",
        headline="cancelled before triggering",
        strategy=settings.strategy,
        exit_code=signal_exit,
        previous=previous,
        plan=plan,
        interrupted=True,
    )
    say = Say("error", "the workflow was cancelled before a run was started", "Cancelled")
    return Finished(outcome=outcome, say=(say,))


def report_state(outcome: Outcome) -> ReportState | None:
    """The commit status a restart that started a run ends with (None when it started none).

    A success that was not verified fails; a run still going (`wait: false`) is pending.
    """
    if outcome.new_run is None:
        return None
    if outcome.status in FAILED_STATES or outcome.exit_code != 0:
        return "failure"
    return "success" if outcome.status == "success" else "pending"


def judge(settings: Settings, outcome: Outcome, verdict: Verdict) -> Finished:
    """The outcome with the verdict on its new run; a success that left planned work undone fails the
    step (`verify: fail`) or warns (`verify: warn`)."""
    new = outcome.new_run
    assert new is not None
    outcome = replace(outcome, verdict=verdict)
    says = [
        Say("warning", f"the node results of step {step.new_index} of run {new.id} could not be read: not verified")
        for step in verdict.unknown
    ]
    if verdict.unplanned:
        shown = ", ".join(verdict.unplanned[:5]) + (" ..." if len(verdict.unplanned) > 5 else "")
        says.append(
            Say("warning", f"run {new.id} also ran {len(verdict.unplanned)} node(s) that were not planned: {shown}")
        )
    return _verified_or_not(settings, outcome, says, complaint(verdict, new.id) if new.status == SUCCESS else "")


def judge_context(settings: Settings, outcome: Outcome, check: ContextCheck) -> Finished:
    """The outcome with the new run's trigger checked against the context sent; another context fails
    the step (`verify: fail`) or warns (`verify: warn`), as planned work left undone does."""
    new = outcome.new_run
    assert new is not None
    outcome = replace(outcome, context_check=check)
    unknown = f"run {new.id} was read without its trigger: its context is not verified"
    says = [Say("warning", unknown)] if check.unknown else []
    return _verified_or_not(settings, outcome, says, context_complaint(check, new.id))


def _verified_or_not(settings: Settings, outcome: Outcome, says: list[Say], why: str) -> Finished:
    """`outcome` as it is when nothing is wrong (`why` empty) or `verify: warn`; else a failed step."""
    if not why:
        return Finished(outcome=outcome, say=tuple(says))
    if settings.verify == "warn":
        return Finished(outcome=outcome, say=(*says, Say("warning", why, "Not verified")))
    says.append(Say("error", why + "; set verify: warn to let such a restart pass", "Restart not verified"))
    headline = outcome.headline if outcome.headline.endswith("not verified") else f"{outcome.headline}, not verified"
    failed = replace(outcome, exit_code=max(outcome.exit_code, 1), headline=headline)
    return Finished(outcome=failed, say=tuple(says))
