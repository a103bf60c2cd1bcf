"""The pure planner on hand-made runs: alignment of steps to commands and per-step decisions."""

from restart.artifacts import Manifest, NodeResult, RunResults
from restart.plan import StepArtifacts, align, make_plan, needs_artifacts
from restart.records import CANCELLED, ERROR, SUCCESS, Step
from tests.factories import DBT_VERSION, make_run, node, results


def test_setup_steps_are_never_commands() -> None:
    run = make_run(["dbt seed", "dbt run"], [SUCCESS, ERROR])
    paired, notes = align(run)
    assert [(p.command, p.step.index if p.step else None) for p in paired] == [("dbt seed", 4), ("dbt run", 5)]
    assert notes == []


def test_user_deps_step_is_told_apart_from_the_automatic_one() -> None:
    run = make_run(["dbt deps", "dbt run"], [SUCCESS, ERROR])
    paired, _ = align(run)
    assert [p.step.index if p.step else None for p in paired] == [4, 5]


def test_job_freshness_step_is_not_a_command() -> None:
    run = make_run(
        ["dbt build"], [ERROR], freshness=True, extra_before=[("Invoke dbt with `dbt source freshness`", SUCCESS)]
    )
    paired, _ = align(run)
    assert paired[0].step is not None and paired[0].step.index == 5


def test_steps_override_of_the_previous_run_is_what_gets_planned() -> None:
    run = make_run(["dbt build"], [SUCCESS, ERROR], override=["dbt seed", "dbt run -s a"])
    plan = make_plan(run, {})
    assert [s.command for s in plan.steps] == ["dbt seed", "dbt run -s a"]


def test_succeeded_dropped_failed_narrowed_unreached_rerun_as_is() -> None:
    run = make_run(
        ["dbt seed", "dbt run --select staging+ --target prod", "dbt test", "dbt docs generate"], [SUCCESS, ERROR]
    )
    assert list(needs_artifacts(align(run)[0])) == [5]
    found = StepArtifacts(
        results(
            "run",
            {"model.shop.a": "success", "model.shop.b": "error", "model.shop.c": "skipped"},
            select=["staging+"],
        )
    )
    plan = make_plan(run, {5: found})
    assert [s.action for s in plan.steps] == ["skip", "narrow", "rerun", "rerun"]
    narrowed = plan.steps[1]
    assert narrowed.nodes == ("model.shop.b", "model.shop.c")
    assert narrowed.new_command == (
        "dbt run --target prod --select file:b,resource_type:model,package:shop file:c,resource_type:model,package:shop"
    )
    assert [f.unique_id for f in narrowed.failures] == ["model.shop.b"]
    assert plan.steps_override == [narrowed.new_command, "dbt test", "dbt docs generate"]
    assert plan.rerun_nodes == ["model.shop.b", "model.shop.c"]
    assert narrowed.warning == "", "models are selected exactly by their file, without the manifest"
    assert plan.steps[2].reason == "never ran: an earlier step failed"


def test_results_of_another_step_are_not_trusted() -> None:
    """The artifacts endpoint may ignore `step` and hand back another command's results."""
    run = make_run(["dbt seed", "dbt run"], [SUCCESS, ERROR])
    stale = StepArtifacts(results("seed", {"seed.shop.raw": "success"}))
    step = make_plan(run, {5: stale}).steps[1]
    assert (step.action, step.sent) == ("rerun", "dbt run")
    assert "another command" in step.warning


def test_missing_or_bad_artifacts_rerun_the_step_as_is() -> None:
    run = make_run(["dbt build"], [ERROR])
    step = make_plan(run, {4: StepArtifacts(problem="run_results.json is missing")}).steps[0]
    assert (step.action, step.sent) == ("rerun", "dbt build")
    assert "run_results.json is missing" in step.warning


def test_commands_without_node_results_rerun_as_is_with_a_warning() -> None:
    run = make_run(["dbt run-operation grant", "dbt run"], [ERROR])
    plan = make_plan(run, {})
    assert [s.action for s in plan.steps] == ["rerun", "rerun"]
    assert "writes no node results" in plan.steps[0].warning


def test_failed_step_without_failed_nodes_reruns_as_is() -> None:
    run = make_run(["dbt build"], [ERROR])
    step = make_plan(run, {4: StepArtifacts(results("build", {"model.shop.a": "success"}))}).steps[0]
    assert step.action == "rerun"
    assert "no node did" in step.warning


def test_cancelled_run_reruns_the_interrupted_step_and_the_rest() -> None:
    run = make_run(["dbt seed", "dbt run", "dbt test"], [SUCCESS, CANCELLED], status=CANCELLED)
    plan = make_plan(run, {})
    assert [s.action for s in plan.steps] == ["skip", "rerun", "rerun"]
    assert plan.steps[2].reason == "never ran: the run was cancelled before it"


def test_warn_counts_only_under_warn_error() -> None:
    nodes = {"test.shop.t.1": "warn", "model.shop.m": "error"}
    plain = make_run(["dbt build"], [ERROR])
    assert make_plan(plain, {4: StepArtifacts(results("build", nodes))}).rerun_nodes == ["model.shop.m"]
    strict = make_run(["dbt build --warn-error"], [ERROR])
    assert make_plan(strict, {4: StepArtifacts(results("build", nodes))}).rerun_nodes == [
        "model.shop.m",
        "test.shop.t.1",
    ]


def test_hooks_are_not_selected() -> None:
    run = make_run(["dbt run"], [ERROR])
    nodes = {"operation.shop.shop-on-run-end-0": "error", "model.shop.m": "error"}
    assert make_plan(run, {4: StepArtifacts(results("run", nodes))}).rerun_nodes == ["model.shop.m"]


def test_manifest_gives_short_exact_selectors_and_no_indirect_tests() -> None:
    manifest = Manifest(
        {
            n.unique_id: n
            for n in [
                node("model.shop.orders", ["shop", "marts", "orders"]),
                node("model.shop.calendar", ["shop", "calendar"]),
                node("model.utils.calendar", ["utils", "calendar"]),
                node("model.shop.dim.v2", ["shop", "marts", "dim", "v2"], versioned=True),
                node("model.shop.dim.v1", ["shop", "marts", "dim", "v1"], versioned=True),
                node(
                    "test.shop.not_null_orders_id.abc",
                    ["shop", "marts", "not_null_orders_id"],
                    depends=("model.shop.orders",),
                ),
            ]
        }
    )
    run = make_run(["dbt build"], [ERROR])
    failed = {
        "model.shop.orders": "error",
        "test.shop.not_null_orders_id.abc": "skipped",
        "model.shop.calendar": "error",
        "model.shop.dim.v2": "error",
    }
    step = make_plan(run, {4: StepArtifacts(results("build", failed), manifest)}).steps[0]
    assert step.new_command == "dbt build --select calendar,package:shop dim.v2 orders+"  # orders+: its test too
    assert step.warning == ""


def test_the_manifest_is_read_only_when_a_name_alone_may_be_ambiguous() -> None:
    from restart import commands
    from restart.plan import manifest_needed

    run = commands.parse("dbt run")
    build = commands.parse("dbt build")
    models = results("run", {"model.shop.a": "error", "model.shop.b": "skipped", "seed.shop.s": "error"})
    assert manifest_needed(models, run) == ""
    assert "test.shop.t.1" in manifest_needed(results("build", {"test.shop.t.1": "fail"}), build)
    assert "model.shop.dim.v2" in manifest_needed(results("run", {"model.shop.dim.v2": "error"}), run)
    assert "snapshot" in manifest_needed(results("snapshot", {"snapshot.shop.snap": "error"}), run)
    many = results("run", {f"model.shop.m{i}": "skipped" for i in range(25)})
    assert "compacted" in manifest_needed(many, run)
    tests = results("build", {"model.shop.a": "error"})
    assert manifest_needed(tests, build, rebuild="with-test-parents") == ""
    failing = results("build", {"test.shop.t.1": "fail"})
    assert "parents" in manifest_needed(failing, build, rebuild="with-test-parents")


def test_warn_error_and_a_cut_short_fail_fast_build_need_the_manifest() -> None:
    from restart import commands
    from restart.plan import FAIL_FAST_SKIP, manifest_needed

    warned = results("build", {"test.shop.t.1": "warn", "model.shop.m": "error"})
    assert manifest_needed(warned, commands.parse("dbt build")) == ""
    assert "test.shop.t.1" in manifest_needed(warned, commands.parse("dbt build --warn-error"))
    cut = RunResults(
        (NodeResult("model.shop.m", "error"), NodeResult("model.shop.n", "skipped", FAIL_FAST_SKIP)),
        dbt_version=DBT_VERSION,
    )
    assert manifest_needed(cut, commands.parse("dbt build")) == ""
    assert "fail-fast" in manifest_needed(cut, commands.parse("dbt build --fail-fast"))
    assert manifest_needed(cut, commands.parse("dbt run --fail-fast")) == ""


def test_the_failure_region_graph_links_rerun_nodes_through_nodes_left_out() -> None:
    # stg -> (ephemeral, not run) -> orders -> customers; a test on orders; `other` is not rerun.
    manifest = Manifest(
        {
            n.unique_id: n
            for n in [
                node("model.shop.stg", ["shop", "stg"]),
                node("model.shop.eph", ["shop", "eph"], depends=("model.shop.stg",)),
                node("model.shop.orders", ["shop", "orders"], depends=("model.shop.eph", "model.shop.other")),
                node("model.shop.other", ["shop", "other"]),
                node("model.shop.customers", ["shop", "customers"], depends=("model.shop.orders",)),
                node("test.shop.t.1", ["shop", "t"], depends=("model.shop.orders",)),
            ]
        }
    )
    run = make_run(["dbt build"], [ERROR])
    failed = {
        "model.shop.stg": "error",
        "model.shop.orders": "skipped",
        "model.shop.customers": "skipped",
        "test.shop.t.1": "skipped",
        "model.shop.other": "success",
    }
    step = make_plan(run, {4: StepArtifacts(results("build", failed), manifest)}).steps[0]
    assert step.graph == {
        "model.shop.stg": (),
        "model.shop.orders": ("model.shop.stg",),  # through the ephemeral model
        "model.shop.customers": ("model.shop.orders",),
        "test.shop.t.1": ("model.shop.orders",),
    }
    no_manifest = make_plan(run, {4: StepArtifacts(results("build", failed))}).steps[0]
    assert no_manifest.graph == {} and set(no_manifest.nodes) == set(step.nodes)


TIMEOUT = "This run timed out after running for 1 day, which exceeded the configured timeout of 86400 seconds."


def test_a_timed_out_run_is_cancelled_and_its_last_step_reruns_as_written_whatever_its_status() -> None:
    from dataclasses import replace

    for step_status in (ERROR, CANCELLED):
        run = replace(
            make_run(["dbt seed", "dbt build", "dbt test"], [SUCCESS, step_status], status=CANCELLED),
            status_message=TIMEOUT,
        )
        partial = {"model.shop.a": "success", "model.shop.b": "error"}
        plan = make_plan(run, {5: StepArtifacts(results("build", partial))})
        assert [s.action for s in plan.steps] == ["skip", "rerun", "rerun"], step_status
        assert plan.steps[1].reason.startswith("timed out mid-step")
        assert "job's timeout" in plan.steps[1].warning and plan.steps[1].new_command == ""
        assert plan.steps[2].reason == "never ran: the run timed out before it"


def test_a_user_cancelled_run_says_cancelled() -> None:
    run = make_run(["dbt build"], [ERROR], status=CANCELLED)
    step = make_plan(run, {4: StepArtifacts(results("build", {"model.shop.b": "error"}))}).steps[0]
    assert (step.action, step.reason) == ("rerun", "cancelled mid-step: stopped by the run's cancellation")
    assert [f.unique_id for f in step.failures] == ["model.shop.b"]


def test_steps_listed_as_skipped_never_ran_and_need_no_artifacts() -> None:
    from dataclasses import replace

    run = make_run(["dbt seed", "dbt run", "dbt test"], [ERROR, 1, 1])
    steps = tuple(replace(s, humanized="Skipped") if s.index > 4 else s for s in run.steps)
    run = replace(run, steps=steps)
    paired, _ = align(run)
    assert list(needs_artifacts(paired)) == [4]
    plan = make_plan(run, {4: StepArtifacts(results("seed", {"seed.shop.s": "error"}))})
    assert [s.action for s in plan.steps] == ["narrow", "rerun", "rerun"]
    assert plan.steps[1].reason == plan.steps[2].reason == "never ran: an earlier step failed"


def test_lint_and_compare_changes_steps_are_never_commands() -> None:
    from dataclasses import replace

    lint = ("Invoke dbt with `dbt sqlfluff lint models`", SUCCESS)
    run = make_run(["dbt build"], [ERROR], extra_before=[lint])
    compare = Step(
        len(run.steps) + 1, "Invoke dbt with `dbt compare --select state:modified`", 1, "", humanized="Skipped"
    )
    assert run.job is not None
    run = replace(run, steps=(*run.steps, compare), job=replace(run.job, run_lint=True, run_compare_changes=True))
    paired, notes = align(run)
    assert [(p.command, p.step.index if p.step else None) for p in paired] == [("dbt build", 5)]
    assert notes == []
    plan = make_plan(run, {5: StepArtifacts(results("build", {"model.shop.b": "error"}))})
    assert plan.steps_override[0].startswith("dbt build --select")
    assert all("lint" not in c and "compare" not in c for c in plan.steps_override)


def test_the_job_s_lint_step_is_told_apart_from_a_lint_command_of_the_user() -> None:
    from dataclasses import replace

    lint = "dbt sqlfluff lint models"
    run = make_run([lint, "dbt build"], [SUCCESS, ERROR], extra_before=[(f"Invoke dbt with `{lint}`", SUCCESS)])
    assert run.job is not None
    run = replace(run, job=replace(run.job, run_lint=True))
    paired, notes = align(run)
    assert [(p.command, p.step.index if p.step else None) for p in paired] == [(lint, 5), ("dbt build", 6)]
    assert notes == []


def test_the_narrowed_reason_counts_only_skipped_nodes_as_skipped() -> None:
    strict = make_run(["dbt build --warn-error"], [ERROR])
    nodes = {"test.shop.t.1": "warn", "model.shop.m": "error", "model.shop.n": "skipped"}
    [step] = make_plan(strict, {4: StepArtifacts(results("build", nodes))}).steps
    assert step.reason == "failed: 1 node(s) failed, 1 more were skipped; 1 warned (--warn-error)"

    build = make_run(["dbt build"], [ERROR])
    manifest = Manifest(
        {
            "model.shop.m": node("model.shop.m", ["shop", "m"]),
            "test.shop.t.1": node("test.shop.t.1", ["shop", "t"], depends=("model.shop.m",)),
        }
    )
    found = StepArtifacts(results("build", {"test.shop.t.1": "fail", "model.shop.m": "success"}), manifest)
    [step] = make_plan(build, {4: found}, rebuild="with-test-parents").steps
    assert step.nodes == ("test.shop.t.1", "model.shop.m")
    assert (
        step.reason
        == "failed: 1 node(s) failed, 0 more were skipped; 1 model(s) rebuilt because their data tests failed"
    )
