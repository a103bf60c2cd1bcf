"""GitHub integration end to end, through the action and real dbt: dispatch inputs, the loop guard's
marker through dbt Cloud, and commit statuses of several jobs (fake GitHub API). The event context,
commit status, incident issue and missing permissions are proven without dbt in tests/test_reporting.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator import LocalDbtCloud
from tests.fake_github import FakeGitHub
from tests.runner import ActionResult, inputs, run_action


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture(autouse=True)
def clear_faults(cloud: LocalDbtCloud) -> Iterator[None]:
    yield
    cloud.set_faults([])


def warnings(result: ActionResult) -> list[str]:
    return [line for line in result.log.splitlines() if line.startswith("::warning")]


def test_workflow_dispatch_inputs_fill_an_empty_run_id(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, run_id = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=2)
    other = cloud.trigger(job_id, steps_override=["dbt seed --select raw_customers"])
    cloud.wait(other)
    event = {"inputs": {"run_id": str(run_id)}}
    result = run_action(tmp_path, inputs(cloud, job_id, dry_run="true"), event=event)
    assert result.exit_code == 0, result.log
    assert result.outputs["previous-run-id"] == str(run_id)


def test_loop_guard_refuses_past_max_attempts(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, run_id = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=3, keep_faults=True)

    first = run_action(tmp_path, inputs(cloud, job_id, max_attempts="1"))
    second = run_action(tmp_path, inputs(cloud, job_id, max_attempts="1"))

    assert (first.exit_code, first.outputs["status"]) == (1, "error"), first.log
    body = next(r.json for r in cloud.requests if r.method == "POST" and f"/jobs/{job_id}/" in r.path)
    assert f"[dbt-cloud-restart run={run_id} attempt=1 id=" in body["cause"]
    assert second.exit_code == 0
    assert (second.outputs["status"], second.outputs["restarted"]) == ("skipped", "false")
    assert second.outputs["previous-run-id"] == first.outputs["run-id"]
    [warning] = warnings(second)
    assert f"run {run_id} has already been restarted 1 time(s) (max-attempts 1)" in warning


def test_several_jobs_report_under_one_status_context_each(
    cloud: LocalDbtCloud, github: FakeGitHub, tmp_path: Path
) -> None:
    first, _ = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=20)
    second, _ = cloud.failing_run(["dbt seed"], ["raw_customers"], environment_id=21)
    step = inputs(cloud, f"{first},{second}", report="status")
    result = run_action(tmp_path, step, env={"GITHUB_API_URL": github.base_url})
    assert result.exit_code == 0, result.log
    by_context: dict[str, list[str]] = {}
    for status in github.statuses:
        by_context.setdefault(status["context"], []).append(status["state"])
    assert by_context == {
        f"dbt-cloud-restart/{first}": ["pending", "success"],
        f"dbt-cloud-restart/{second}": ["pending", "success"],
    }


def test_repository_dispatch_restarts_the_run_its_payload_names_and_only_once(
    cloud: LocalDbtCloud, tmp_path: Path
) -> None:
    job_id, run_id = cloud.failing_run(["dbt build"], ["stg_orders"], environment_id=30)
    failed = {uid for uid, status in cloud.executed_nodes(run_id)[4].items() if status in ("error", "skipped")}
    payload = {
        "account_id": str(cloud.account_id),
        "job_id": str(job_id),
        "run_id": str(run_id),
        "run_status_code": "20",
        "event_id": "wev_2mXkQ9",
        "event_type": "job.run.completed",
    }
    event = {"action": "dbt-cloud-run-failed", "client_payload": payload}
    with_ = {k: v for k, v in inputs(cloud, job_id).items() if k not in ("job-id", "account-id")}

    first = run_action(tmp_path, with_, event=event, event_name="repository_dispatch")

    assert first.exit_code == 0, first.log
    assert (first.outputs["status"], first.outputs["previous-run-id"]) == ("success", str(run_id))
    assert set(first.json_output("rerun-nodes")) == failed and "model.shop.stg_orders" in failed
    assert first.outputs["verified"] == "true"
    new_run = int(first.outputs["run-id"])
    assert set(cloud.executed_nodes(new_run)[4]) == failed  # node for node
    cause = cloud.run(new_run)["trigger"]["cause"]
    assert "after dbt Cloud event wev_2mXkQ9" in cause and f"[restarts={run_id}]" in cause
    assert "Triggered by dbt Cloud event wev_2mXkQ9 (job.run.completed)" in first.summary
    triggers = len([r for r in cloud.requests if r.method == "POST"])

    again = run_action(tmp_path, with_, event=event, event_name="repository_dispatch")

    assert again.exit_code == 0, again.log
    assert (again.outputs["status"], again.outputs["restarted"]) == ("skipped", "false")
    assert again.outputs["run-id"] == str(new_run)
    notices = [line for line in again.log.splitlines() if line.startswith("::notice")]
    assert any(f"run {run_id} was already restarted by run {new_run} (success)" in line for line in notices)
    assert len([r for r in cloud.requests if r.method == "POST"]) == triggers
