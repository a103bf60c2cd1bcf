"""Real dbt-core as the oracle for the planner.

A `DbtProject` is a dbt project in a temporary directory with its own DuckDB file. It runs dbt
in-process (`dbtRunner`), parsing the project once and handing that manifest to every later
command, so that one failing step, its `dbt retry` and the `dbt ls` of the narrowed command cost
well under two seconds together. On another dbt engine than the tests' own (dbt 1.12, an old dbt:
tests/engines) it does the same in a worker process of that engine's venv (tests/exactness/session.py).
`DbtProject.on_track` is the same project as a dbt platform release-track build runs it: its dbt-core,
every artifact restamped with the build's calendar version, the run reporting the track
(tests/emulator/tracks.py). With `reuse`, the track's failing step is the project's own run of the same
command with the same faults, if it ran one (the same dbt on the same project: the same results), copied
and restamped, and its `dbt retry` that run's.

For a failed step the oracle is what `dbt retry`, run on a copy of that step's own target
directory, executes (its new run_results.json). The planner's command is resolved with `dbt ls`
using the very selection flags it would send (`--select/--exclude/--selector`,
`--indirect-selection`, `--resource-type`), restricted to the resource types the sub-command
executes.
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from restart import commands as cmds
from restart.artifacts import parse_manifest, parse_run_results
from restart.dbt_vocabulary import FAILED, Rebuild
from restart.plan import Plan, StepArtifacts, StepPlan, make_plan
from restart.records import ERROR, SUCCESS, Job, Run, Step
from tests.emulator.tracks import TRACKS, ReleaseTrack
from tests.engines import DBT_1_11, ENGINES
from tests.exactness.session import FAULTS_ENV, RemoteSession, Session

# What each narrowable sub-command executes (and so writes to run_results.json).
EXECUTES: dict[str, frozenset[str]] = {
    "run": frozenset({"model"}),
    "seed": frozenset({"seed"}),
    "snapshot": frozenset({"snapshot"}),
    "test": frozenset({"test", "unit_test"}),
    "build": frozenset({"model", "seed", "snapshot", "test", "unit_test"}),
}
# Flags of a narrowed command that take part in node selection, passed on to `dbt ls`.
LS_FLAGS = {
    "--select": cmds.INCLUDE_FLAGS,
    "--exclude": frozenset({"--exclude"}),
    "--selector": frozenset({"--selector"}),
    "--indirect-selection": frozenset({"--indirect-selection"}),
    "--resource-type": frozenset({"--resource-type", "--resource-types"}),
    "--exclude-resource-type": frozenset({"--exclude-resource-type", "--exclude-resource-types"}),
}
QUIET = ["--log-level", "none", "--log-level-file", "none"]


_SESSIONS: dict[str, Session | RemoteSession] = {}


def session(engine: str) -> Session | RemoteSession:
    """The one dbt session of an engine in this test process: in process for the tests' own dbt."""
    if engine not in _SESSIONS:
        if ENGINES[engine].venv is None:
            _SESSIONS[engine] = Session()
        else:
            remote = _SESSIONS[engine] = RemoteSession(ENGINES[engine].python)
            atexit.register(remote.close)
    return _SESSIONS[engine]


@dataclass(frozen=True)
class StepRun:
    """One dbt command run as a job step: its target directory and artifacts."""

    command: str
    target: Path
    success: bool
    run_results: dict[str, Any] | None
    manifest: dict[str, Any] | None
    run_version: str = ""  # the run's `dbt_version` (a release track's name), '' when the run reports its dbt's

    @property
    def statuses(self) -> dict[str, str]:
        return {r["unique_id"]: r["status"] for r in (self.run_results or {}).get("results", [])}


class DbtProject:
    """A dbt project in `root`, run against a DuckDB file next to it."""

    def __init__(self, root: Path, profile: str = "shop", engine: str = DBT_1_11) -> None:
        self.root = root
        self.engine = ENGINES[engine]
        self.session = session(engine)
        self.work = root.parent / f"{root.name}-work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.profiles = self.work / "profiles"
        self.profiles.mkdir(exist_ok=True)
        database = self.work / "warehouse.duckdb"
        (self.profiles / "profiles.yml").write_text(
            f"{profile}:\n  target: dev\n  outputs:\n"
            f"    dev:\n      type: duckdb\n      path: '{database}'\n      threads: 2\n"
            # a second database for dbt subprocesses: the in-process adapter keeps a lock on the first
            f"    apart:\n      type: duckdb\n      path: '{self.work / 'apart.duckdb'}'\n      threads: 2\n",
            encoding="utf-8",
        )
        self.counter = 0
        self.manifest_doc: dict[str, Any] = {}
        self.parse_target = self.work / "parse-target"
        self.track: ReleaseTrack | None = None
        self.reuse = False  # a track's steps: the project's own runs of them (`on_track`)
        self.steps_run: dict[tuple[str, tuple[str, ...]], StepRun] = {}  # the project's last run of each
        self.retried: dict[Path, set[str]] = {}  # what `dbt retry` ran for each of the project's steps
        self.copied_from: dict[Path, Path] = {}  # a track's step -> the project's step it copies

    def on_track(self, name: str, *, reuse: bool = False) -> DbtProject:
        """This project (its dbt, database and parsed manifest) run as release-track build `name`: every
        artifact its steps write restamped with the build's calendar version, the run on its track; with
        `reuse`, a step the project ran already is that run's copy, and its `dbt retry` that run's."""
        build = TRACKS[name]
        assert self.engine is ENGINES[build.core], f"{name} runs on {build.core}, not {self.engine.name}"
        twin = copy.copy(self)  # the same dicts of runs: the twin reads the project's, adds no run of its own
        twin.track, twin.work, twin.reuse = build, self.work / name, reuse
        twin.work.mkdir(exist_ok=True)
        return twin

    def _step(self, command: str, target: Path, success: bool) -> StepRun:
        """What a step left in `target`, as the engine (a release-track build: restamped) leaves it."""
        if self.track is not None:
            self.track.restamp(target)
        run_results, manifest = _load(target / "run_results.json"), _load_manifest(target)
        return StepRun(command, target, success, run_results, manifest, self.track.track if self.track else "")

    def _dirs(self) -> list[str]:
        return ["--project-dir", str(self.root), "--profiles-dir", str(self.profiles)]

    def invoke(
        self, args: list[str], *, reuse_manifest: bool = True, faults: list[str] | None = None, keep: bool = False
    ) -> dict[str, Any]:
        """{success, exception, lines}: one dbt command, handed the project's parsed manifest when `reuse_manifest`."""
        return self.session.invoke(str(self.root), args, faults or [], reuse_manifest, keep)

    def next_dir(self, label: str) -> Path:
        self.counter += 1
        path = self.work / f"{self.counter:03d}-{label}"
        path.mkdir(parents=True)
        return path

    def deps_and_parse(self) -> None:
        local = self.root / "packages"
        if (self.root / "packages.yml").exists() and local.is_dir():  # what `dbt deps` does for local packages
            for package in local.iterdir():
                shutil.copytree(package, self.root / "dbt_packages" / package.name, dirs_exist_ok=True)
        result = self.invoke(
            ["parse", *self._dirs(), "--target-path", str(self.parse_target), *QUIET], reuse_manifest=False, keep=True
        )
        assert result["success"], result["exception"]
        self.manifest_doc = json.loads((self.parse_target / "manifest.json").read_text(encoding="utf-8"))

    def run(self, command: str, faults: tuple[str, ...] | list[str] = ()) -> StepRun:
        """Run `command` (a dbt Cloud step) with `faults` injected, in its own target directory."""
        key = (command, tuple(faults))
        ran = self.steps_run.get(key) if self.reuse else None
        if ran is not None:
            target = self.next_dir("step")
            shutil.copytree(ran.target, target, dirs_exist_ok=True)
            self.copied_from[target] = ran.target
            return self._step(command, target, ran.success)
        step = self.run_in(self.next_dir("step"), command, faults)
        if self.track is None:
            self.steps_run[key] = step
        return step

    def run_in(
        self, target: Path, command: str, faults: tuple[str, ...] | list[str] = (), *, log: Path | None = None
    ) -> StepRun:
        """Run `command` in `target`, which may hold an earlier step's artifacts (as in dbt Cloud);
        with `log`, dbt's log goes to `log`/dbt.log (microbatch batches are counted from it)."""
        for key, ran in list(self.steps_run.items()):  # a step's folder written again: no longer that run's
            if ran.target == target:
                del self.steps_run[key]
        self.retried.pop(target, None)
        args = shlex.split(command)[1:]
        # A command whose flags change parsing (vars, target, profile) is parsed again for itself.
        reuse = not any(a.startswith(("--vars", "--target", "--profile", "-t")) for a in args)
        if not reuse and not (target / "partial_parse.msgpack").exists():
            shutil.copy2(self.parse_target / "partial_parse.msgpack", target / "partial_parse.msgpack")
        result = self.invoke(
            [*args, *self._dirs(), "--target-path", str(target), *_quiet(log)],
            reuse_manifest=reuse,
            faults=list(faults),
        )
        return self._step(command, target, bool(result["success"]))

    def interrupt(self, command: str, faults: list[str], when: str) -> StepRun:
        """Run `command` as a subprocess and send it SIGINT once a log line contains `when`.

        This is what a cancelled or timed-out step leaves behind: dbt writes run_results.json
        with the nodes that had finished, and nothing about the others.
        """
        target = self.next_dir("interrupted")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
        env[FAULTS_ENV] = ",".join(faults)
        env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        env["DBT_TARGET"] = "apart"
        shutil.copy2(self.parse_target / "partial_parse.msgpack", target / "partial_parse.msgpack")
        dbt = self.engine.dbt
        args = [str(dbt), *shlex.split(command)[1:], *self._dirs(), "--target-path", str(target)]
        args += ["--no-use-colors", "--log-level-file", "none"]
        process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        try:
            log = (target / "stdout.log").open("w", encoding="utf-8")
            for line in process.stdout:
                log.write(line)
                if when in line:
                    time.sleep(0.5)  # let the query reach the database
                    process.send_signal(signal.SIGINT)
                    break
            log.write(process.communicate(timeout=60)[0])
            log.close()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return self._step(command, target, False)

    def retry(self, step: StepRun, *, log: Path | None = None) -> set[str]:
        """What `dbt retry` on a copy of the step's target directory runs (faults fixed); with `log`,
        dbt's log goes to `log`/dbt.log."""
        original = self.copied_from.get(step.target)
        if log is None and original is not None and original in self.retried:
            return set(self.retried[original])
        target = self.next_dir("retry")
        shutil.copytree(step.target, target, dirs_exist_ok=True)
        shutil.copy2(self.parse_target / "partial_parse.msgpack", target / "partial_parse.msgpack")
        (target / "run_results.json").unlink(missing_ok=True)
        shutil.copy2(step.target / "run_results.json", target / "run_results.json")
        mtime = (target / "run_results.json").stat().st_mtime_ns
        result = self.session.retry(str(self.root), [*self._dirs(), "--target-path", str(target), *_quiet(log)])
        assert result["exception"] is None, result["exception"]
        assert (target / "run_results.json").stat().st_mtime_ns != mtime, "dbt retry wrote no run_results.json"
        written = _load(target / "run_results.json") or {}
        executed = self.executed({r["unique_id"] for r in written.get("results", [])})
        if self.track is None:
            self.retried[step.target] = executed
        return set(executed)

    def ls(self, command: str, *, extra: Mapping[str, list[str]] | None = None) -> set[str]:
        """The nodes `command` selects, by `dbt ls` with its selection flags, that its sub-command executes."""
        parsed = cmds.parse(command)
        args = ["ls", *self._dirs(), "--target-path", str(self.parse_target), "--output", "json"]
        args += ["--output-keys", "unique_id", *QUIET]
        for flag, names in LS_FLAGS.items():
            values = parsed.option_values(names)
            if values:
                args += [flag, *values] if flag in ("--select", "--exclude") else [a for v in values for a in (flag, v)]
        for flag, values in (extra or {}).items():
            args += [flag, *values]
        result = self.invoke(args)
        assert result["success"], result["exception"]
        found = {json.loads(line)["unique_id"] for line in result["lines"]}
        return self.executed(found, EXECUTES[parsed.name])

    def executed(
        self, unique_ids: set[str], kinds: frozenset[str] | None = None, *, built: set[str] | None = None
    ) -> set[str]:
        """Keep the nodes a command really executes: no ephemeral models, hooks or sources.

        `built`: what a `dbt build` selected. It runs a unit test only with its model, so a unit test
        selected without its model (by a tag, say) never runs and is not recorded.
        """
        kept = set()
        for uid in unique_ids:
            node = self.manifest_doc["nodes"].get(uid) or self.manifest_doc.get("unit_tests", {}).get(uid)
            if node is None:
                continue
            if node["resource_type"] == "model" and node["config"].get("materialized") == "ephemeral":
                continue
            tested = set(node.get("depends_on", {}).get("nodes", []))
            if built is not None and node["resource_type"] == "unit_test" and not tested & built:
                continue
            if kinds is not None and node["resource_type"] not in kinds:
                continue
            kept.add(uid)
        return kept


def _quiet(log: Path | None) -> list[str]:
    """No log at all, or (with `log`) only the file log, in text, in that folder."""
    if log is None:
        return QUIET
    return ["--log-level", "none", "--log-path", str(log), "--log-level-file", "info", "--log-format-file", "text"]


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _load_manifest(target: Path) -> dict[str, Any] | None:
    return _load(target / "manifest.json")


def single_step_run(command: str, status: int = ERROR, message: str = "") -> Run:
    """A dbt Cloud run of one job whose only command is `command`."""
    steps = (
        Step(1, "Clone git repository", SUCCESS),
        Step(2, "Create profile from connection DuckDB", SUCCESS),
        Step(3, "Invoke dbt with `dbt deps`", SUCCESS),
        Step(4, f"Invoke dbt with `{command}`", status),
    )
    return Run(
        id=1,
        job_id=1,
        status=status,
        href="",
        status_message=message,
        duration="",
        finished_at="",
        cause="",
        steps_override=None,
        steps=steps,
        job=Job(1, "job", (command,), False),
        can_retry=None,
        retry_not_supported_reason=None,
    )


def plan_step(step: StepRun, *, manifest: bool = True, message: str = "", rebuild: Rebuild = "failed") -> StepPlan:
    """The planner's decision for this failed step, from its own artifacts."""
    found = StepArtifacts(
        parse_run_results(step.run_results) if step.run_results is not None else None,
        parse_manifest(step.manifest) if manifest and step.manifest is not None else None,
    )
    run = replace(single_step_run(step.command, message=message), dbt_version=step.run_version)
    plan: Plan = make_plan(run, {4: found}, rebuild=rebuild)
    return plan.steps[0]


def run_recorded(project: DbtProject, command: str, faults: list[str], attempts: int = 6) -> StepRun:
    """Run a failing step; a fail-fast one again while dbt's own race spoilt its artifacts.

    Failing fast on several threads, dbt races itself: the worker thread flags the failure
    (`call_runner` sets `_raise_next_tick`) before the pool's callback records the failed node's
    result, and the main thread, seeing the flag while it still hands out nodes, stops the pool and
    writes every node without a result as "Skipping due to fail_fast", the failed one included
    (dbt-core task/runnable.py, `execute_nodes`); now and then it writes no run_results.json at all
    (dbt-core issues 3600 and 7302). Each such try must plan as a rerun of the step as it was, with
    a warning; the case is then run again so that the oracle gets the artifacts dbt means to write.

    The race cannot be ruled out from outside dbt: `--single-threaded`, which records each result
    before the next node starts, makes dbt-duckdb fail the fail-fast step itself ("Connection already
    closed!": the cancel closes the one connection it runs on), and one thread still races the pool's
    callback. Measured 2026-12-04 on the shop project: 1 spoilt try in 50 of `dbt test -x` with both
    cores busy, 2 in 40 of `dbt run --fail-fast` idle, none in 160 of the builds. With six tries, all
    of one case's are spoilt about once in 60 million at the highest of those rates (1 in 20).
    """
    fail_fast = {"--fail-fast", "-x"} & set(shlex.split(command))
    for _ in range(attempts - 1 if fail_fast else 0):
        step = project.run(command, faults)
        if step.run_results is not None and any(status in FAILED for status in step.statuses.values()):
            return step
        planned = plan_step(step)
        assert planned.action == "rerun" and planned.sent == command, planned
        assert planned.warning, planned
    return project.run(command, faults)


def sent_selection(project: DbtProject, planned: StepPlan) -> set[str]:
    """The nodes the command the planner sends would run."""
    assert planned.sent is not None
    return project.ls(planned.sent)


# dbt's log line for each batch it starts: "Batch 1 of 4 START batch 2026-11-03 of main.mb_events ...".
BATCH_START = re.compile(r"Batch \d+ of \d+ START batch (\S+) of (\S+)")


def started_batches(log: str) -> dict[str, list[str]]:
    """Batches dbt started, per relation, from its log (`batch_results.successful` of a `dbt retry` also
    lists the earlier run's batches: the log says what ran)."""
    started: dict[str, list[str]] = {}
    for label, relation in BATCH_START.findall(log):
        started.setdefault(relation, []).append(label)
    return started
