"""Restarts in the failed run's own context, end to end: the action against the local dbt Cloud, whose
runs honour every trigger override (tests/test_emulator_context.py). Field notes: "A run's own context,
and the native rerun". A scheduled run's restart carries no override (`test_the_prebuilt_image_...`), and
the native rerun keeps the context by itself (`test_native_strategy_...`), in test_restart_end_to_end.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.emulator import LocalDbtCloud
from tests.runner import ActionResult, inputs, run_action


def sent_body(cloud: LocalDbtCloud, result: ActionResult) -> dict[str, object]:
    """The trigger request the action sent for its new run."""
    posted = [r for r in cloud.requests if r.method == "POST" and r.path.endswith("/run/")]
    new = cloud.run(int(result.outputs["run-id"]))
    body: dict[str, object] = next(r.json for r in reversed(posted) if r.json["cause"] == new["trigger"]["cause"])
    return body


def context_of(body: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in body.items() if k not in ("cause", "steps_override")}


def tables_in(cloud: LocalDbtCloud, schema: str, environment_id: int) -> set[str]:
    sql = f"select table_name from information_schema.tables where table_schema = '{schema}'"
    return {row[0] for row in cloud.query(sql, environment_id)}


def test_a_run_with_its_own_schema_and_steps_is_restarted_in_them(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    context: dict[str, Any] = {"schema_override": "dbt_ctx", "target_name_override": "ci", "threads_override": 2}
    job_id, run_id = cloud.failing_run(
        ["dbt build"],
        ["stg_orders"],
        environment_id=21,
        category="api",
        steps_override=["dbt seed", "dbt build --exclude resource_type:seed"],
        **context,
    )
    assert "raw_orders" in tables_in(cloud, "dbt_ctx", 21) and not tables_in(cloud, "main", 21)

    # From the job's defaults (a dry run, before the restart below: a second restart of one failure stops
    # as a duplicate): nothing of the failed run's context would be sent.
    defaults = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), context="job-defaults", dry_run="true"))
    assert (defaults.exit_code, defaults.outputs["status"]) == (0, "planned"), defaults.log
    assert defaults.json_output("context") == {}
    assert "- Context: the job's defaults (`context: job-defaults`)" in defaults.summary

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), payload='{"threads_override": 3}'))

    assert (result.exit_code, result.outputs["status"], result.outputs["verified"]) == (0, "success", "true"), (
        result.log
    )
    # Planned from the run's own steps_override: its seed step succeeded and is dropped.
    [command] = result.json_output("steps")
    assert command.startswith("dbt build --select ") and "stg_orders" in command
    body = sent_body(cloud, result)
    assert context_of(body) == {**context, "threads_override": 3} == result.json_output("context")
    new = cloud.run(int(result.outputs["run-id"]))
    assert {k: new["trigger"][k] for k in context} == {**context, "threads_override": 3}
    assert "stg_orders" in tables_in(cloud, "dbt_ctx", 21) and not tables_in(cloud, "main", 21)
    profile = new["run_steps"][1]["logs"]
    assert "target: ci" in profile and "threads: 3" in profile and "schema: dbt_ctx" in profile
    assert "| `schema_override` | <code>dbt_ctx</code> | failed run [#" in result.summary
    assert "| `threads_override` | <code>3</code> | `payload` |" in result.summary


def test_a_pull_request_run_is_restarted_on_its_commit_in_its_schema(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    sha = cloud.commit("feature/pr-7", {"models/pr_only.sql": "select 7 as id"})
    pr: dict[str, Any] = {"github_pull_request_id": 7, "git_branch": "feature/pr-7", "git_sha": sha}
    steps = ["dbt seed --select raw_orders", "dbt run --select stg_orders pr_only"]
    job_id, _ = cloud.failing_run(steps, ["stg_orders"], environment_id=22, job={"job_type": "ci"}, category="ci", **pr)
    schema = f"dbt_cloud_pr_{job_id}_7"
    built = tables_in(cloud, schema, 22)
    assert {"raw_orders", "pr_only"} <= built and "stg_orders" not in built
    cloud.commit("feature/pr-7", {"models/pr_only.sql": "select 8 as id"})  # pushed after the failure

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert (result.exit_code, result.outputs["verified"]) == (0, "true"), result.log
    assert context_of(sent_body(cloud, result)) == pr
    new = cloud.run(int(result.outputs["run-id"]))
    assert (new["git_sha"], new["git_branch"]) == (sha, "feature/pr-7")
    assert "stg_orders" in tables_in(cloud, schema, 22) and result.json_output("rerun-nodes") == [
        "model.shop.stg_orders"
    ]
    notice = f"::notice title=Pinned commit::the new run checks out commit {sha[:12]} again"
    assert notice in result.log and '{"git_sha": null}' in result.log
    assert f"📌 The new run checks out commit <code>{sha}</code> again" in result.summary
