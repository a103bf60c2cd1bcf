"""The restart carried out: the I/O around the decisions of `restart.decide`.

`restart()` finds the run to restart, reads what the decision needs (recent runs, artifacts, the plan,
dbt Cloud's rerun plan), asks `restart.decide`, then delays, triggers (`restart.trigger`), waits
(`restart.poll`), asks `restart.decide` again what the wait's ending means, follows up and reports.
Each stage reads, asks, and does what the answer says. It talks to dbt Cloud through the `Cloud`
protocol (`restart.api.DbtCloud`, or a fake in tests); several jobs in one step are `restart.jobs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol, assert_never

from restart import actions, decide, followup, trigger
from restart.api import DbtCloud
from restart.artifacts import ArtifactError, Manifest, NodeResult, load_manifest, parse_run_results
from restart.cause import next_marker, with_marker
from restart.commands import DbtCommand
from restart.context import Context, read_context
from restart.dbt_vocabulary import REBUILD_FAILED, Rebuild
from restart.decide import TriggerRequest, skip_for_event
from restart.github import Reporter
from restart.outcome import Outcome
from restart.plan import (
    Plan,
    StepArtifacts,
    align,
    interrupted_step,
    make_plan,
    manifest_needed,
    needs_artifacts,
    step_command,
)
from restart.poll import wait_for, wait_while_busy
from restart.records import RecordError, RetryDetails, Run, run_from_json
from restart.redaction import redact
from restart.settings import Settings
from restart.signals import Interrupted, Stop
from restart.transport import ApiError


class Cloud(trigger.TriggerClient, Protocol):
    """What the restart needs of dbt Cloud (`restart.api.DbtCloud` has it all)."""

    @property
    def calls(self) -> int: ...

    def close(self) -> None: ...

    def get_run(self, run_id: int, include: Iterable[str] = ...) -> Run: ...

    def latest_finished_run_id(self, job_id: int) -> int | None: ...

    def get_job(self, job_id: int) -> dict[str, Any]: ...

    def get_artifact(self, run_id: int, path: str, step: int | None = None) -> Any: ...

    def get_artifact_bytes(self, run_id: int, path: str, step: int | None = None) -> bytes | None: ...

    def recent_runs(self, job_id: int, limit: int = ...) -> list[Run]: ...

    def retry_details(self, run_id: int) -> RetryDetails: ...

    def rerun(self, job_id: int) -> dict[str, Any]: ...


class RestartError(Exception):
    """A condition that ends the restart with a one-line error (after `previous` was found)."""

    def __init__(self, message: str, previous: Run | None = None) -> None:
        super().__init__(message)
        self.previous = previous


def find_previous_run(client: Cloud, settings: Settings, recent: list[Run]) -> Run:
    """The run to restart: the given one, or the job's latest finished run (from `recent`)."""
    run_id = settings.run_id
    if run_id is None:
        latest = next((r for r in recent if r.is_complete), None)
        run_id = latest.id if latest else client.latest_finished_run_id(settings.job_id)
    if run_id is None:
        client.get_job(settings.job_id)  # a 404 here says the job itself does not exist
        raise RestartError(f"job {settings.job_id} has no finished run to restart")
    run = client.get_run(run_id)
    problem = decide.previous_problem(settings, run)
    if problem:
        raise RestartError(problem)
    return run


def read_artifacts(
    client: Cloud,
    run: Run,
    step: int,
    command: DbtCommand,
    log: actions.Log | None = None,
    rebuild: Rebuild = REBUILD_FAILED,
    *,
    results_only: bool = False,
) -> StepArtifacts:
    """One failed step's run_results.json (and, when needed, manifest.json) or why they are unusable.

    `results_only`: the step reruns as written whatever its results say (a cancelled run stopped it).
    """
    try:
        document = client.get_artifact(run.id, "run_results.json", step)
        if document is None:
            return StepArtifacts(problem="run_results.json is missing")
        results = parse_run_results(document)
    except (ApiError, ArtifactError) as exc:
        return StepArtifacts(problem=str(exc))
    reason = "" if results_only else manifest_needed(results, command, rebuild, run.dbt_version)
    if log is not None:
        log.debug(f"step {step}: " + (f"reading manifest.json ({reason})" if reason else "manifest.json not needed"))
    if not reason:
        return StepArtifacts(run_results=results)
    manifest: Manifest | None = None
    try:  # read from its bytes, shedding each node's code and columns as it goes
        raw = client.get_artifact_bytes(run.id, "manifest.json", step)
        if raw is None:
            problem = "it is missing"
        else:
            manifest = load_manifest(raw)
    except (ApiError, ArtifactError) as exc:
        problem = str(exc)
    if manifest is None and log is not None:
        log.debug(f"step {step}: manifest.json could not be read: {problem}")
    return StepArtifacts(run_results=results, manifest=manifest)


def read_new_results(client: Cloud, run: Run, log: actions.Log) -> dict[int, list[NodeResult]]:
    """The finished new run's node results, per command step (for the summary); best effort."""
    found: dict[int, list[NodeResult]] = {}
    for step in run.steps:
        if step_command(step.name) is None or step.skipped:  # dbt Cloud's setup steps; steps never reached
            continue
        try:
            document = client.get_artifact(run.id, "run_results.json", step.index)
            if document is not None:
                found[step.index] = list(parse_run_results(document).results)
        except (ApiError, ArtifactError) as exc:
            log.debug(f"no node results for step {step.index} of run {run.id}: {exc}")
    return found


def plan_restart(client: Cloud, run: Run, log: actions.Log | None = None, rebuild: Rebuild = REBUILD_FAILED) -> Plan:
    """Read the failed steps' artifacts and plan the restart."""
    paired, _ = align(run)
    stopped = interrupted_step(run, paired)
    found = {
        step: read_artifacts(client, run, step, command, log, rebuild, results_only=step == stopped)
        for step, command in needs_artifacts(paired).items()
    }
    return make_plan(run, found, rebuild=rebuild)


def native_plan(client: Cloud, run: Run, log: actions.Log) -> tuple[str, ...]:
    """What dbt Cloud's rerun from failure will run, as it says itself (`GET .../retry/`; starts nothing)."""
    with log.group("Plan (dbt Cloud's rerun from failure)"):
        try:
            details = client.retry_details(run.id)
        except (ApiError, RecordError) as exc:
            log.warning(f"dbt Cloud did not say what its rerun of run {run.id} will run: {exc}")
            return ()
        if not details.failed_step:
            return ()
        rest = "".join(f", then {step}" for step in details.skipped_steps)
        line = f"dbt Cloud's rerun: dbt retry (of the failed step: {details.failed_step}){rest}"
        log.info(line)
        return (line,)


def _cancel(client: Cloud, run: Run, log: actions.Log) -> str:
    try:
        client.cancel_run(run.id)
    except ApiError as exc:
        log.warning(f"could not cancel run {run.id}: {exc}")
        return f"Run #{run.id} could not be cancelled: {exc}"
    return f"Run #{run.id} was cancelled."


def _trigger(client: Cloud, settings: Settings, log: actions.Log, previous: Run, request: TriggerRequest) -> Run:
    """Start the new run `request` asks for, never twice (`restart.trigger`); raises `TriggerUnknown`."""
    with log.group("Trigger"):
        if request.kind == "native":
            data, warning = trigger.rerun_run(client, settings.job_id, previous.id)
        else:
            data, warning = trigger.trigger_run(client, settings.job_id, dict(request.body), request.marker)
        if warning:
            log.warning(warning)
        new = run_from_json(data)
        log.notice(f"Started run {new.id}: {new.href}", title="dbt Cloud run")
    return new


def _wait(client: Cloud, settings: Settings, log: actions.Log, stop: Stop, new: Run) -> tuple[Run, decide.Ending, str]:
    """Follow the new run to its end: (the run as last seen, how the wait ended, its detail)."""
    if not settings.wait:
        return new, "not-waited", ""
    try:
        with log.group(f"Wait for run {new.id}"):
            new, timed_out = wait_for(client, new, settings, log, stop)
    except ApiError as exc:
        return new, "lost", str(exc)
    except Interrupted:
        detail = _cancel(client, new, log) if settings.cancel_on_timeout else f"Run #{new.id} was left running."
        return new, "interrupted", detail
    if timed_out:
        return new, "timed-out", _cancel(client, new, log) if settings.cancel_on_timeout else ""
    try:
        return client.get_run(new.id), "finished", ""
    except ApiError as exc:  # the run is over: report it as last seen
        log.warning(f"could not read the finished run {new.id} again: {exc}")
        return new, "finished", ""


def carry_out(
    client: Cloud,
    settings: Settings,
    log: actions.Log,
    stop: Stop,
    previous: Run,
    request: TriggerRequest,
    reporter: Reporter | None = None,
    connect: Callable[[], followup.ArtifactReader] | None = None,
    delay: decide.Delay | None = None,
) -> Outcome:
    """Delay, trigger, wait, and (for a planned restart) read what it saved and verify it."""
    reader = None
    if request.follow_up and request.plan:
        reader = followup.DroppedReader(settings, previous, request.plan, connect)
    delay = delay or decide.delay_before(settings.delay, 0)
    if not _delay(delay, log, stop):
        return _said(log, decide.cancelled_before_trigger(settings, previous, request.plan, stop.exit_code))
    try:
        new = _trigger(client, settings, log, previous, request)
    except trigger.TriggerUnknown as exc:
        message = redact(str(exc), settings.token)
        return _said(log, decide.trigger_unknown(settings, previous, request, exc.look_for, message))
    yielded = yield_to_earlier(client, settings, log, previous, new)
    if yielded is not None:
        outcome = replace(yielded, plan=request.plan, details=(*request.details, *yielded.details))
    else:
        if reporter:
            reporter.set_status("pending", new.href, f"dbt Cloud run #{new.id} restarting run #{previous.id}")
        if reader:
            reader.start()
        new, ending, detail = _wait(client, settings, log, stop, new)
        ended = decide.after_wait(settings, previous, request, new, ending, detail=detail, signal_exit=stop.exit_code)
        outcome = _said(log, ended)
        if ending == "finished" and new.is_complete:
            outcome = replace(outcome, new_results=read_new_results(client, new, log))
    outcome = followup.conclude_context(settings, log, replace(outcome, context=request.context))
    if delay.seconds:
        waited = f"Waited {delay.seconds:g}s before triggering: {delay.reason}."
        outcome = replace(outcome, details=(waited, *outcome.details))
    return outcome if reader is None else followup.conclude(settings, log, outcome, reader)


def _said(log: actions.Log, finished: decide.Finished) -> Outcome:
    """Log what a decision says; its outcome."""
    _say(log, finished.say)
    return finished.outcome


def yield_to_earlier(client: Cloud, settings: Settings, log: actions.Log, previous: Run, new: Run) -> Outcome | None:
    """Look again right after the trigger: if another copy's restart of `previous` was created first, cancel ours.

    Two copies of the action handling the same failure at the same instant both pass the duplicate
    check; each then sees the other's run, and only the later-created one (a higher id) gives way.
    """
    try:
        recent = client.recent_runs(settings.job_id)
    except ApiError as exc:
        log.warning(f"could not check that run {new.id} is the only restart of run {previous.id}: {exc}")
        return None
    found = decide.twin(previous, new, recent)
    if found is None:
        return None
    earlier = found.earlier
    if not found.cancel:
        log.warning(f"runs {earlier.id} and {new.id} both restart run {previous.id}; run {new.id} already started")
        return None
    try:
        client.cancel_run(new.id)
    except ApiError as exc:
        log.warning(
            f"run {earlier.id} already restarts run {previous.id}, but run {new.id} could not be cancelled: "
            f"{exc}; cancel it in dbt Cloud"
        )
        return None
    return _said(log, decide.gave_way(settings, previous, earlier, new))


def restart(
    settings: Settings,
    client: Cloud,
    log: actions.Log,
    context: Context,
    stop: Stop,
    reporter: Reporter | None = None,
    connect: Callable[[], followup.ArtifactReader] | None = None,
) -> Outcome:
    """Find the previous run, read what the decision needs, decide (`restart.decide`), then carry it out.

    Returns the outcome; raises on hard errors (`execute` turns them into failed outcomes). `connect`
    makes the second client that reads the dropped steps' results while the new run runs.
    """
    with log.group("Find the run to restart"):
        busy, recent = wait_while_busy(client, settings, log, stop)
        previous = find_previous_run(client, settings, recent)
        log.info(f"run {previous.id} of job {previous.job_id}: {previous.status_name} ({previous.href})")
    found = decide.duplicate(settings, previous, recent) or decide.skip_dispatched(settings, context, previous, recent)
    if found is not None:
        return _said(log, found)
    gate = decide.gate(settings, previous, recent, busy)
    if isinstance(gate, decide.Finished):
        return _said(log, gate)
    marker = next_marker(previous.id, previous.cause, gate.earlier)
    cause = with_marker(settings.cause or decide.default_cause(previous, context), marker)
    kind = decide.route(settings, previous)
    match kind:
        case "full":
            decision = decide.full_run(settings, previous, cause, marker.render())
        case "native":
            refusal = decide.native_refusal(previous)
            if refusal:
                raise RestartError(refusal, previous)
            decision = decide.native_rerun(settings, previous, native_plan(client, previous, log))
        case "select":
            with log.group("Plan"):
                plan = plan_restart(client, previous, log, settings.rebuild)
                _log_plan(log, plan)
            decision = decide.select_rerun(settings, previous, plan, cause, marker.render())
        case _:
            assert_never(kind)
    if isinstance(decision, decide.Finished):
        outcome = _said(log, decision)
        if decision.follow_up and outcome.plan is not None:
            reader = followup.DroppedReader(settings, previous, outcome.plan, connect)
            return followup.conclude(settings, log, outcome, reader)
        return outcome
    _say(log, decision.say)
    delay = decide.delay_before(settings.delay, gate.earlier)
    return carry_out(client, settings, log, stop, previous, decision, reporter, connect, delay)


def _say(log: actions.Log, lines: tuple[decide.Say, ...]) -> None:
    """Log what a decision says."""
    for line in lines:
        log.say(line.level, line.text, line.title)


def _log_plan(log: actions.Log, plan: Plan) -> None:
    """The plan, step by step, with the failures (remote text, fenced) and the plan's warnings."""
    for step in plan.steps:
        arrow = f"\n    -> {step.new_command}" if step.new_command else ""
        log.info(f"{step.action:>6}: {step.command}{arrow}")
        if step.batches:
            log.info(f"    ({step.reason})")
    failures = [f for step in plan.steps for f in step.failures]
    if failures:
        with log.untrusted():
            for failure in failures:
                log.info(f"  {failure.status}: {failure.unique_id}: {' '.join(failure.message.split())[:500]}")
    for warning in plan.warnings:
        log.warning(warning)


def _delay(delay: decide.Delay, log: actions.Log, stop: Stop) -> bool:
    """Wait out `delay` before triggering; False when the workflow was cancelled meanwhile."""
    if delay.seconds:
        log.info(f"waiting {delay.seconds:g}s before triggering ({delay.reason})")
        try:
            stop.sleep(delay.seconds)
        except Interrupted:
            return False
    return not stop.requested


def _report(reporter: Reporter, outcome: Outcome) -> Outcome:
    """Final commit status and incident issue for a restart that started a run."""
    new, state = outcome.new_run, decide.report_state(outcome)
    if new is None or state is None:
        return outcome
    reporter.set_status(state, new.href, f"dbt Cloud run #{new.id}: {outcome.status}")
    if state == "pending":
        return outcome  # still running (wait: false): nothing to conclude
    failed = state == "failure"
    previous = outcome.previous
    body = (
        f"Restart of dbt Cloud run [#{previous.id if previous else '?'}]({previous.href if previous else ''}) "
        f"ended **{outcome.status}**: [run #{new.id}]({new.href})."
    )
    if reporter.context.run_url:
        body += f"\n\nWorkflow run: {reporter.context.run_url}"
    issue_url = reporter.track_issue(failed, f"run #{new.id}", body)
    return replace(outcome, issue_url=issue_url)


def execute(
    settings: Settings,
    log: actions.Log,
    env: Mapping[str, str],
    stop: Stop | None = None,
    client: Cloud | None = None,
) -> Outcome:
    """`restart()` with a client (made from `settings` unless given), every expected failure a failed `Outcome`."""
    stop = stop or Stop()
    context = read_context(env)
    why = skip_for_event(context)
    if why:
        log.notice(f"{why}: nothing to restart")
        return Outcome(status="skipped", headline=why, strategy=settings.strategy)
    reporter = None
    if settings.report != "none":
        reporter = Reporter(
            settings.github_token,
            context,
            settings.job_id,
            status=settings.report in ("status", "both"),
            issue=settings.report in ("issue", "both"),
            warn=log.warning,
            status_context=settings.status_context,
        )
    client = client or DbtCloud(settings.base_url, settings.token, settings.account_id)
    try:
        outcome = restart(settings, client, log, context, stop, reporter)
    except Interrupted:  # while waiting for a busy job: no previous run yet
        return _said(log, decide.cancelled_before_trigger(settings, None, None, stop.exit_code))
    except (ApiError, RestartError, RecordError) as exc:
        message = redact(str(exc), settings.token)
        log.error(message, title="dbt-cloud-restart")
        return Outcome(
            status="error",
            headline=message,
            strategy=settings.strategy,
            exit_code=1,
            previous=getattr(exc, "previous", None),
        )
    finally:
        log.debug(f"{client.calls} API call(s)")
        client.close()
    outcome = replace(outcome, details=(*decide.event_details(context), *outcome.details))
    return _report(reporter, outcome) if reporter else outcome
