"""What the action tells GitHub, decided against the in-memory dbt Cloud (tests/fake_cloud.py) and the
local GitHub API (tests/fake_github.py): the event context, the commit status, the incident issue,
a token without permission. End to end, through the action and real dbt: tests/test_github.py."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from restart import actions, settings, summary
from restart.orchestrate import execute
from restart.outcome import Outcome
from restart.records import ERROR
from tests.fake_cloud import FakeCloud
from tests.fake_github import FakeGitHub
from tests.test_orchestrate import BASE, FakeStop, failed_build, posts

TOKEN = "ghs_fake0123456789"
FAILED_WORKFLOW = {
    "name": "Nightly dbt Cloud",
    "run_number": 41,
    "conclusion": "failure",
    "html_url": "https://github.com/acme/analytics/actions/runs/999",
}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def run(
    cloud: FakeCloud,
    tmp_path: Path,
    *,
    github: FakeGitHub | None = None,
    event: Mapping[str, object] | None = None,
    event_name: str = "workflow_dispatch",
    **inputs: str,
) -> tuple[Outcome, str]:
    """`execute` as the action runs it in a workflow: its outcome and its log."""
    (tmp_path / "event.json").write_text(json.dumps(event or {}), encoding="utf-8")
    env = {
        "GITHUB_REPOSITORY": "acme/analytics",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": github.base_url if github else "https://api.github.com",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_SHA": "0" * 40,
    }
    values = {**BASE, "github-token": TOKEN, **{k.replace("_", "-"): v for k, v in inputs.items()}}
    stream = io.StringIO()
    outcome = execute(settings.parse(values), actions.Log(actions=True, stream=stream), env, FakeStop(), client=cloud)
    return outcome, stream.getvalue()


@pytest.mark.parametrize("conclusion", ["success", "cancelled"])
def test_workflow_run_that_did_not_fail_is_skipped_without_api_calls(tmp_path: Path, conclusion: str) -> None:
    cloud = failed_build()
    event = {"workflow_run": {**FAILED_WORKFLOW, "conclusion": conclusion}}
    outcome, log = run(cloud, tmp_path, event=event, event_name="workflow_run")
    assert (outcome.status, outcome.exit_code, cloud.calls) == ("skipped", 0, 0)
    assert f"concluded `{conclusion}`" in log


def test_workflow_run_after_a_failure_restarts_and_links_the_failed_workflow(tmp_path: Path) -> None:
    cloud = failed_build()
    outcome, _ = run(cloud, tmp_path, event={"workflow_run": FAILED_WORKFLOW}, event_name="workflow_run")
    assert outcome.status == "success" and posts(cloud) == ["trigger"]
    assert f"after failed workflow run {FAILED_WORKFLOW['html_url']}" in cloud.triggered[0]["cause"]
    markdown = summary.summary(outcome)
    assert "Nightly dbt Cloud #41" in markdown and "actions/runs/999" in markdown


def test_commit_status_follows_the_run(github: FakeGitHub, tmp_path: Path) -> None:
    outcome, _ = run(failed_build(), tmp_path, github=github, report="status")
    assert outcome.status == "success" and outcome.new_run is not None
    assert [s["state"] for s in github.statuses] == ["pending", "success"]
    assert {s["context"] for s in github.statuses} == {"dbt-cloud-restart"}
    assert {s["target_url"] for s in github.statuses} == {outcome.new_run.href}
    assert github.issues == {}


def test_incident_issue_opened_reused_then_closed(github: FakeGitHub, tmp_path: Path) -> None:
    still_failing = failed_build()
    still_failing.new_status = ERROR
    failed, _ = run(still_failing, tmp_path, github=github, report="both")
    again_failing = failed_build()
    again_failing.new_status = ERROR
    again, _ = run(again_failing, tmp_path, github=github, report="issue")
    fixed, _ = run(failed_build(), tmp_path, github=github, report="issue")

    assert failed.status == again.status == "error"
    assert fixed.status == "success"
    assert list(github.issues) == [1], "one issue per job, reused"
    issue = github.issues[1]
    assert issue["labels"] == ["dbt-cloud-restart"] and issue["state"] == "closed"
    assert len(github.comments[1]) == 2 and github.comments[1][1].startswith("Resolved:")
    url = "https://github.com/acme/analytics/issues/1"
    assert failed.issue_url == again.issue_url == fixed.issue_url == url
    assert [s["state"] for s in github.statuses] == ["pending", "failure"]


def test_missing_permission_is_a_warning_never_a_failed_restart(github: FakeGitHub, tmp_path: Path) -> None:
    github.refuse |= {("POST", r"/issues$"), ("POST", r"/statuses/")}
    cloud = failed_build()
    cloud.new_status = ERROR
    outcome, log = run(cloud, tmp_path, github=github, report="both", fail_on_run_failure="false")
    assert outcome.exit_code == 0 and outcome.issue_url == ""
    texts = [line for line in log.splitlines() if line.startswith("::warning")]
    assert any("could not update the incident issue: GitHub answered 403" in w for w in texts), texts
    assert any("could not set the commit status" in w for w in texts), texts
    assert TOKEN not in log
