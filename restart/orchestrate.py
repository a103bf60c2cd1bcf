"""The restart carried out: the I/O around the decisions of `restart.decide`.

`restart()` finds the run to restart, reads what the decision needs (recent runs, artifacts, the plan,
dbt Cloud's rerun plan), asks `restart.decide`, then delays, triggers, waits, follows up and reports.
It talks to dbt Cloud through the `Cloud` protocol (`restart.api.DbtCloud`, or a fake in tests).
"""

from __future__ import annotations

import io
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import FrameType
from typing import Any, Protocol

from restart import actions, decide, followup, trigger
from restart.api import ApiError, DbtCloud
from restart.artifacts import ArtifactError, Manifest, NodeResult, load_manifest, parse_run_results
from restart.cause import next_marker, with_marker
from restart.commands import DbtCommand
from restart.context import Context, read_context
from restart.dbt_vocabulary import REBUILD_FAILED, Rebuild
from restart.decide import TriggerRequest, skip_for_event
from restart.github import Reporter
from restart.outcome import Outcome
from restart.plan import Plan, StepArtifacts, align, make_plan, manifest_needed, needs_artifacts, step_command
from restart.records import ACTIVE, RecordError, RetryDetails, Run, run_from_json
from restart.settings import Settings, for_job

FAILED_STATES = frozenset({"error", "cancelled", "timeout"})
MAX_PARALLEL_JOBS = 8
POLL_CAP = 30.0  # seconds: the longest pause between two status checks


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
    if run.job_id != settings.job_id:
        raise RestartError(f"run {run_id} belongs to job {run.job_id}, not to job-id {settings.job_id}")
    if not run.is_complete:
        raise RestartError(f"run {run_id} is still {run.status_name}: wait for it to finish before restarting")
    return run


def read_artifacts(
    client: Cloud,
    run: Run,
    step: int,
    command: DbtCommand,
    log: actions.Log | None = None,
    rebuild: Rebuild = REBUILD_FAILED,
) -> StepArtifacts:
    """One failed step's run_results.json (and, when needed, manifest.json) or why they are unusable."""
    try:
        document = client.get_artifact(run.id, "run_results.json", step)
        if document is None:
            return StepArtifacts(problem="run_results.json is missing")
        results = parse_run_results(document)
    except (ApiError, ArtifactError) as exc:
        return StepArtifacts(problem=str(exc))
    reason = manifest_needed(results, command, rebuild, run.dbt_version)
    if log is not None:
        log.debug(f"step {step}: " + (f"reading manifest.json ({reason})" if reason else "manifest.json not needed"))
    if not reason:
        return StepArtifacts(run_results=results)
    manifest: Manifest | None = None
    try:  # read from its bytes, shedding each node's code and columns as it goes
        raw = client.get_artifact_bytes(run.id, "manifest.json", step)
        manifest = load_manifest(raw) if raw is not None else None
    except (ApiError, ArtifactError):
        manifest = None
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
    found = {
        step: read_artifacts(client, run, step, command, log, rebuild)
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


class Stop:
    """A cancellation request (SIGTERM/SIGINT from the runner), checked between polls."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum = 0

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGTERM)

    def sleep(self, seconds: float) -> None:
        if self.event.wait(seconds):
            raise Interrupted(self.signum)


class Interrupted(Exception):
    """The workflow was cancelled while the action waited."""


def wait_for(
    client: Cloud,
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


def _exit_for(status: str, settings: Settings) -> int:
    return 1 if status in FAILED_STATES and settings.fail_on_run_failure else 0


def _cancel(client: Cloud, run: Run, log: actions.Log) -> str:
    try:
        client.cancel_run(run.id)
    except ApiError as exc:
        log.warning(f"could not cancel run {run.id}: {exc}")
        return f"Run #{run.id} could not be cancelled: {exc}"
    return f"Run #{run.id} was cancelled."


def trigger_and_wait(
    client: Cloud,
    settings: Settings,
    log: actions.Log,
    stop: Stop,
    previous: Run,
    request: TriggerRequest,
    reporter: Reporter | None = None,
    after_trigger: Callable[[Run], None] | None = None,
) -> Outcome:
    """Start the new run `request` asks for and follow it to the end.

    `after_trigger` is called with the new run as soon as it exists (work to do while waiting).
    """
    strategy, plan = settings.strategy, request.plan
    with log.group("Trigger"):
        if request.kind == "native":
            data = client.rerun(settings.job_id)
        else:
            data, warning = trigger.trigger_run(client, settings.job_id, dict(request.body), request.marker)
            if warning:
                log.warning(warning)
        new = run_from_json(data)
        log.notice(f"Started run {new.id}: {new.href}", title="dbt Cloud run")
        yielded = yield_to_earlier(client, settings, log, previous, new)
        if yielded is not None:
            return replace(yielded, plan=plan)
        if reporter:
            reporter.set_status("pending", new.href, f"dbt Cloud run #{new.id} restarting run #{previous.id}")
    if after_trigger:
        after_trigger(new)
    if not settings.wait:
        return Outcome(
            status=new.status_name,
            headline=f"run #{new.id} started",
            previous=previous,
            plan=plan,
            new_run=new,
            strategy=strategy,
        )
    try:
        with log.group(f"Wait for run {new.id}"):
            new, timed_out = wait_for(client, new, settings, log, stop)
    except ApiError as exc:
        log.error(f"lost track of run {new.id}: {exc}", title="dbt-cloud-restart")
        return Outcome(
            status=new.status_name,
            headline=f"run #{new.id} started; {exc}",
            exit_code=1,
            previous=previous,
            plan=plan,
            new_run=new,
            strategy=strategy,
        )
    except Interrupted:
        detail = _cancel(client, new, log) if settings.cancel_on_timeout else f"Run #{new.id} was left running."
        log.error(f"the workflow was cancelled while run {new.id} was {new.status_name}. {detail}", title="Cancelled")
        return Outcome(
            status="cancelled",
            headline=f"interrupted; {detail}",
            exit_code=stop.exit_code,
            previous=previous,
            plan=plan,
            new_run=new,
            strategy=strategy,
            details=(detail,),
        )
    if timed_out:
        details: tuple[str, ...] = ()
        if settings.cancel_on_timeout:
            details = (_cancel(client, new, log),)
        log.error(f"run {new.id} did not finish within {settings.timeout:g}s", title="Timeout")
        return Outcome(
            status="timeout",
            headline=f"run #{new.id} timed out",
            exit_code=1,
            previous=previous,
            plan=plan,
            new_run=new,
            strategy=strategy,
            details=details,
        )
    try:
        final = client.get_run(new.id)
    except ApiError as exc:  # the run is over: report it as last seen
        log.warning(f"could not read the finished run {new.id} again: {exc}")
        final = new
    results = read_new_results(client, final, log) if final.is_complete else None
    status = final.status_name
    if status != "success":
        reason = f": {final.status_message}" if final.status_message else ""
        log.error(f"run {final.id} ended {status}{reason}", title="dbt Cloud run failed")
    code = _exit_for(status, settings)
    return Outcome(
        status=status,
        headline=f"run #{final.id} {status}",
        exit_code=code,
        previous=previous,
        plan=plan,
        new_run=final,
        strategy=strategy,
        new_results=results,
    )


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
    text = f"run {previous.id} is already restarted by run {earlier.id} ({earlier.status_name}), created first"
    log.notice(
        f"{text}: {earlier.href}; cancelled run {new.id} that this restart had started", title="Already restarted"
    )
    return Outcome(
        status="skipped",
        headline=text,
        strategy=settings.strategy,
        previous=previous,
        existing=earlier,
        details=(
            f"Already restarted by run #{earlier.id}: {earlier.href}",
            f"Run #{new.id}, triggered at the same time, was cancelled before it started.",
        ),
    )


def wait_while_busy(client: Cloud, settings: Settings, log: actions.Log, stop: Stop) -> tuple[str, list[Run]]:
    """The job's recent runs, and '' when none is active, else what to say about the active one.

    With `if-job-running: wait` it polls until the job is idle or `timeout` passes.
    """
    started = time.monotonic()
    while True:
        recent = client.recent_runs(settings.job_id)
        active = [r for r in recent if r.status in ACTIVE]
        if not active:
            return "", recent
        first = active[-1]  # the oldest active run: the one the job is busy with
        busy = f"run {first.id} of job {settings.job_id} is {first.status_name}"
        if settings.if_job_running != "wait":
            return busy, recent
        if time.monotonic() - started >= settings.timeout:
            return f"{busy} after waiting {settings.timeout:g}s", recent
        log.info(f"{busy}; waiting for it to finish")
        stop.sleep(settings.poll_interval)


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
        _say(log, found.say)
        return found.outcome
    gate = decide.gate(settings, previous, recent, busy)
    if isinstance(gate, decide.Finished):
        _say(log, gate.say)
        return gate.outcome
    marker = next_marker(previous.id, previous.cause, gate.earlier)
    cause = with_marker(settings.cause or decide.default_cause(previous, context), marker)
    route = decide.route(settings, previous)
    if route == "full":
        decision = decide.full_run(settings, previous, cause, marker.render())
    elif route == "native":
        refusal = decide.native_refusal(previous)
        if refusal:
            raise RestartError(refusal, previous)
        decision = decide.native_rerun(settings, previous, native_plan(client, previous, log))
    else:
        with log.group("Plan"):
            plan = plan_restart(client, previous, log, settings.rebuild)
            _log_plan(log, plan)
        decision = decide.select_rerun(settings, previous, plan, cause, marker.render())
    if isinstance(decision, decide.Finished):
        _say(log, decision.say)
        outcome = decision.outcome
        if decision.follow_up and outcome.plan is not None:
            reader = followup.DroppedReader(settings, previous, outcome.plan, connect)
            return followup.conclude(settings, log, outcome, reader)
        return outcome
    _say(log, decision.say)
    delay = decide.delay_before(settings.delay, gate.earlier)
    return carry_out(client, settings, log, stop, previous, decision, reporter, connect, delay)


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
        return Outcome(
            status="cancelled",
            headline="cancelled before triggering",
            strategy=settings.strategy,
            exit_code=stop.exit_code,
            previous=previous,
            plan=request.plan,
        )
    after = reader.start if reader else None
    outcome = trigger_and_wait(client, settings, log, stop, previous, request, reporter, after)
    outcome = followup.conclude_context(settings, log, replace(outcome, context=request.context))
    if request.details:
        outcome = replace(outcome, details=(*request.details, *outcome.details))
    if delay.seconds:
        waited = f"Waited {delay.seconds:g}s before triggering: {delay.reason}."
        outcome = replace(outcome, details=(waited, *outcome.details))
    if reader is None:
        return outcome
    return followup.conclude(settings, log, replace(outcome, classified=request.classified), reader)


def _say(log: actions.Log, lines: tuple[decide.Say, ...]) -> None:
    """Log what a decision says."""
    for line in lines:
        if line.level == "info":
            log.info(line.text)
        else:
            {"error": log.error, "warning": log.warning, "notice": log.notice}[line.level](line.text, line.title)


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
        stop.sleep(delay.seconds)
    return not stop.requested


def _report(reporter: Reporter, outcome: Outcome) -> Outcome:
    """Final commit status and incident issue for a restart that started a run."""
    new = outcome.new_run
    if new is None:
        return outcome
    failed = outcome.status in FAILED_STATES or outcome.exit_code != 0  # a success not verified fails too
    state = "failure" if failed else ("success" if outcome.status == "success" else "pending")
    reporter.set_status(state, new.href, f"dbt Cloud run #{new.id}: {outcome.status}")
    if outcome.status != "success" and not failed:
        return outcome  # still running (wait: false): nothing to conclude
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
    except Interrupted:
        log.error("the workflow was cancelled before a run was started", title="Cancelled")
        return Outcome(
            status="cancelled",
            headline="cancelled before triggering",
            strategy=settings.strategy,
            exit_code=stop.exit_code,
        )
    except (ApiError, RestartError, RecordError) as exc:
        message = actions.redact(str(exc), settings.token)
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


def execute_all(
    settings: Settings, log: actions.Log, env: Mapping[str, str], stop: Stop | None = None
) -> list[tuple[int, Outcome]]:
    """Every job of the step, restarted independently and in parallel; (job id, outcome) in input order.

    Each job logs into its own buffer, printed whole when the job is done, so lines do not mix.
    """
    stop = stop or Stop()
    if len(settings.job_ids) <= 1:
        return [(settings.job_id, execute(settings, log, env, stop))]
    printing = threading.Lock()

    def one(job_id: int, run_id: int | None) -> Outcome:
        buffer = io.StringIO()
        job_log = actions.Log(actions=log.actions, stream=buffer, debug_enabled=log.debug_enabled)
        try:
            outcome = execute(for_job(settings, job_id, run_id), job_log, env, stop)
        except Exception as exc:  # one job's bad state never stops the others
            message = actions.redact(f"job {job_id}: unexpected {type(exc).__name__}: {exc}", settings.token)
            job_log.error(message, title="dbt-cloud-restart")
            outcome = Outcome(status="error", headline=message, strategy=settings.strategy, exit_code=1)
        with printing:
            log.info(f"==== job {job_id}: {outcome.status} ====")
            log.stream.write(buffer.getvalue())
            log.stream.flush()
        return outcome

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_JOBS, len(settings.job_ids))) as pool:
        futures = [pool.submit(one, job, run) for job, run in zip(settings.job_ids, settings.run_ids, strict=True)]
        return [(job, future.result()) for job, future in zip(settings.job_ids, futures, strict=True)]
