"""Verified restarts end to end: a model deleted between the failure and the restart is caught.

One failed run for the module (`dbt seed`, then `dbt run` failing on stg_payments); the restarts
read it by its id. The finance folder (revenue_by_day, which stg_payments' failure skipped) is then
hidden from the project, as if deleted in git: dbt's run selects what is left and succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator import LocalDbtCloud
from tests.fake_github import FakeGitHub
from tests.runner import ActionResult, inputs, run_action

DELETED = "models/marts/finance"
MISSING = "model.shop.revenue_by_day"


def failing(cloud: LocalDbtCloud) -> tuple[int, int]:
    return cloud.failing_run(["dbt seed", "dbt run --select staging+"], ["stg_payments"], environment_id=1)


@pytest.fixture(scope="module")
def failed(cloud: LocalDbtCloud) -> Iterator[tuple[int, int]]:
    """One failure, restarted once for real (a second restart of it would be a duplicate: skipped)."""
    yield failing(cloud)
    cloud.hide_files([])


@pytest.fixture
def failed_again(cloud: LocalDbtCloud) -> Iterator[tuple[int, int]]:
    """A failure of its own, for a test that restarts for real after another test did."""
    cloud.hide_files([])  # the failed run has every model; the test may then delete one
    yield failing(cloud)
    cloud.hide_files([])


def restart(
    cloud: LocalDbtCloud, tmp_path: Path, failed: tuple[int, int], env: dict[str, str] | None = None, **extra: str
) -> ActionResult:
    job_id, run_id = failed
    return run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), max_attempts="0", **extra), env=env)


def expected_avoided(cloud: LocalDbtCloud, run_id: int) -> int:
    """The seeds of the dropped step and the models the failed step had built."""
    executed = cloud.executed_nodes(run_id)
    seeds = [uid for uid in executed[4] if not uid.startswith("operation.")]
    built = [uid for uid, status in executed[5].items() if status == "success" and not uid.startswith("operation.")]
    return len(seeds) + len(built)


def test_a_dry_run_counts_the_avoided_work_and_verifies_nothing(
    cloud: LocalDbtCloud, tmp_path: Path, failed: tuple[int, int]
) -> None:
    result = restart(cloud, tmp_path, failed, dry_run="true")
    assert result.exit_code == 0, result.log
    assert result.outputs["status"] == "planned" and result.outputs["verified"] == ""
    assert result.outputs["missing-nodes"] == "[]"
    assert int(result.outputs["avoided-nodes"]) == expected_avoided(cloud, failed[1]) > 3
    assert float(result.outputs["avoided-seconds"]) >= 0
    assert "that already succeeded: about" in result.summary


def test_a_model_deleted_since_the_failure_fails_the_restart_by_name(
    cloud: LocalDbtCloud, tmp_path: Path, failed: tuple[int, int]
) -> None:
    cloud.hide_files([DELETED])
    with FakeGitHub() as github:
        result = restart(cloud, tmp_path, failed, report="status", env={"GITHUB_API_URL": github.base_url})

    assert result.exit_code == 1, result.log
    assert [s["state"] for s in github.statuses] == ["pending", "failure"], "a restart not verified is no success"
    assert result.outputs["status"] == "success", "the dbt Cloud run itself succeeded"
    assert result.outputs["verified"] == "false"
    assert result.json_output("missing-nodes") == [MISSING]
    [error] = result.errors()
    assert error.startswith("::error title=Restart not verified::")
    assert MISSING in error and "renamed or deleted" in error and "verify: warn" in error
    executed = cloud.executed_nodes(int(result.outputs["run-id"]))[4]
    assert MISSING not in executed and "model.shop.stg_payments" in executed
    assert "## ⚠️ dbt Cloud restart" in result.summary and f"missing: {MISSING}" in result.summary


def test_verify_warn_lets_it_pass_with_a_warning(
    cloud: LocalDbtCloud, tmp_path: Path, failed_again: tuple[int, int]
) -> None:
    cloud.hide_files([DELETED])
    result = restart(cloud, tmp_path, failed_again, verify="warn")

    assert result.exit_code == 0, result.log
    assert result.errors() == []
    assert result.outputs["verified"] == "false" and result.json_output("missing-nodes") == [MISSING]
    warnings = [line for line in result.log.splitlines() if line.startswith("::warning title=Not verified::")]
    assert len(warnings) == 1 and MISSING in warnings[0]


def test_a_restart_not_waited_for_is_not_verified(
    cloud: LocalDbtCloud, tmp_path: Path, failed_again: tuple[int, int]
) -> None:
    failed = failed_again
    cloud.hide_files([])
    before = len(cloud.requests)
    result = restart(cloud, tmp_path, failed, wait="false")

    assert result.exit_code == 0, result.log
    assert result.outputs["restarted"] == "true" and result.outputs["verified"] == ""
    assert int(result.outputs["avoided-nodes"]) == expected_avoided(cloud, failed[1])
    calls = [(r.method, r.path, r.query.get("step")) for r in cloud.requests[before:]]
    trigger = next(i for i, (method, path, _) in enumerate(calls) if method == "POST" and path.endswith("/run/"))
    seeds = [i for i, call in enumerate(calls) if call[1].endswith(f"/runs/{failed[1]}/artifacts/run_results.json")]
    assert [calls[i][2] for i in seeds] == [["5"], ["4"]], "the failed step for the plan, the dropped one for the count"
    assert seeds[1] > trigger, "the dropped step's results are read after the trigger, never delaying it"
    cloud.wait(int(result.outputs["run-id"]))
