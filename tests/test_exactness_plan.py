"""Planner decisions for steps whose run_results.json is partial, without running dbt."""

from __future__ import annotations

from restart.artifacts import Manifest, ManifestNode, NodeResult, RunResults
from restart.plan import StepArtifacts, make_plan
from tests.exactness.harness import single_step_run

SKIP = "Skipping due to fail_fast"


def manifest() -> Manifest:
    nodes = [
        ManifestNode("model.p.a", "model", "p", "a", ("p", "a"), False, ()),
        ManifestNode("model.p.b", "model", "p", "b", ("p", "b"), False, ("model.p.a",)),
        ManifestNode("unit_test.p.b.ut", "unit_test", "p", "ut", ("p", "b", "ut"), False, ("model.p.b",)),
    ]
    return Manifest({n.unique_id: n for n in nodes})


def fail_fast_results(**args: object) -> RunResults:
    results = (NodeResult("model.p.a", "error", "boom"), NodeResult("model.p.b", "skipped", SKIP))
    return RunResults(results, {"which": "build", "fail_fast": True, **args})


def test_fail_fast_build_adds_the_unit_tests_dbt_never_recorded() -> None:
    step = make_plan(single_step_run("dbt build -x"), {4: StepArtifacts(fail_fast_results(), manifest())}).steps[0]
    assert step.action == "narrow"
    assert step.nodes == ("model.p.a", "model.p.b", "unit_test.p.b.ut")


def test_fail_fast_from_the_environment_is_read_from_the_results_args() -> None:
    """DBT_FAIL_FAST=1 leaves no trace in the command, only in run_results.json's args."""
    step = make_plan(single_step_run("dbt build"), {4: StepArtifacts(fail_fast_results(), manifest())}).steps[0]
    assert "unit_test.p.b.ut" in step.nodes


def test_fail_fast_build_without_manifest_or_with_exclusions_reruns_as_written() -> None:
    bare = make_plan(single_step_run("dbt build -x"), {4: StepArtifacts(fail_fast_results())}).steps[0]
    assert (bare.action, bare.sent) == ("rerun", "dbt build -x")
    excluded = fail_fast_results(select=["a+"], exclude=["tag:x"])
    step = make_plan(
        single_step_run("dbt build -x -s a+ --exclude tag:x"), {4: StepArtifacts(excluded, manifest())}
    ).steps[0]
    assert (step.action, step.sent) == ("rerun", "dbt build -x -s a+ --exclude tag:x")
    assert "--fail-fast" in step.warning


def test_timed_out_run_reruns_its_last_step_as_written() -> None:
    results = RunResults((NodeResult("model.p.a", "error", "boom"),), {"which": "build"})
    run = single_step_run(
        "dbt build", message="This run timed out after running for longer than the timeout of 5 seconds."
    )
    step = make_plan(run, {4: StepArtifacts(results, manifest())}).steps[0]
    assert (step.action, step.sent) == ("rerun", "dbt build")
    assert "timeout" in step.warning
