"""The emulator's state and its executors: runs of real dbt-core on DuckDB, one queue per environment."""

from __future__ import annotations

import hashlib
import itertools
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from . import warm
from .fusion import CORE_SUFFIX, FUSION_TRACK, FusionMode, rewrite
from .model import (
    CANCELLED,
    ERROR,
    LOG_LINES,
    RUNNING,
    STARTING,
    SUCCESS,
    Job,
    Run,
    Step,
    Trigger,
    humanize,
    now,
    read_text,
    tail,
)
from .repository import CheckoutError, Repository
from .runtimes import RUNTIMES, Environment, Runtime, runtime_for_version
from .threads import untraced
from .tracks import TRACKS
from .warm import COPY_IGNORE, DbtProcess

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
CLONE_STEP = "Clone git repository"
PROFILE_STEP = "Create profile from connection DuckDB"
DEPS = "dbt deps"
FRESHNESS = "dbt source freshness"
DOCS = "dbt docs generate"
LINT = "dbt sqlfluff lint"  # the step a job's `run_lint` adds before its commands (name as we model it)
COMPARE = "dbt compare --select state:modified"  # the step `run_compare_changes` adds after them
RETRY = "dbt retry"
RERUN_CAUSE = "Rerun from failure"
# The trigger fields that make a run's own context; dbt Cloud's rerun from failure keeps them all.
CONTEXT = (
    "git_branch",
    "git_sha",
    "github_pull_request_id",
    "gitlab_merge_request_id",
    "azure_pull_request_id",
    "non_native_pull_request_id",
    "schema_override",
    "target_name_override",
    "threads_override",
    "dbt_version_override",
    "generate_docs_override",
    "timeout_seconds_override",
)
PARTIAL_PARSE = "partial_parse.msgpack"
CLOCK_SHIM = Path(__file__).resolve().parent / "dbt_at.py"
CLOCK_ENV = "DBT_EMULATOR_NOW"


def step_name(command: str) -> str:
    """The name dbt Cloud gives the step that runs `command`."""
    return f"Invoke dbt with `{command}`"


@cache
def project_sha() -> str:
    """A stable fake git sha: the hash of the dbt project's files."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(PROJECT_DIR.rglob("*")):
        if path.is_file() and not {"target", "dbt_packages", "logs"} & set(path.parts):
            digest.update(str(path.relative_to(PROJECT_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class Engine:
    """Jobs and runs of one account, and the executors that run them."""

    def __init__(self, root: Path, account_id: int, project_id: int = 1, *, first_run_id: int = 1001) -> None:
        self.root = root
        self.account_id = account_id
        self.project_id = project_id
        self.base_url = ""
        self.lock = threading.Condition(threading.RLock())
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, Run] = {}
        self.faults: list[str] = []
        self.hidden: list[str] = []  # project paths (files or folders) the clone step leaves out
        self.step_delay = 0.0
        # Field-notes switches. The status a step the job's timeout interrupts gets (20 or 30: not
        # recorded publicly); None: unreached commands are not listed, else listed as "Skipped" with
        # this numeric status (its real code is unknown).
        self.timed_out_step_status = ERROR
        self.skipped_step_status: int | None = None
        self.clock: datetime | None = None  # the time dbt sees at the start of each command (None: real time)
        self.executors: dict[int, Executor] = {}
        self.fusion: dict[int, FusionMode] = {}  # environments in Fusion mode (fusion.py rewrites their artifacts)
        self.environments: dict[int, Environment] = {}
        self.runtimes: dict[int, Runtime] = {}  # run id -> the dbt its environment ran it with
        self.repository = Repository(project_sha)  # what the clone step checks out
        self._job_ids = itertools.count(1)
        self._run_ids = itertools.count(first_run_id)
        self._trigger_ids = itertools.count(5001)
        self._step_ids = itertools.count(90001)

    def next_step_id(self) -> int:
        """A fresh run step id."""
        with self.lock:
            return next(self._step_ids)

    def workspace(self, environment_id: int) -> tuple[Path, Path]:
        """(project, database): where an environment's runs check out the project (one workspace per
        environment: its runs never overlap) and the DuckDB file every one of them builds into."""
        return warm.layout(self.root / "environments" / str(environment_id))

    def database(self, environment_id: int) -> Path:
        """The DuckDB file every run of an environment builds into."""
        return self.workspace(environment_id)[1]

    def environment(self, environment_id: int) -> Environment:
        """An environment's settings (dbt 1.11, the project as it is, until set otherwise)."""
        with self.lock:
            return self.environments.setdefault(environment_id, Environment())

    def set_environment(
        self, environment_id: int, *, engine: str | None = None, project_files: dict[str, str] | None = None
    ) -> None:
        """Switch an environment's dbt engine (tests/emulator/runtimes.py) or the files laid over its project."""
        if engine is not None and engine not in RUNTIMES:
            raise ValueError(f"unknown dbt engine {engine!r}: one of {', '.join(sorted(RUNTIMES))}")
        with self.lock:
            environment = self.environment(environment_id)
            if engine is not None:
                environment.engine = engine
            if project_files is not None:
                environment.project_files = dict(project_files)

    def add_job(
        self,
        steps: list[str],
        *,
        name: str = "nightly",
        generate_docs: bool = False,
        run_generate_sources: bool = False,
        run_lint: bool = False,
        run_compare_changes: bool = False,
        environment_id: int = 1,
        timeout_seconds: int = 0,
        threads: int = 4,
        target_name: str = "default",
        engine: str | None = None,
        job_type: str = "scheduled",
    ) -> Job:
        """Define a job; `engine` also switches its environment's dbt engine."""
        for command in steps:
            if not command.startswith("dbt "):
                raise ValueError(f"a job step must start with 'dbt ': {command!r}")
        if engine is not None:
            self.set_environment(environment_id, engine=engine)
        with self.lock:
            job = Job(
                id=next(self._job_ids),
                account_id=self.account_id,
                project_id=self.project_id,
                environment_id=environment_id,
                name=name,
                execute_steps=list(steps),
                generate_docs=generate_docs,
                run_generate_sources=run_generate_sources,
                run_lint=run_lint,
                run_compare_changes=run_compare_changes,
                timeout_seconds=timeout_seconds,
                threads=threads,
                target_name=target_name,
                job_type=job_type,
            )
            self.jobs[job.id] = job
            return job

    def latest_run_id(self, job_id: int) -> int:
        """The id of the job's newest run (0 when it has none)."""
        with self.lock:
            return max((run.id for run in self.runs.values() if run.job.id == job_id), default=0)

    def job_json(self, job: Job) -> dict[str, Any]:
        """A job as the API returns it: it reports its environment's release track (if any) as `dbt_version`."""
        build = TRACKS.get(self.environment(job.environment_id).engine)
        return replace(job, dbt_version=None if build is None else build.track).to_api()

    def run_json(self, run: Run, include: set[str]) -> dict[str, Any]:
        """A run as the API returns it."""
        with self.lock:
            return run.to_api(self.latest_run_id(run.job.id), include)

    def trigger(self, job: Job, fields: dict[str, Any], cause_category: str, *, retry_of: Run | None = None) -> Run:
        """Queue a run of `job`; `fields` are a validated TriggerRunRequest body."""
        with self.lock:
            trigger = Trigger(
                id=next(self._trigger_ids),
                job_definition_id=job.id,
                cause_category=cause_category,
                **fields,
            )
            commands = list(trigger.steps_override or job.execute_steps)
            retry_state = None
            if retry_of is not None:
                failed = retry_of.failed_step()
                assert failed is not None
                commands = [RETRY, *retry_of.skipped_commands()]
                retry_state = failed.artifacts["run_results.json"]
            run_id = next(self._run_ids)
            engine = self.environment(job.environment_id).engine
            if trigger.dbt_version_override is not None:  # checked by the API before (`runtime_for_version`)
                engine = runtime_for_version(trigger.dbt_version_override) or engine
            runtime = self.runtimes[run_id] = RUNTIMES[engine]()
            docs = trigger.generate_docs_override
            timeout = trigger.timeout_seconds_override
            run = Run(
                id=run_id,
                account_id=self.account_id,
                project_id=self.project_id,
                job=replace(job, execute_steps=list(job.execute_steps), dbt_version=runtime.track),
                trigger=trigger,
                commands=commands,
                generate_docs=job.generate_docs if docs is None else docs,
                timeout_seconds=job.timeout_seconds if timeout is None else timeout,
                git_branch=trigger.git_branch or "main",
                git_sha=trigger.git_sha or self._head(trigger.git_branch),
                dbt_version=FUSION_TRACK if job.environment_id in self.fusion else runtime.version,
                href=f"{self.base_url}/deploy/{self.account_id}/projects/{self.project_id}/runs/{run_id}/",
                retry_of=None if retry_of is None else retry_of.id,
                retry_state=retry_state,
            )
            self.runs[run.id] = run
            executor = self.executors.get(job.environment_id)
            if executor is None:
                executor = self.executors[job.environment_id] = Executor(self, job.environment_id)
                executor.start()
            self.lock.notify_all()
        executor.queue.put(run.id)
        return run

    def _head(self, branch: str | None) -> str:
        """The newest commit of a branch ('' when there is none: the run's clone step will fail)."""
        try:
            return self.repository.head(branch or "main")
        except CheckoutError:
            return ""

    def rerun(self, job: Job) -> Run:
        """dbt Cloud's "rerun from failure": retry the latest finished run if it failed, else run anew."""
        with self.lock:
            finished = [r for r in self.runs.values() if r.job.id == job.id and r.is_complete]
            latest = max(finished, key=lambda r: r.id, default=None)
            if latest is None or latest.retry_blocker(latest.id) is not None:
                return self.trigger(job, {"cause": RERUN_CAUSE}, "rerun")
            carried = {key: value for key in CONTEXT if (value := getattr(latest.trigger, key)) is not None}
            return self.trigger(job, {"cause": RERUN_CAUSE, **carried}, "rerun", retry_of=latest)

    def cancel(self, run: Run) -> None:
        """Cancel a queued or running run at once; its executor stops its dbt process."""
        with self.lock:
            if run.is_complete:
                return
            run.cancelled.set()
            run.status = CANCELLED
            run.finished_at = run.updated_at = now()
            for step in run.steps:
                if step.finished_at is None:
                    step.status = CANCELLED
            self.lock.notify_all()

    def wait(self, run: Run, timeout: float) -> None:
        """Block until `run` is complete and its executor is done with it."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not (run.is_complete and run.process is None):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"run {run.id} still {run.status} after {timeout} s")
                self.lock.wait(min(left, 0.5))

    def close(self) -> None:
        """Cancel every unfinished run and stop the executors."""
        with self.lock:
            for run in self.runs.values():
                self.cancel(run)
            executors = list(self.executors.values())
        for executor in executors:
            executor.queue.put(None)
        for executor in executors:
            executor.join(timeout=30)


class Executor(threading.Thread):
    """Runs one environment's runs one at a time, first in first out."""

    def __init__(self, engine: Engine, environment_id: int) -> None:
        super().__init__(name=f"dbt-cloud-environment-{environment_id}", daemon=True)
        self.engine = engine
        self.environment_id = environment_id
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.busy = threading.Lock()
        self.timed_out = False
        self.laid: set[str] = set()  # files the environment's settings laid over its workspace

    def run(self) -> None:
        """Execute queued runs until told to stop."""
        untraced()
        while (run_id := self.queue.get()) is not None:
            with self.busy:
                run = self.engine.runs[run_id]
                try:
                    self.execute(run)
                except Exception:
                    self.finish(run, ERROR, f"Emulator error: {traceback.format_exc(limit=3)}")

    def execute(self, run: Run) -> None:
        """Run the setup steps, the commands and the job's extra steps of `run`."""
        engine = self.engine
        prepare(engine.runtimes[run.id])  # the run stays queued meanwhile, as for a dbt Cloud worker to come up
        with engine.lock:
            if run.cancelled.is_set():
                return
            run.status = STARTING
            run.dequeued_at = run.started_at = run.updated_at = now()
            faults = list(engine.faults)
            clock = engine.clock
            hidden = tuple(engine.hidden)
            engine.lock.notify_all()
        self.timed_out = False
        deadline: datetime | None = None
        if run.timeout_seconds > 0 and run.started_at is not None:
            deadline = run.started_at + timedelta(seconds=run.timeout_seconds)
        # One workspace per environment (its runs never overlap): dbt can reuse the previous run's
        # parse and installed packages, as a warm dbt Cloud worker would.
        project = engine.workspace(run.job.environment_id)[0]
        profiles = engine.root / "runs" / str(run.id) / "profile"

        def dbt(command: str, state: Path | None = None, delay: bool = False) -> Callable[[Step], int]:
            def action(step: Step) -> int:
                return self.dbt(run, step, command, project, profiles, faults, deadline, state, delay, clock)

            return action

        setup: list[tuple[str, Callable[[Step], int]]] = [
            (CLONE_STEP, lambda step: self.clone(step, project, hidden, run)),
            (PROFILE_STEP, lambda step: self.profile(step, run, profiles)),
            (step_name(DEPS), dbt(DEPS)),
        ]
        for name, action in setup:
            if self.step(run, name, action) != SUCCESS:
                return self.finish(run, ERROR, self.failure(run))
        with engine.lock:
            if not run.cancelled.is_set():
                run.status = RUNNING
                run.updated_at = now()
                engine.lock.notify_all()
        if run.job.run_generate_sources:
            status = self.step(run, step_name(FRESHNESS), dbt(FRESHNESS))
            run.has_sources_generated = status == SUCCESS
        if run.job.run_lint and self.step(run, step_name(LINT), lambda step: self.lint(step)) != SUCCESS:
            return self.finish(run, ERROR, self.failure(run))
        for index, command in enumerate(run.commands):
            state = run.retry_state if index == 0 else None
            action = dbt(command, state, delay=True)
            if self.step(run, step_name(command), action, command, index) != SUCCESS:
                self.list_skipped(run, run.commands[index + 1 :])
                return self.finish(run, ERROR, self.failure(run))
        if run.job.run_compare_changes:
            self.step(run, step_name(COMPARE), lambda step: self.compare(step))
        if run.generate_docs:
            run.has_docs_generated = self.step(run, step_name(DOCS), dbt(DOCS)) == SUCCESS
        self.finish(run, SUCCESS, None)

    def lint(self, step: Step) -> int:
        """The SQL lint step of a job with `run_lint` (it finds nothing to fix here)."""
        step.logs = "Linting SQL files with the project's .sqlfluff configuration\nAll files passed.\n"
        return SUCCESS

    def compare(self, step: Step) -> int:
        """The compare-changes step of a job with `run_compare_changes` (nothing to compare here)."""
        step.logs = "Comparing changes against the deferred environment: no modified models.\n"
        return SUCCESS

    def list_skipped(self, run: Run, commands: list[str]) -> None:
        """List the commands a failure never reached as "Skipped" steps (when the switch is on)."""
        status = self.engine.skipped_step_status
        if status is None or self.timed_out:
            return
        with self.engine.lock:
            for command in [*commands, *([DOCS] if run.generate_docs else [])]:
                index = len(run.steps) + 1
                directory = self.engine.root / "runs" / str(run.id) / "steps" / str(index)
                step = Step(self.engine.next_step_id(), run.id, run.account_id, index, step_name(command), directory)
                step.status, step.skipped, step.logs = status, True, ""
                step.finished_at = step.started_at
                run.steps.append(step)

    def failure(self, run: Run) -> str:
        """The status message of a failed run."""
        if self.timed_out:
            took = humanize(run.started_at, now())
            return (
                f"This run timed out after running for {took}, which exceeded the configured timeout of"
                f" {run.timeout_seconds} seconds."
            )
        failed = [step for step in run.steps if step.status == ERROR]
        return f"{failed[-1].name} failed." if failed else "The run failed."

    def finish(self, run: Run, status: int, message: str | None) -> None:
        """Record the run's outcome, unless it was cancelled meanwhile."""
        with self.engine.lock:
            if not run.cancelled.is_set():
                # dbt Cloud cancels a run its job's timeout stops (status 30), saying why.
                run.status = CANCELLED if self.timed_out and status == ERROR else status
                run.status_message = message
                run.finished_at = now()
            run.updated_at = now()
            self.engine.lock.notify_all()

    def step(
        self,
        run: Run,
        name: str,
        action: Callable[[Step], int],
        command: str | None = None,
        command_index: int | None = None,
    ) -> int:
        """Start a step, run `action` for it and record the status it returns."""
        engine = self.engine
        with engine.lock:
            if run.cancelled.is_set():
                return CANCELLED
            index = len(run.steps) + 1
            step = Step(
                id=engine.next_step_id(),
                run_id=run.id,
                account_id=run.account_id,
                index=index,
                name=name,
                directory=engine.root / "runs" / str(run.id) / "steps" / str(index),
                command=command,
                command_index=command_index,
            )
            run.steps.append(step)
            run.updated_at = now()
            engine.lock.notify_all()
        step.directory.mkdir(parents=True, exist_ok=True)
        try:
            status = action(step)
        except Exception:
            step.logs = traceback.format_exc()
            status = ERROR
        with engine.lock:
            step.status = CANCELLED if run.cancelled.is_set() else status
            if self.timed_out and status != SUCCESS:
                step.status = engine.timed_out_step_status
            step.finished_at = run.updated_at = now()
            if step.logs is None and step.stdout_path is not None:
                step.logs = tail(read_text(step.stdout_path), LOG_LINES)
            engine.lock.notify_all()
            return step.status

    def clone(self, step: Step, project: Path, hidden: tuple[str, ...] = (), run: Run | None = None) -> int:
        """Check out the run's branch and commit (its trigger's `git_branch`/`git_sha`, else main's newest)
        into the run's workspace, with the environment's own files laid over it and without the `hidden`
        paths (as if deleted in git). A branch or commit the repository lacks fails the step."""
        wanted = (run.trigger.git_branch, run.trigger.git_sha) if run is not None else (None, None)
        try:
            branch, sha, changes = self.engine.repository.checkout(*wanted)
        except CheckoutError as exc:
            step.logs = f"{exc}\n"
            return ERROR
        if run is not None:
            with self.engine.lock:
                run.git_branch, run.git_sha = branch, sha
        shutil.copytree(PROJECT_DIR, project, ignore=COPY_IGNORE, dirs_exist_ok=True)
        files = {**self.engine.environment(self.environment_id).project_files, **changes}
        for name in self.laid - set(files):
            if not (PROJECT_DIR / name).is_file():
                (project / name).unlink(missing_ok=True)
        for name, content in files.items():
            if content is None:
                (project / name).unlink(missing_ok=True)
                continue
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            (project / name).write_text(content, encoding="utf-8")
        self.laid = set(files)
        for relative in hidden:
            path = project / relative
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        step.logs = f"Cloning repository at {sha}\nCopied {PROJECT_DIR} to {project}\nChecked out branch {branch}\n"
        return SUCCESS

    def profile(self, step: Step, run: Run, profiles: Path) -> int:
        """Write the profiles.yml that points the run at its environment's DuckDB file."""
        trigger = run.trigger
        target = trigger.target_name_override or run.job.target_name
        extra = [f"threads: {trigger.threads_override or run.job.threads}"]
        project, database = self.engine.workspace(run.job.environment_id)
        database.parent.mkdir(parents=True, exist_ok=True)
        schema = trigger.schema_override or pull_request_schema(run)
        if schema:
            extra.append(f"schema: {schema}")
        profiles.mkdir(parents=True, exist_ok=True)
        text = warm.yaml_profile(project, database, target, extra)
        (profiles / "profiles.yml").write_text(text, encoding="utf-8")
        step.logs = f"Writing profile to {profiles / 'profiles.yml'}\n{text}"
        return SUCCESS

    def dbt(
        self,
        run: Run,
        step: Step,
        command: str,
        project: Path,
        profiles: Path,
        faults: list[str],
        deadline: datetime | None,
        state: Path | None,
        delay: bool,
        clock: datetime | None = None,
    ) -> int:
        """Run one dbt command as a subprocess and wait for it, its cancellation or the timeout."""
        args = shlex.split(command)[1:]  # dbt's arguments
        runtime = self.engine.runtimes[run.id]
        target = step.directory / "target"
        target.mkdir(parents=True, exist_ok=True)
        if state is not None:
            core = state.with_name(state.stem + CORE_SUFFIX)  # Fusion mode: what dbt-core wrote
            shutil.copy2(core if core.is_file() else state, target / "run_results.json")
        previous_parse = project.parent / PARTIAL_PARSE
        if not previous_parse.is_file():  # the environment's first dbt step
            first_parse(runtime, previous_parse)
        if previous_parse.is_file():  # the same workspace: dbt may reuse the previous step's parse
            shutil.copy2(previous_parse, target / PARTIAL_PARSE)
        if command == DEPS and (project / "dbt_packages").is_dir() and (project / "package-lock.yml").is_file():
            step.stdout_path = step.directory / "stdout.log"
            step.stdout_path.write_text("Installed packages are up to date.\n", encoding="utf-8")
            return SUCCESS
        step.target_path = target
        step.stdout_path = step.directory / "stdout.log"
        step.debug_log_path = step.directory / "logs" / "dbt.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("DBT_")}
        env.update(
            DBT_PROJECT_DIR=str(project),
            DBT_PROFILES_DIR=str(profiles),
            DBT_TARGET_PATH=str(target),
            DBT_LOG_PATH=str(step.debug_log_path.parent),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
            DBT_USE_COLORS="false",
            DBT_EMULATOR_FAULTS=",".join(faults),
        )
        if clock is not None:
            env[CLOCK_ENV] = clock.isoformat()
        pause = self.engine.step_delay if delay else 0.0
        if pause > 0 and self.interrupted(run, deadline, pause):
            return ERROR
        process = launch(runtime, args, project, env, step.stdout_path)
        with self.engine.lock:
            run.process = process
        try:
            while True:
                try:
                    code = process.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    if self.interrupted(run, deadline, 0):
                        stop(process)
                        self.rewrite(run, runtime, target)  # what an interrupted dbt wrote, too
                        return ERROR
            if (target / PARTIAL_PARSE).is_file():
                shutil.copy2(target / PARTIAL_PARSE, previous_parse)
            self.rewrite(run, runtime, target)
            return SUCCESS if code == 0 else ERROR
        finally:
            with self.engine.lock:
                run.process = None
                self.engine.lock.notify_all()

    def rewrite(self, run: Run, runtime: Runtime, target: Path) -> None:
        """What dbt wrote to `target`, as the environment's engine writes it: its runtime's rewrite (a
        release-track build restamps it), then, in Fusion mode, as dbt v2 writes it."""
        if runtime.rewrite is not None:
            runtime.rewrite(target)
        mode = self.engine.fusion.get(run.job.environment_id)
        if mode is not None:
            rewrite(target, mode)

    def interrupted(self, run: Run, deadline: datetime | None, pause: float) -> bool:
        """Wait up to `pause` seconds; True once the run is cancelled or past its deadline."""
        if deadline is not None:
            left = (deadline - now()).total_seconds()
            if left <= pause:
                run.cancelled.wait(max(left, 0))
                self.timed_out = not run.cancelled.is_set()
                return True
        return run.cancelled.wait(pause) if pause else run.cancelled.is_set()


def pull_request_schema(run: Run) -> str:
    """A CI job's run of a pull or merge request builds in `dbt_cloud_pr_<job>_<pr>` ('' otherwise)."""
    if run.job.job_type != "ci":
        return ""
    trigger = run.trigger
    for pr in (
        trigger.github_pull_request_id,
        trigger.gitlab_merge_request_id,
        trigger.azure_pull_request_id,
        trigger.non_native_pull_request_id,
    ):
        if pr is not None:
            return f"dbt_cloud_pr_{run.job.id}_{pr}"
    return ""


def warm_worker(runtime: Runtime) -> warm.WarmWorker | None:
    """The warm worker of the runtime's own Python (its venv's dbt-core), started on first use; None where
    steps run as plain processes (no fork, switched off, or the worker died)."""
    python = runtime.dbt.parent / "python"
    if not (warm.enabled() and python.is_file()):
        return None
    try:
        return warm.worker(python, PROJECT_DIR)
    except OSError:
        return None


def prepare(runtime: Runtime) -> None:
    """Wait until the runtime's warm worker takes steps (it imports dbt and rehearses, seconds, once per
    process, or once per pytest run when its processes share it): the emulator's own start-up must not count
    against a run's timeout."""
    worker = warm_worker(runtime)
    if worker is not None:
        worker.wait_ready()


def first_parse(runtime: Runtime, destination: Path) -> None:
    """Give a new environment's workspace the rehearsal's parse of the project as committed (warm.py), if
    its runtime has a warm worker: dbt Cloud's partial parsing between deployment runs, as if this
    environment had run the project before. dbt checks that parse against everything it depends on
    (dbt version, profile, vars, each file's checksum) and parses again whatever differs, so it saves
    time and changes nothing dbt does. (One trace: an unchanged seed's `root_path` in manifest.json names
    the rehearsal's copy of the project, whose file dbt then loads: the same content.)"""
    worker = warm_worker(runtime)
    if worker is not None and worker.parse is not None:
        shutil.copy2(worker.parse, destination)


def launch(runtime: Runtime, args: list[str], project: Path, env: dict[str, str], log: Path) -> DbtProcess:
    """Start `dbt <args>` of `runtime` in `project` with exactly `env`, its output to `log`, in a process
    group of its own: forked by the runtime's warm worker (warm.py), else as a plain subprocess. With
    DBT_EMULATOR_NOW in `env` it runs at that time (the clock shim, dbt_at.py)."""
    worker = warm_worker(runtime)
    if worker is not None:
        try:
            return worker.start(args, project, env, log)
        except OSError:
            pass  # no fork here after all: a plain process
    python = runtime.dbt.parent / "python"
    command = [str(python), str(CLOCK_SHIM), *args] if CLOCK_ENV in env else [str(runtime.dbt), *args]
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: DbtProcess) -> None:
    """Terminate a dbt process group, killing it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
