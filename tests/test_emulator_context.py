"""The local dbt Cloud honours a run's own context end to end: its branch and commit (each run clones
them), a CI job's pull request schema, and every override of the trigger (field notes: "A run's own
context, and the native rerun")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.emulator import CANCELLED, ERROR, SUCCESS, LocalDbtCloud, step_name
from tests.engines import DBT_1_12, require


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalDbtCloud]:
    with LocalDbtCloud() as emulator:
        yield emulator


def post(cloud: LocalDbtCloud, path: str, body: object) -> requests.Response:
    url = f"{cloud.base_url}/api/v2/accounts/{cloud.account_id}{path}"
    return requests.post(url, json=body, headers={"Authorization": f"Token {cloud.token}"}, timeout=30)


def test_each_run_clones_its_branch_or_its_commit(cloud: LocalDbtCloud) -> None:
    first = cloud.commit("feature", {"models/feature_only.sql": "select 1 as id"})
    second = cloud.commit("feature", {"models/feature_only.sql": "select 2 as id"})
    job = cloud.add_job(["dbt run --select feature_only"], name="branches", environment_id=1)
    value = "select id from main.feature_only"

    newest = cloud.wait(cloud.trigger(job, category="api", git_branch="feature"))
    assert (newest["status"], newest["git_branch"], newest["git_sha"]) == (SUCCESS, "feature", second)
    assert cloud.query(value) == [(2,)]
    pinned = cloud.wait(cloud.trigger(job, category="api", git_branch="feature", git_sha=first))
    assert (pinned["status"], pinned["git_sha"]) == (SUCCESS, first)
    assert cloud.query(value) == [(1,)], "a pinned git_sha builds that commit, not the branch's newest"
    assert f"Cloning repository at {first}" in pinned["run_steps"][0]["logs"]

    main = cloud.wait(cloud.trigger(job))  # main never had the model: nothing is selected
    assert (main["status"], main["git_branch"]) == (SUCCESS, "main")
    assert (cloud.artifact(main["id"], 4) or {}).get("results") == []

    contexts: list[dict[str, Any]] = [{"git_branch": "no-such-branch"}, {"git_sha": "0" * 40}]
    for context in contexts:
        missing = cloud.wait(cloud.trigger(job, category="api", **context))
        clone = missing["run_steps"][0]
        assert (missing["status"], clone["name"], clone["status"]) == (ERROR, "Clone git repository", ERROR)
        assert "Failed to" in clone["logs"] and len(missing["run_steps"]) == 1


def test_a_ci_jobs_pull_request_run_builds_in_the_pull_requests_schema(cloud: LocalDbtCloud) -> None:
    job = cloud.add_job(["dbt seed --select raw_orders"], name="ci", environment_id=2, job_type="ci")
    run = cloud.wait(cloud.trigger(job, "PR #42", category="ci", github_pull_request_id=42))
    assert run["status"] == SUCCESS and run["job"]["job_type"] == "ci"
    assert run["trigger"]["cause_category"] == "ci" and run["trigger"]["github_pull_request_id"] == 42
    tables = cloud.query("select table_schema from information_schema.tables where table_name = 'raw_orders'", 2)
    assert tables == [(f"dbt_cloud_pr_{job}_42",)]


def test_the_trigger_overrides_docs_timeout_and_dbt_version(cloud: LocalDbtCloud) -> None:
    job = cloud.add_job(["dbt seed --select raw_orders"], name="overrides", environment_id=3)
    refused = post(cloud, f"/jobs/{job}/run/", {"cause": "x", "dbt_version_override": "0.1.0"})
    assert refused.status_code == 400 and "dbt_version_override" in refused.json()["data"]
    engine = require(DBT_1_12)
    run = cloud.wait(
        cloud.trigger(job, category="api", dbt_version_override="1.12.0-latest", generate_docs_override=True)
    )
    assert run["status"] == SUCCESS and run["dbt_version"] == engine.version
    assert (cloud.artifact(run["id"], 4) or {})["metadata"]["dbt_version"] == engine.version
    assert run["run_steps"][-1]["name"] == step_name("dbt docs generate")

    cloud.set_step_delay(30)
    try:
        timed = cloud.wait(cloud.trigger(job, category="api", timeout_seconds_override=2), timeout=60)
    finally:
        cloud.set_step_delay(0)
    assert timed["status"] == CANCELLED
    assert "exceeded the configured timeout of 2 seconds" in timed["status_message"]
