"""GitHub integration: event context, loop guard, commit status and incident issue (fake GitHub API)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator import LocalDbtCloud
from tests.fake_github import FakeGitHub
from tests.runner import ActionResult, inputs, run_action

FAILED_WORKFLOW = {
    "workflow_run": {
        "name": "Nightly dbt Cloud",
        "run_number": 41,
        "conclusion": "failure",
        "html_url": "https://github.com/acme/analytics/actions/runs/999",
    }
}


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


@pytest.mark.parametrize("conclusion", ["success", "cancelled"])
def test_workflow_run_that_did_not_fail_is_skipped_without_api_calls(
    cloud: LocalDbtCloud, tmp_path: Path, conclusion: str
) -> None:
    before = len(cloud.requests)
    event = {"workflow_run": {**FAILED_WORKFLOW["workflow_run"], "conclusion": conclusion}}
    result = run_action(tmp_path, inputs(cloud, 1), event=event, event_name="workflow_run")
    assert result.exit_code == 0
    assert result.outputs["status"] == "skipped"
    assert f"concluded `{conclusion}`" in result.log
    assert len(cloud.requests) == before


def test_workflow_run_after_a_failure_restarts_and_links_the_failed_workflow(
    cloud: LocalDbtCloud, tmp_path: Path
) -> None:
    job_id, _run_id = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=1)
    result = run_action(tmp_path, inputs(cloud, job_id), event=FAILED_WORKFLOW, event_name="workflow_run")
    assert result.exit_code == 0, result.log
    assert result.outputs["status"] == "success"
    body = next(r.json for r in reversed(cloud.requests) if r.method == "POST")
    assert "after failed workflow run https://github.com/acme/analytics/actions/runs/999" in body["cause"]
    assert "Nightly dbt Cloud #41" in result.summary and "actions/runs/999" in result.summary


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


def test_commit_status_follows_the_run(cloud: LocalDbtCloud, github: FakeGitHub, tmp_path: Path) -> None:
    job_id, _ = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=4)
    result = run_action(tmp_path, inputs(cloud, job_id, report="status"), env={"GITHUB_API_URL": github.base_url})
    assert result.exit_code == 0, result.log
    assert [s["state"] for s in github.statuses] == ["pending", "success"]
    assert {s["context"] for s in github.statuses} == {"dbt-cloud-restart"}
    assert {s["target_url"] for s in github.statuses} == {result.outputs["run-url"]}
    assert github.issues == {}


def test_incident_issue_opened_reused_then_closed(cloud: LocalDbtCloud, github: FakeGitHub, tmp_path: Path) -> None:
    job_id, _ = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=5, keep_faults=True)
    env = {"GITHUB_API_URL": github.base_url}

    failed = run_action(tmp_path, inputs(cloud, job_id, report="both"), env=env)
    again = run_action(tmp_path, inputs(cloud, job_id, report="issue"), env=env)
    cloud.set_faults([])
    fixed = run_action(tmp_path, inputs(cloud, job_id, report="issue"), env=env)

    assert failed.outputs["status"] == again.outputs["status"] == "error"
    assert fixed.outputs["status"] == "success", fixed.log
    assert list(github.issues) == [1], "one issue per job, reused"
    issue = github.issues[1]
    assert issue["labels"] == ["dbt-cloud-restart"] and issue["state"] == "closed"
    assert len(github.comments[1]) == 2 and github.comments[1][1].startswith("Resolved:")
    url = "https://github.com/acme/analytics/issues/1"
    assert failed.outputs["issue-url"] == again.outputs["issue-url"] == fixed.outputs["issue-url"] == url
    assert [s["state"] for s in github.statuses] == ["pending", "failure"]


def test_missing_permission_is_a_warning_never_a_failed_restart(
    cloud: LocalDbtCloud, github: FakeGitHub, tmp_path: Path
) -> None:
    job_id, _ = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=6, keep_faults=True)
    github.refuse |= {("POST", r"/issues$"), ("POST", r"/statuses/")}

    result = run_action(
        tmp_path,
        inputs(cloud, job_id, report="both", fail_on_run_failure="false"),
        env={"GITHUB_API_URL": github.base_url},
    )

    assert result.exit_code == 0, result.log
    assert result.outputs["issue-url"] == ""
    texts = warnings(result)
    assert any("could not update the incident issue: GitHub answered 403" in w for w in texts), texts
    assert any("could not set the commit status" in w for w in texts), texts
    assert "ghs_fake" not in result.log


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
