"""Restarts of runs dbt v2 (Fusion) executed: the local dbt Cloud's Fusion mode, then the action against it.

Fusion cannot run here: an environment in Fusion mode runs dbt-core and rewrites its artifacts the way
Fusion writes them (tests/emulator/fusion.py), keeping dbt-core's own `run_results.core.json`. What
dbt-core recorded as failed or skipped is what `dbt retry` reruns: the restart must rerun exactly that,
from Fusion's artifacts alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import LocalDbtCloud
from tests.emulator.fusion import FUSION_TRACK, FUSION_VERSION, MANIFEST_LABEL, FusionMode, rewrite_run_results
from tests.runner import inputs, run_action

RETRY = {"error", "fail", "skipped", "runtime error", "partial success"}
EPHEMERAL = "model.shop.int_order_payments"


def core_results(cloud: LocalDbtCloud, run_id: int, step: int) -> dict[str, str]:
    """{unique_id: status} as dbt-core wrote them for that step (before the Fusion rewrite)."""
    [found] = [s for s in cloud.engine.runs[run_id].steps if s.index == step]
    assert found.target_path is not None
    document: dict[str, Any] = json.loads((found.target_path / "run_results.core.json").read_bytes())
    return {r["unique_id"]: r["status"] for r in document["results"]}


def dbt_retry_set(cloud: LocalDbtCloud, run_id: int, step: int) -> set[str]:
    return {u for u, s in core_results(cloud, run_id, step).items() if s in RETRY and not u.startswith("operation.")}


def test_fusion_mode_rewrites_results_without_running_dbt() -> None:
    """The rewrite itself, on a small dbt-core document: errors dropped, ephemeral and reused tests skipped."""
    manifest = {
        "nodes": {
            "model.p.a": {"name": "a", "config": {"materialized": "table"}, "depends_on": {"nodes": []}},
            "model.p.e": {"name": "e", "config": {"materialized": "ephemeral"}, "depends_on": {"nodes": ["model.p.a"]}},
            "model.p.b": {"name": "b", "config": {"materialized": "view"}, "depends_on": {"nodes": ["model.p.e"]}},
            "test.p.t": {"name": "t", "config": {}, "depends_on": {"nodes": ["model.p.a"]}},
        }
    }
    results: dict[str, Any] = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json", "dbt_version": "1.11"},
        "args": {"which": "build", "select": ["a+"], "invocation_command": "dbt build -s a+"},
        "results": [
            {"unique_id": "model.p.a", "status": "success", "message": "OK", "compiled_code": "select 1"},
            {"unique_id": "test.p.t", "status": "pass", "message": None, "failures": 0},
            {"unique_id": "model.p.b", "status": "error", "message": "boom"},
        ],
    }
    plain = rewrite_run_results(results, manifest, FusionMode(reused=frozenset({"a"})))
    assert plain["args"] == {"command": "build", "which": "build"}
    assert plain["metadata"]["dbt_version"] == FUSION_VERSION
    statuses = {r["unique_id"]: r["status"] for r in plain["results"]}
    assert statuses == {"model.p.a": "reused", "test.p.t": "skipped", "model.p.b": "error", "model.p.e": "skipped"}
    assert all("compiled_code" not in r and "failures" not in r for r in plain["results"])
    dropped = rewrite_run_results(results, manifest, FusionMode(drop_errors=True))
    assert "model.p.b" not in {r["unique_id"] for r in dropped["results"]}
    assert results["results"][2]["status"] == "error", "the rewrite leaves dbt-core's document alone"


@pytest.fixture(scope="module")
def selected(cloud: LocalDbtCloud) -> tuple[int, int]:
    """A Fusion run of `dbt seed`, `dbt build --select staging+` (step 5) that failed on stg_payments;
    stg_customers was reused."""
    cloud.use_fusion(41, reused=("stg_customers",))
    return cloud.failing_run(["dbt seed", "dbt build --select staging+"], ["stg_payments"], environment_id=41)


def test_fusion_mode_serves_artifacts_as_fusion_writes_them(cloud: LocalDbtCloud, selected: tuple[int, int]) -> None:
    _, run_id = selected
    assert cloud.run(run_id)["dbt_version"] == FUSION_TRACK
    results = cloud.artifact(run_id, 5)
    manifest = cloud.artifact(run_id, 5, "manifest.json")
    assert results is not None and manifest is not None
    assert results["args"] == {"command": "build", "which": "build"}
    statuses = {r["unique_id"]: r["status"] for r in results["results"]}
    assert statuses[EPHEMERAL] == "skipped" and EPHEMERAL not in core_results(cloud, run_id, 5)
    assert statuses["model.shop.stg_customers"] == "reused"
    reused_tests = {u for u in statuses if u.startswith("test.shop.not_null_stg_customers_customer_id.")}
    assert reused_tests and {statuses[u] for u in reused_tests} == {"skipped"}  # dbt State reused them
    assert statuses["model.shop.stg_payments"] == "error"
    assert manifest["metadata"]["dbt_schema_version"] == MANIFEST_LABEL
    assert manifest["nodes"]["model.shop.orders"]["config"]["materialized"] is None
    assert manifest["nodes"][EPHEMERAL]["config"]["materialized"] == "ephemeral"


def test_a_selected_fusion_step_is_narrowed_to_what_dbt_retry_reruns(
    cloud: LocalDbtCloud, selected: tuple[int, int], tmp_path: Path
) -> None:
    job_id, run_id = selected
    expected = dbt_retry_set(cloud, run_id, 5)
    assert "model.shop.stg_payments" in expected and EPHEMERAL not in expected

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert result.exit_code == 0 and result.outputs["status"] == "success", result.log
    [command] = result.json_output("steps")
    assert command.startswith("dbt build --select ") and "staging+" not in command
    assert set(result.json_output("rerun-nodes")) == expected  # no ephemeral, no test of the reused model
    executed = core_results(cloud, int(result.outputs["run-id"]), 4)
    assert set(executed) == expected
    assert set(executed.values()) <= {"success", "pass"}


def test_a_fusion_step_without_its_error_result_rebuilds_the_failed_node(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    cloud.use_fusion(42, drop_errors=True)
    job_id, run_id = cloud.failing_run(["dbt build"], ["stg_payments"], environment_id=42)
    served = cloud.artifact(run_id, 4)
    assert served is not None
    assert "model.shop.stg_payments" not in {r["unique_id"] for r in served["results"]}
    expected = dbt_retry_set(cloud, run_id, 4)

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert result.exit_code == 0 and result.outputs["status"] == "success", result.log
    assert set(result.json_output("rerun-nodes")) == expected
    executed = core_results(cloud, int(result.outputs["run-id"]), 4)
    assert executed.get("model.shop.stg_payments") == "success", "the node that failed was not rebuilt"
    assert set(executed) == expected
