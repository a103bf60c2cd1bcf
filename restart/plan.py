"""The planner: a previous run and its artifacts in, what to rerun (and why) out. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from restart import commands as cmds
from restart import microbatch
from restart.artifacts import Manifest, NodeResult, RunResults, retryable
from restart.dbt_vocabulary import (
    BUILD,
    EXECUTES,
    EXECUTES_TESTS,
    FAILED,
    HOOK,
    NAMED_BY_FILE,
    REBUILD_FAILED,
    REBUILT,
    RETRYABLE,
    TEST_PREFIX,
    WITH_TEST_PARENTS,
    IndirectSelection,
    Rebuild,
    ResourceType,
    Status,
)
from restart.engines import Engine, Rule, continued_on_error, on_run_start_failed, stale_children
from restart.fusion import failed_roots, held_back
from restart.graph import nearest_parents
from restart.records import CANCELLED, ERROR, STATUS_NAMES, SUCCESS, Run, Step
from restart.selection import (
    Selection,
    compact,
    executes_node,
    pulls_in_tests,
    select_nodes,
    selects_nothing,
)
from restart.selector import Method, Selector, render

Action = Literal["skip", "narrow", "rerun"]


@dataclass(frozen=True)
class CommandStep:
    """A command of the previous run and the run step it executed as (None: never reached)."""

    command: str
    step: Step | None


@dataclass(frozen=True)
class StepArtifacts:
    """What was read for one failed step; a `problem` says why something is missing."""

    run_results: RunResults | None = None
    manifest: Manifest | None = None
    problem: str = ""


@dataclass(frozen=True)
class StepPlan:
    """What happens to one command of the previous run."""

    command: str
    step_index: int | None
    action: Action
    reason: str
    new_command: str = ""
    nodes: tuple[str, ...] = ()  # unique_ids selected for rerun
    failures: tuple[NodeResult, ...] = ()  # nodes that errored or failed, with their messages
    warning: str = ""
    added: tuple[str, ...] = ()  # with `rebuild: with-test-parents`: parents of failed tests added to `nodes`
    stale: tuple[str, ...] = ()  # nodes that ran on a failed model's stale data (on_error: continue)
    graph: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # node -> its parents among `nodes`
    batches: microbatch.BatchStep | None = None  # a step that rebuilds only failed batches of microbatch models
    kept: tuple[NodeResult, ...] = ()  # nodes the step had run that are not rerun (hooks aside): work avoided

    @property
    def sent(self) -> str | None:
        """The command sent in steps_override, or None when the step is dropped."""
        if self.action == "skip":
            return None
        return self.new_command or self.command


@dataclass(frozen=True)
class Plan:
    """The restart plan: one entry per command of the previous run, in order."""

    steps: tuple[StepPlan, ...]
    notes: tuple[str, ...] = field(default=())
    engine: str = ""  # the dbt that wrote the failed steps' artifacts, named (`dbt 1.11.2`, a release track's build)

    @property
    def steps_override(self) -> list[str]:
        return [s.sent for s in self.steps if s.sent is not None]

    @property
    def rerun_nodes(self) -> list[str]:
        return list(dict.fromkeys(uid for s in self.steps for uid in s.nodes))

    @property
    def batch_steps(self) -> list[microbatch.BatchStep]:
        """The steps that rebuild failed batches."""
        return [s.batches for s in self.steps if s.batches is not None]

    @property
    def warnings(self) -> list[str]:
        return [*self.notes, *(s.warning for s in self.steps if s.warning)]


def step_command(name: str) -> str | None:
    """The command in a step name such as ``Invoke dbt with `dbt build` ``; None for setup steps."""
    if not name.strip().lower().startswith("invoke dbt with"):
        return None
    first, last = name.find("`"), name.rfind("`")
    return name[first + 1 : last].strip() if 0 <= first < last else None


# Commands of the steps a job's `run_lint` (SQL lint) and `run_compare_changes` settings add.
LINT_COMMANDS = ("dbt sqlfluff lint", "dbt lint")
COMPARE_COMMANDS = ("dbt compare", "dbt-cloud compare")


def _starts_with(step_text: str, commands: tuple[str, ...]) -> bool:
    text = " ".join(step_text.split()).lower()
    return any(text == c or text.startswith(c + " ") for c in commands)


def _lints(step_text: str) -> bool:
    return _starts_with(step_text, LINT_COMMANDS)


def added_by_dbt_cloud(step_text: str) -> bool:
    """Whether a step's command is one dbt Cloud adds for the job's SQL lint or compare-changes setting."""
    return _starts_with(step_text, (*LINT_COMMANDS, *COMPARE_COMMANDS))


def _listed(step_text: str, commands: list[str]) -> bool:
    return any(_same(step_text, command) for command in commands)


def _same(step_text: str, command: str) -> bool:
    a, b = cmds.normalize(step_text), cmds.normalize(command)
    if a.endswith("...") and len(a) > 3:  # dbt Cloud may shorten long step names
        return b.startswith(a[:-3].rstrip())
    return a == b


def align(run: Run) -> tuple[list[CommandStep], list[str]]:
    """Pair each command of the run with the run step it executed as.

    Steps dbt Cloud adds itself (clone, profile, `dbt deps`, the job's source freshness, SQL lint,
    compare changes and docs steps) are recognised by name and position and never paired with a command.
    """
    commands = list(run.commands)
    invoked = [
        (s, c)
        for s in run.steps
        if (c := step_command(s.name)) is not None and not (added_by_dbt_cloud(c) and not _listed(c, commands))
    ]
    notes: list[str] = []

    def leading(text: str, *, only_if: bool = True) -> None:
        nonlocal invoked
        if not only_if or not invoked or not _same(invoked[0][1], text):
            return
        user_has_it = bool(commands) and _same(commands[0], text)
        twice = len(invoked) > 1 and _same(invoked[1][1], text)
        if not user_has_it or twice:
            invoked = invoked[1:]

    leading("dbt deps")
    generates_sources = run.job.run_generate_sources if run.job else True
    leading("dbt source freshness", only_if=generates_sources)
    if run.job and run.job.run_lint and invoked and _lints(invoked[0][1]):  # also when a command lints the same way
        leading(invoked[0][1])

    paired: list[CommandStep] = []
    position = 0
    for command in commands:
        if position < len(invoked) and _same(invoked[position][1], command):
            paired.append(CommandStep(command, invoked[position][0]))
            position += 1
        else:
            paired.append(CommandStep(command, None))
            position = len(invoked)  # once one command did not run, none after it did
    leftover = [s for s, c in invoked[position:] if not _same(c, "dbt docs generate")]
    if leftover and any(p.step is None for p in paired):
        notes.append(
            f"run step {leftover[0].index} ({leftover[0].name!r}) matches no command of the run; "
            "the commands it could not place are rerun as they were"
        )
    return paired, notes


def interrupted_step(run: Run, paired: list[CommandStep]) -> int | None:
    """The step a cancelled run stopped mid-way (None when the run was not cancelled).

    A cancelled run (its job's timeout, a user, the scheduler) stopped its last invoked step, whatever
    status dbt Cloud gave that step: only the nodes that finished are in its results, and it reruns as
    written (so its manifest.json is never needed).
    """
    if not (run.status == CANCELLED or run.timed_out):
        return None
    return max((p.step.index for p in paired if p.step is not None and not p.step.skipped), default=None)


def needs_artifacts(paired: list[CommandStep]) -> dict[int, cmds.DbtCommand]:
    """The failed steps whose node results could narrow their command: step index -> command."""
    wanted = {}
    for item in paired:
        if item.step is None or item.step.status != ERROR or item.step.skipped:
            continue
        try:
            command = cmds.parse(item.command)
        except cmds.CommandParseError:
            continue
        if command.narrowable:
            wanted[item.step.index] = command
    return wanted


def _which(command: cmds.DbtCommand) -> str:
    return {"docs generate": "generate", "source freshness": "freshness", "ls": "list"}.get(command.name, command.name)


def _words(values: object) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple):
        return []
    return sorted(" ".join(str(v) for v in values).split())


# run_results `args` keys that record a selection (dbt <= 1.4 records `--selector` as `selector_name`).
SELECTION_ARGS = ("select", "models", "exclude", "selector", "selector_name")


def results_belong_to(results: RunResults, command: cmds.DbtCommand, engine: Engine | None = None) -> bool:
    """Whether run_results.json was written by this command (the API may ignore `step`).

    dbt v2 (Fusion) records only the command (`which`/`command`), never the selection: its results
    are checked on what it records. `engine` defaults to the one run_results.json names.
    """
    if engine is None:
        engine = Engine.of(results.dbt_version)
    args = results.args
    if (args.get("which") or args.get("command")) != _which(command):
        return False
    if engine.fusion and not any(key in args for key in SELECTION_ARGS):
        return True
    same_select = _words(args.get("select") or args.get("models")) == _words(command.option_values(cmds.INCLUDE_FLAGS))
    same_exclude = _words(args.get("exclude")) == _words(command.option_values(frozenset({"--exclude"})))
    selector = command.option_values(frozenset({"--selector"}))
    recorded = args.get("selector") or args.get("selector_name") or None
    same_selector = recorded == (selector[-1] if selector else None)
    return same_select and same_exclude and same_selector


def _rerun(item: CommandStep, reason: str, warning: str = "", failures: tuple[NodeResult, ...] = ()) -> StepPlan:
    index = item.step.index if item.step else None
    return StepPlan(item.command, index, "rerun", reason, failures=failures, warning=warning)


FAIL_FAST_SKIP = "Skipping due to fail_fast"


COMPACT_FROM = 20  # rerun nodes from which the manifest is read to compact the command (`name+`)


def manifest_needed(
    results: RunResults, command: cmds.DbtCommand, rebuild: Rebuild = REBUILD_FAILED, run_version: str = ""
) -> str:
    """Why narrowing this step needs its `manifest.json` ('' when run_results.json suffices).

    The manifest (one more download, up to 100 MB) is read only when a name alone would be ambiguous:
    a test, unit test, snapshot or versioned model to select; a `--fail-fast` build cut short (the unit
    tests dbt never recorded are in the manifest); the parents of failed tests to add; or so many
    nodes that compacting them (`name+`) is worth the download; and whenever the engine (`run_version`
    when run_results.json names none) is dbt v2 (Fusion), whose `skipped` the manifest explains, or
    has no `file:` method matching a file's stem (dbt before 1.6, or unrecorded).
    """
    engine = Engine.of(results.dbt_version, run_version)
    if engine.unsupported:
        return ""
    nodes = retryable(results, command_name=command.name, warn_error=command.has_flag("--warn-error"))
    if engine.fusion:
        return f"{engine.name} records ephemeral and reused nodes as skipped: their ancestors tell which failed"
    stopped = command.fail_fast or bool(results.args.get("fail_fast"))
    if command.name == BUILD and stopped and any(r.message.startswith(FAIL_FAST_SKIP) for r in results.results):
        return "a --fail-fast build was cut short"
    if rebuild == WITH_TEST_PARENTS and any(r.unique_id.startswith(TEST_PREFIX) for r in nodes):
        return "the parents of failed tests are read from it"
    if continued_on_error(results, engine):
        return f"a model failed on {engine.name}: what ran after it on stale data (on_error: continue) is read from it"
    if len(nodes) >= COMPACT_FROM:
        return f"{len(nodes)} nodes to rerun: it lets the command be compacted"
    for node in nodes:
        parts = node.unique_id.split(".")
        if parts[0] not in NAMED_BY_FILE or len(parts) != 3:
            return f"the name of {node.unique_id} alone may be ambiguous"
    if nodes and not engine.file_by_stem:
        return f"{engine.name} has no `file:` selector matching a file's stem: it proves selectors by name"
    return ""


def _never_recorded(results: RunResults, manifest: Manifest | None, command: cmds.DbtCommand) -> list[str] | None:
    """Nodes a `--fail-fast` step selected but never recorded; None when they cannot be known.

    When `--fail-fast` stops a step, dbt records every node of its graph queue as skipped, but
    `dbt build` runs unit tests alongside their model, outside that queue: the unit tests of the
    models it never started are missing from run_results.json (and `dbt retry` loses them).
    They were selected when the step selected their model and nothing could have dropped them:
    indirect selection not `empty`, no `--exclude`, no YAML selector, unit tests not filtered out
    by resource type.
    """
    stopped = command.fail_fast or bool(results.args.get("fail_fast"))
    if command.name != BUILD or not stopped:
        return []
    if not any(r.message.startswith(FAIL_FAST_SKIP) for r in results.results):
        return []  # nothing was cut short
    if manifest is None:
        return None
    recorded = {r.unique_id for r in results.results}
    retried = {r.unique_id for r in results.results if r.status in RETRYABLE}
    missing = [
        uid
        for uid, node in manifest.nodes.items()
        if node.resource_type == ResourceType.UNIT_TEST
        and uid not in recorded
        and node.depends_on[:1]
        and node.depends_on[0] in retried
    ]
    if not missing:
        return []
    args = results.args
    kinds = set(args.get("resource_types") or ())
    followed = (
        str(args.get("indirect_selection") or IndirectSelection.EAGER).lower() != IndirectSelection.EMPTY
        and not args.get("exclude")
        and not (args.get("selector") or args.get("selector_name"))
        and (not kinds or ResourceType.UNIT_TEST in kinds)
        and ResourceType.UNIT_TEST not in set(args.get("exclude_resource_types") or ())
    )
    return missing if followed else None


def test_parents(failures: tuple[NodeResult, ...], manifest: Manifest) -> list[str]:
    """The models, seeds and snapshots that failed data tests test, in order, each once."""
    parents: list[str] = []
    for failure in failures:
        node = manifest.nodes.get(failure.unique_id)
        if node is None or node.resource_type != ResourceType.TEST:
            continue
        for parent in node.depends_on:
            found = manifest.nodes.get(parent)
            if found is not None and found.resource_type in REBUILT and parent not in parents:
                parents.append(parent)
    return parents


def _with_test_parents(
    command: cmds.DbtCommand, failures: tuple[NodeResult, ...], manifest: Manifest | None, chosen: list[str]
) -> tuple[list[str], str]:
    """(parents of failed tests to add, or a warning why none can be) for `rebuild: with-test-parents`."""
    if not any(f.unique_id.startswith(TEST_PREFIX) for f in failures):
        return [], ""
    if command.name != BUILD:
        return [], f"`dbt {command.name}` does not build models: the parents of its failed tests are not rebuilt"
    if manifest is None:
        return [], "without manifest.json the parents of the failed tests are unknown: not rebuilt"
    return [p for p in test_parents(failures, manifest) if p not in chosen], ""


def _stale(
    results: RunResults, manifest: Manifest | None, rebuild: Rebuild, chosen: list[str], engine: Engine
) -> tuple[list[str], str]:
    """(nodes that ran on a failed model's stale data, a warning for the summary) under on_error: continue.

    `rebuild: with-test-parents` rebuilds them (the caller adds them); otherwise the warning says they are not.
    """
    if not continued_on_error(results, engine):
        return [], ""
    if manifest is None:
        return [], (
            "without manifest.json, nodes that ran after a failed model on its stale data (on_error: continue) "
            "are unknown: dbt retry does not rerun them, and neither does this restart"
        )
    stale = [uid for uid in stale_children(results, manifest) if uid not in chosen]
    if not stale:
        return [], ""
    shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    if rebuild == WITH_TEST_PARENTS:
        return stale, ""  # the step's reason counts them
    return stale, (
        f"{len(stale)} node(s) ran on a failed model's stale data (on_error: continue) and, as with dbt retry, "
        f"are not rerun: {shown}; `rebuild: with-test-parents` rebuilds them"
    )


def _indirect(command: cmds.DbtCommand, results: RunResults) -> str:
    """The step's indirect selection: as dbt recorded it, else as the command says, else dbt's default."""
    recorded = results.args.get("indirect_selection")
    written = command.option_values(frozenset({"--indirect-selection"}))
    return str(recorded or (written[-1] if written else IndirectSelection.EAGER)).lower()


def _plan_interrupted(item: CommandStep, found: StepArtifacts, *, timed_out: bool, run_version: str) -> StepPlan:
    """The step a cancelled run stopped mid-way: rerun as written (its results list only what finished)."""
    assert item.step is not None
    why = "the job's timeout" if timed_out else "the run's cancellation"
    results = found.run_results
    failures: tuple[NodeResult, ...] = ()
    if results is not None:
        try:
            if results_belong_to(results, cmds.parse(item.command), Engine.of(results.dbt_version, run_version)):
                failures = tuple(r for r in results.results if r.status in FAILED)
        except cmds.CommandParseError:
            pass
    return _rerun(
        item,
        f"{'timed out' if timed_out else 'cancelled'} mid-step: stopped by {why}",
        f"step {item.step.index} was stopped by {why}: its run_results.json lists only the nodes that finished;"
        " rerun as it was",
        failures,
    )


def _held_back(
    nodes: list[NodeResult], results: RunResults, found: StepArtifacts, command: cmds.DbtCommand, engine: Engine
) -> tuple[list[NodeResult], list[NodeResult], str]:
    """(the retryable nodes to rerun, the failed roots Fusion did not record, '' or why not narrow the step).

    A step whose results hold no failed node (a hook failed, or Fusion did not record it) is never
    narrowed to its skipped nodes alone. Under dbt v2 (Fusion) a `skipped` node counts only when a
    failed node of the step is its ancestor in the manifest (ephemeral and no-op nodes never); when
    no failed node is recorded, the failed roots are found from the manifest.
    """
    failed = [r for r in nodes if r.status != Status.SKIPPED]
    if not engine.fusion:
        if nodes and not failed:
            if on_run_start_failed(results):
                default = engine.has(Rule.SKIPS_ON_RUN_START_FAILURE)
                why = "the default from dbt 1.12" if default else "skip_nodes_if_on_run_start_fails, set in the project"
                hook = f"an on-run-start hook failed and dbt skipped every node ({why})"
                return [], [], f"its results hold skipped nodes but no failed one: {hook}"
            return [], [], "its results hold skipped nodes but no failed one (a hook failed?)"
        return nodes, [], ""
    manifest = found.manifest
    if manifest is None:
        return [], [], f"{engine.name} records ephemeral and reused nodes as skipped, and manifest.json is unusable"
    if command.fail_fast or results.args.get("fail_fast"):
        return [], [], f"{engine.name} stopped at its first failure (--fail-fast): what it skipped is unknown"
    executes = EXECUTES.get(command.name)
    roots: list[NodeResult] = []
    if not failed:
        if not results.results:
            return [], [], f"{engine.name} recorded no node at all"
        if command.option_values(cmds.SELECTION_FLAGS):
            return [], [], f"{engine.name} recorded no failed node and the step's selection hides which one failed"
        found_roots = failed_roots(results, manifest, executes)
        if not found_roots:
            return [], [], f"{engine.name} recorded no failed node and none could be found from manifest.json"
        message = f"not recorded by {engine.name}; what depends on it was skipped"
        roots = [NodeResult(uid, Status.ERROR, message) for uid in found_roots]
    held = set(held_back(results, manifest, [r.unique_id for r in [*failed, *roots]], executes))
    return [*failed, *roots, *(r for r in nodes if r.unique_id in held and r.status == Status.SKIPPED)], roots, ""


def _runs_nothing(
    unique_ids: list[str],
    selection: Selection,
    selectors: tuple[Selector, ...],
    manifest: Manifest,
    command: cmds.DbtCommand,
) -> bool:
    """Whether the manifest proves the narrowed command would execute no node (dbt: "does not match any nodes").

    A node the command executes whose selector `select_nodes` proved against the manifest is selected
    (`compact` keeps every node covered): then no selector needs checking.
    """
    executes = EXECUTES.get(command.name)
    for uid, selector in zip(unique_ids, selection.selectors, strict=True):
        node = manifest.nodes.get(uid)
        proven = uid not in selection.inexact and selector.criteria[0].method != Method.FILE
        if node is not None and proven and executes_node(node, executes):
            return False
    return selects_nothing(selectors, manifest, executes)


def _kept(results: RunResults, rerun: list[str]) -> tuple[NodeResult, ...]:
    """The nodes a narrowed step had run that the restart does not rerun: the work it avoids."""
    again = set(rerun)
    return tuple(r for r in results.results if r.unique_id not in again and not r.unique_id.startswith(HOOK))


def _plan_failed(
    item: CommandStep,
    found: StepArtifacts,
    *,
    rebuild: Rebuild = REBUILD_FAILED,
    run_version: str = "",
    handled: frozenset[str] = frozenset(),
) -> StepPlan:
    """One failed step: narrowed to what `dbt retry` reruns, or rerun as written (with why).

    `handled` are nodes other steps of the plan rebuild (a microbatch model's failed batches): left out.
    """
    assert item.step is not None
    where = f"step {item.step.index}"
    try:
        command = cmds.parse(item.command)
    except cmds.CommandParseError as exc:
        return _rerun(item, "failed", f"{where}: cannot parse `{item.command}` ({exc}); rerun as it was")
    if not command.narrowable:
        return _rerun(item, "failed", f"{where}: `dbt {command.name}` writes no node results; rerun as it was")
    results = found.run_results
    if results is None:
        problem = found.problem or "run_results.json is missing"
        return _rerun(item, "failed", f"{where}: {problem}; rerun as it was")
    engine = Engine.of(results.dbt_version, run_version)
    if not results_belong_to(results, command, engine):
        return _rerun(
            item,
            "failed",
            f"{where}: the run_results.json received was written by another command; rerun as it was",
        )
    failures = tuple(r for r in results.results if r.status in FAILED)
    if engine.unsupported:
        return _rerun(item, "failed", f"{where}: {engine.unsupported}; rerun as it was", failures)
    nodes = retryable(results, command_name=command.name, warn_error=command.has_flag("--warn-error"))
    nodes, roots, why = _held_back(nodes, results, found, command, engine)
    if why:
        return _rerun(item, "failed", f"{where}: {why}; rerun as it was", failures)
    failures += tuple(roots)
    if handled:
        nodes = [r for r in nodes if r.unique_id not in handled]
        failures = tuple(r for r in failures if r.unique_id not in handled)
    unrecorded = _never_recorded(results, found.manifest, command)
    if unrecorded is None:
        return _rerun(
            item,
            "failed",
            f"{where} stopped at its first failure (--fail-fast) and dbt did not record the unit tests of "
            "the models it never started; rerun as it was",
            failures,
        )
    if not nodes:
        return _rerun(
            item, "failed", f"{where} failed but no node did (a hook or a compile error?); rerun as it was", failures
        )
    unique_ids = sorted(r.unique_id for r in nodes) + sorted(unrecorded)  # the same plan on every reading
    added: list[str] = []
    rebuild_warning = ""
    if rebuild == WITH_TEST_PARENTS:
        added, rebuild_warning = _with_test_parents(command, failures, found.manifest, unique_ids)
        unique_ids += added
    stale, stale_warning = _stale(results, found.manifest, rebuild, unique_ids, engine)
    rebuilt = stale if rebuild == WITH_TEST_PARENTS else []
    unique_ids += rebuilt
    selection = select_nodes(unique_ids, found.manifest, by_file=engine.file_by_stem)
    selectors = compact(unique_ids, selection, found.manifest, EXECUTES.get(command.name), _indirect(command, results))
    if found.manifest is not None and _runs_nothing(unique_ids, selection, selectors, found.manifest, command):
        return _rerun(
            item,
            "failed",
            f"{where}: the narrowed command would execute no node (its selectors match nothing dbt "
            f"`{command.name}` runs); rerun as it was",
            failures,
        )
    indirect = command.name in EXECUTES_TESTS and pulls_in_tests(unique_ids, found.manifest)
    warnings = [f"{where}: {w}" for w in (rebuild_warning, stale_warning) if w]
    if indirect and not engine.indirect_empty:
        indirect = False
        warnings.append(
            f"{where}: {engine.name} has no `--indirect-selection empty` (dbt 1.5+): the tests of the rerun "
            "nodes rerun too, passed ones included"
        )
    if selection.inexact:
        warnings.append(_inexact(where, len(selection.inexact), "node(s)"))
    warning = "; ".join(warnings)
    skipped = sum(r.status == Status.SKIPPED for r in nodes) + len(unrecorded)
    warned = sum(r.status == Status.WARN for r in nodes)  # rerun under --warn-error
    return StepPlan(
        item.command,
        item.step.index,
        "narrow",
        f"failed: {len(failures)} node(s) failed, {skipped} more were skipped"
        + (f" or never started ({len(unrecorded)} unit test(s) --fail-fast left unrecorded)" if unrecorded else "")
        + (f"; {warned} warned (--warn-error)" if warned else "")
        + (f"; {len(added)} model(s) rebuilt because their data tests failed" if added else "")
        + (f"; {len(rebuilt)} node(s) rebuilt that ran on a failed model's stale data" if rebuilt else ""),
        new_command=command.narrowed(render(selectors), indirect_empty=indirect),
        nodes=tuple(unique_ids),
        failures=failures,
        warning=warning,
        added=tuple(added),
        stale=tuple(stale),
        graph=nearest_parents(found.manifest, unique_ids) if found.manifest is not None else {},
        kept=_kept(results, unique_ids),
    )


def _inexact(where: str, count: int, what: str) -> str:
    """The warning for nodes selected without a manifest to prove their selectors exact."""
    return (
        f"{where}: {count} {what} selected by name, resource type and package "
        "without manifest.json to prove the selector exact; dbt may rerun a few more nodes"
    )


def _split_microbatch_step(
    item: CommandStep, found: StepArtifacts, planned: StepPlan, rebuild: Rebuild, *, run_version: str = ""
) -> list[StepPlan]:
    """A narrowed step as its microbatch steps (one per window of failed batches) then the rest of it.

    `planned` is returned alone when no model of it partly failed, when the command has one of
    `microbatch.WHOLE_WINDOW_FLAGS`, or when the rest of the step, planned
    without those models, would not rerun every other node of `planned`.
    """
    results = found.run_results
    if planned.action != "narrow" or results is None:
        return [planned]
    command = cmds.parse(item.command)
    rerun = frozenset(planned.nodes)
    models = [m for r in results.results if r.unique_id in rerun and (m := microbatch.from_result(r)) is not None]
    if not models or any(command.has_flag(flag) for flag in microbatch.WHOLE_WINDOW_FLAGS):
        return [planned]
    steps = microbatch.plan_windows(models)
    engine = Engine.of(results.dbt_version, run_version)
    failures = {f.unique_id: f for f in planned.failures}
    where = f"step {planned.step_index}"
    split: list[StepPlan] = []
    for step in steps:
        selection = select_nodes(step.unique_ids, found.manifest, by_file=engine.file_by_stem)
        narrowed = cmds.parse(
            command.narrowed(render(selection.selectors), indirect_empty=command.name in EXECUTES_TESTS)
        )
        warning = _inexact(where, len(selection.inexact), "microbatch model(s)") if selection.inexact else ""
        split.append(
            StepPlan(
                planned.command,
                planned.step_index,
                "narrow",
                step.describe(len(steps)),
                new_command=narrowed.with_event_time(
                    microbatch.flag_value(step.window[0]), microbatch.flag_value(step.window[1], up=True)
                ),
                nodes=step.unique_ids,
                failures=tuple(failures.pop(uid) for uid in step.unique_ids if uid in failures),  # once each
                warning=warning,
                graph={uid: planned.graph.get(uid, ()) for uid in step.unique_ids} if planned.graph else {},
                batches=step,
            )
        )
    done = frozenset(m.unique_id for m in models)
    if not set(planned.nodes) - done:
        return split
    after = _plan_failed(item, found, rebuild=rebuild, run_version=run_version, handled=done)
    if after.action != "narrow" or set(after.nodes) != set(planned.nodes) - done:
        return [planned]  # the rest alone would not rerun the same nodes (unit tests --fail-fast left unrecorded)
    graph = {uid: planned.graph.get(uid, ()) for uid in after.nodes} if planned.graph else {}
    return [*split, replace(after, reason=f"{after.reason}, after the failed batches above", graph=graph)]


def make_plan(run: Run, artifacts: Mapping[int, StepArtifacts], *, rebuild: Rebuild = REBUILD_FAILED) -> Plan:
    """Decide, command by command, what the restart runs.

    - a command that succeeded is dropped;
    - a failed command with node results reruns exactly the nodes `dbt retry` would;
    - a failed command without usable node results reruns as it was;
    - the last step a cancelled run invoked (a timeout, a user, the scheduler) reruns as it was;
    - a command never reached (no step, or a step dbt Cloud lists as "Skipped") reruns as it was.
    """
    paired, notes = align(run)
    stopped = run.status == CANCELLED or run.timed_out
    interrupted = interrupted_step(run, paired)
    never = (
        f"never ran: the run {'timed out' if run.timed_out else 'was cancelled'} before it"
        if stopped
        else ("never ran: an earlier step failed")
    )
    planned = []
    for item in paired:
        if item.step is None or item.step.skipped:
            planned.append(_rerun(item, never))
        elif item.step.status == SUCCESS:
            planned.append(StepPlan(item.command, item.step.index, "skip", "succeeded"))
        elif item.step.index == interrupted:
            found = artifacts.get(item.step.index, StepArtifacts())
            planned.append(_plan_interrupted(item, found, timed_out=run.timed_out, run_version=run.dbt_version))
        elif item.step.status == ERROR:
            found = artifacts.get(item.step.index, StepArtifacts())
            narrowed = _plan_failed(item, found, rebuild=rebuild, run_version=run.dbt_version)
            planned.extend(_split_microbatch_step(item, found, narrowed, rebuild, run_version=run.dbt_version))
        else:
            state = STATUS_NAMES.get(item.step.status, str(item.step.status))
            planned.append(_rerun(item, f"{state} mid-step: its partial results are not trusted"))
    return Plan(tuple(planned), tuple(notes), _engine_name(run, paired, artifacts))


def _engine_name(run: Run, paired: Sequence[CommandStep], artifacts: Mapping[int, StepArtifacts]) -> str:
    """The engine of the first failed step whose run_results.json names one, else the run's; '' if none."""
    stamp = ""
    for item in paired:
        found = artifacts.get(item.step.index) if item.step is not None and item.step.status != SUCCESS else None
        if found is not None and found.run_results is not None and found.run_results.dbt_version:
            stamp = found.run_results.dbt_version
            break
    engine = Engine.of(stamp, run.dbt_version)
    return engine.name if engine.text else ""
