"""The dbt version that wrote a failed step's artifacts decides its selectors, end to end.

dbt-core 1.11 runs here; the artifacts a run served are relabelled (the emulator's artifact override) as
another version would have written them, and the action must choose selectors that version resolves:
dbt 1.5 and older have no `file:` matching a file's stem, a version outside the supported range is
rerun as written, and a narrowed command the manifest proves empty is never sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import LocalDbtCloud
from tests.runner import inputs, run_action

SEED_STEP = 4


@pytest.fixture(scope="module")
def failed(cloud: LocalDbtCloud) -> tuple[int, int]:
    """A run of `dbt seed`, `dbt run` whose seed step failed on raw_payments."""
    return cloud.failing_run(["dbt seed", "dbt run"], ["raw_payments"], environment_id=51)


def relabel(cloud: LocalDbtCloud, run_id: int, version: str, **changes: Any) -> dict[str, Any]:
    """Serve the seed step's run_results.json as written by dbt `version` (and `changes` to its results)."""
    document = cloud.artifact(run_id, SEED_STEP)
    assert document is not None
    document["metadata"]["dbt_version"] = version
    document["metadata"]["dbt_schema_version"] = "https://schemas.getdbt.com/dbt/run-results/v4.json"
    for result in document["results"]:
        result["unique_id"] = changes.get(result["unique_id"], result["unique_id"])
    cloud.override_artifact(run_id, SEED_STEP, "run_results.json", json.dumps(document).encode())
    return document


def test_dbt_1_5_artifacts_restart_without_file_selectors(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    # A failure of its own: the module's is planned by dry runs, which a real restart would turn into skips.
    job_id, run_id = cloud.failing_run(["dbt seed", "dbt run"], ["raw_payments"], environment_id=51)
    relabel(cloud, run_id, "1.5.11")

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id)))

    assert result.exit_code == 0 and result.outputs["status"] == "success", result.log
    seed, run = result.json_output("steps")
    assert seed.startswith("dbt seed --select ") and "file:" not in seed
    assert run == "dbt run"
    executed = cloud.executed_nodes(int(result.outputs["run-id"]))
    assert executed[SEED_STEP] == {"seed.shop.raw_payments": "success"}


@pytest.mark.parametrize("version", ["0.21.1", "3.0.0"])
def test_a_version_outside_the_range_reruns_the_step_as_written(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path, version: str
) -> None:
    job_id, run_id = failed
    relabel(cloud, run_id, version)

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), dry_run="true"))

    assert result.exit_code == 0 and result.outputs["status"] == "planned", result.log
    assert result.json_output("steps") == ["dbt seed", "dbt run"]
    assert f"dbt {version} is outside what this tool narrows" in result.log


def test_a_narrowed_command_that_would_select_nothing_is_not_sent(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path
) -> None:
    """run_results.json names a seed the manifest no longer has: its selector would match nothing."""
    job_id, run_id = failed
    relabel(cloud, run_id, "1.5.11", **{"seed.shop.raw_payments": "seed.shop.raw_payments_2023"})

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), dry_run="true"))

    assert result.exit_code == 0 and result.outputs["status"] == "planned", result.log
    assert result.json_output("steps") == ["dbt seed", "dbt run"]
    assert "would execute no node" in result.log
