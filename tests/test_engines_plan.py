"""The planner on what dbt Core 1.10-1.12 record: done statuses, a failed on-run-start hook, on_error: continue."""

from __future__ import annotations

from typing import Any

import pytest

from restart import commands
from restart.artifacts import Manifest, ManifestNode, NodeResult, RunResults, parse_run_results
from restart.dbt_vocabulary import DONE, RETRYABLE, Rebuild
from restart.engines import Engine, Rule, continued_on_error, on_run_start_failed, stale_children
from restart.plan import StepArtifacts, StepPlan, make_plan, manifest_needed
from tests.factories import make_run
from tests.factories import node_of as node

HOOK = "operation.shop.shop-on-run-start-0"


def results(nodes: dict[str, str], version: str = "1.12.6", which: str = "build") -> RunResults:
    return RunResults(tuple(NodeResult(u, s, "") for u, s in nodes.items()), {"which": which}, 6, version)


# stg -> mid (ephemeral) -> mart -> test on mart; stg has a test; other is unrelated.
MANIFEST = Manifest(
    {
        "model.shop.stg": node("model.shop.stg"),
        "test.shop.not_null_stg_id.1": node("test.shop.not_null_stg_id.1", "model.shop.stg"),
        "model.shop.mid": ManifestNode(
            "model.shop.mid", "model", "shop", "mid", ("shop", "mid"), False, ("model.shop.stg",), (), "", "ephemeral"
        ),
        "model.shop.mart": node("model.shop.mart", "model.shop.mid"),
        "test.shop.unique_mart_id.2": node("test.shop.unique_mart_id.2", "model.shop.mart"),
        "model.shop.other": node("model.shop.other"),
        "unit_test.shop.stg.t": node("unit_test.shop.stg.t", "model.shop.stg"),
    },
    project_name="shop",
)
CONTINUED = {
    HOOK: "success",
    "unit_test.shop.stg.t": "pass",  # ran on fixtures before its model failed: not stale
    "model.shop.stg": "error",
    "model.shop.other": "success",
    "test.shop.not_null_stg_id.1": "pass",
    "model.shop.mart": "success",
    "test.shop.unique_mart_id.2": "pass",
}


def plan(found: RunResults, manifest: Manifest | None = MANIFEST, *, rebuild: Rebuild = "failed") -> StepPlan:
    run = make_run(["dbt build"], [20])
    return make_plan(run, {4: StepArtifacts(found, manifest)}, rebuild=rebuild).steps[0]


@pytest.mark.parametrize("status", ["no-op", "reused"])
def test_no_op_and_reused_nodes_are_done_and_never_rerun(status: str) -> None:
    assert status in DONE and status not in RETRYABLE
    step = plan(results({"model.shop.stg": "error", "model.shop.other": status, "exposure.shop.page": "no-op"}))
    assert step.action == "narrow" and step.nodes == ("model.shop.stg",)


def test_the_dbt_version_is_read_from_the_metadata() -> None:
    document: dict[str, Any] = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.12.6",
        },
        "results": [],
    }
    assert parse_run_results(document).dbt_version == "1.12.6"
    del document["metadata"]["dbt_version"]
    assert parse_run_results(document).dbt_version == ""


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.12.6", True),
        ("1.13.0b1", True),
        ("2.0.0-preview.45", True),
        ("2026.9.1+0000000", True),  # the day 1.12's defaults reached Latest
        ("1.11.16", False),
        ("2026.8.31+abcdef0", False),
        ("2026.4.7+4533730", False),  # not "dbt 2026"
        ("", False),
        ("x", False),
    ],
)
def test_the_1_12_rules_apply_from_1_12_and_from_their_release_track_date(version: str, expected: bool) -> None:
    assert Engine(version).has(Rule.CONTINUE_ON_ERROR) is expected
    assert Engine(version).has(Rule.SKIPS_ON_RUN_START_FAILURE) is expected


def test_a_failed_on_run_start_hook_reruns_the_step_as_written() -> None:
    """dbt 1.12 skips every node; narrowing to them would drop the unit tests dbt never recorded."""
    skipped = {HOOK: "error", "model.shop.stg": "skipped", "test.shop.not_null_stg_id.1": "skipped"}
    step = plan(results(skipped))
    assert (step.action, step.sent) == ("rerun", "dbt build")
    assert "on-run-start hook failed" in step.warning
    assert [f.unique_id for f in step.failures] == [HOOK]
    assert on_run_start_failed(results({"model.shop.stg": "skipped"}))  # dbt v2 may not record the hook at all
    assert not on_run_start_failed(results({HOOK: "error"}))  # dbt 1.11: the nodes ran; nothing to narrow to
    assert not on_run_start_failed(results({"model.shop.stg": "error", "model.shop.mart": "skipped"}))


def test_children_that_ran_on_stale_data_are_named_but_not_rerun_by_default() -> None:
    found = results(CONTINUED)
    assert continued_on_error(found)
    assert stale_children(found, MANIFEST) == [
        "test.shop.not_null_stg_id.1",
        "model.shop.mart",
        "test.shop.unique_mart_id.2",
    ]
    step = plan(found)
    assert step.action == "narrow" and step.nodes == ("model.shop.stg",)
    assert step.stale == ("test.shop.not_null_stg_id.1", "model.shop.mart", "test.shop.unique_mart_id.2")
    assert "3 node(s) ran on a failed model's stale data (on_error: continue)" in step.warning
    assert "`rebuild: with-test-parents` rebuilds them" in step.warning


def test_with_test_parents_also_rebuilds_the_children_that_ran_on_stale_data() -> None:
    step = plan(results(CONTINUED), rebuild="with-test-parents")
    assert set(step.nodes) == {
        "model.shop.stg",
        "test.shop.not_null_stg_id.1",
        "model.shop.mart",
        "test.shop.unique_mart_id.2",
    }
    assert "3 node(s) rebuilt that ran on a failed model's stale data" in step.reason
    assert "0 more were skipped" in step.reason and step.warning == ""


def test_stale_children_need_the_manifest_only_from_dbt_1_12() -> None:
    build = commands.parse("dbt build")
    assert "on_error: continue" in manifest_needed(results(CONTINUED), build)
    assert manifest_needed(results(CONTINUED, version="1.11.16"), build) == ""
    # the usual failure: the children were skipped, nothing ran after the failed model
    usual = {**CONTINUED, "test.shop.not_null_stg_id.1": "skipped", "model.shop.mart": "skipped"}
    assert stale_children(results({**usual, "test.shop.unique_mart_id.2": "skipped"}), MANIFEST) == []
    without = plan(results(CONTINUED), manifest=None)
    assert (
        without.action == "narrow" and "without manifest.json, nodes that ran after a failed model" in without.warning
    )


def test_dbt_1_11_never_reports_stale_children() -> None:
    step = plan(results(CONTINUED, version="1.11.16"))
    assert step.stale == () and step.warning == ""
