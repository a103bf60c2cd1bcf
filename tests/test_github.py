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
