"""Restarts on dbt Core 1.12, end to end: the local dbt Cloud runs an environment on `.venv-dbt-1.12`.

One environment, switched to dbt 1.12, whose project has an `on-run-start` hook that fails when
`on-run-start` is among the faults, `on_error: continue` on the staging models, and two exposures
(`dbt build` records one `no-op`). Every scenario makes a real dbt 1.12 run fail, fixes it, runs the
action and checks what the new run executed. The 1.12 scenarios also run with the environment on a dbt
platform release-track build from after 1.12's rules reached Latest (`latest-2026.10.6`: dbt 1.12
underneath, its artifacts stamped `2026.10.6+c0ffee1`, the runs on `latest`; tests/emulator/tracks.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import PROJECT_DIR, SUCCESS, LocalDbtCloud
from tests.emulator.model import Step
from tests.emulator.runtimes import RUNTIMES, core
from tests.emulator.tracks import LATEST_WITH_1_12, TRACKS
from tests.engines import DBT_1_12, require
from tests.runner import inputs, run_action

ENVIRONMENT = 12
HOOK = "operation.shop.shop-on-run-start-0"
ON_RUN_START = """
on-run-start:
  - "{% if 'on-run-start' in env_var('DBT_EMULATOR_FAULTS', '').split(',') %}select error('hook fault'){% endif %}"
"""
STAGING = "    staging:\n      +materialized: view\n"
EXPOSURES = """\
exposures:
  - name: weekly_report
    type: dashboard
    owner: {name: Shop, email: shop@example.com}
    depends_on: [ref('orders')]
  - name: greeting_page
    type: application
    owner: {name: Shop, email: shop@example.com}
    depends_on: [ref('greeting')]
"""
# Models that ran on stg_orders' stale data in `dbt build --select stg_orders+ greeting+` (on_error: continue).
STALE_MODELS = {
    "model.shop.orders",
    "model.shop.customers",
    "model.shop.revenue_by_day",
    "model.shop.calendar",
    "model.shop_utils.calendar",
    "model.shop.dim_customers.v1",
    "model.shop.dim_customers.v2",
}


def project_files() -> dict[str, str]:
    text = (PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8")
    assert STAGING in text
    text = text.replace(STAGING, STAGING + "      +on_error: continue\n") + ON_RUN_START
    return {"dbt_project.yml": text, "models/marts/_exposures.yml": EXPOSURES}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDbtCloud]:
    require(DBT_1_12)
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud")) as emulator:
        emulator.set_environment(ENVIRONMENT, engine=DBT_1_12, project_files=project_files())
        yield emulator


@pytest.fixture(scope="module")
def built(cloud: LocalDbtCloud) -> dict[str, Any]:
    """The environment's first run: a full `dbt build`, so that every relation exists."""
    run = cloud.wait(cloud.trigger(cloud.add_job(["dbt build"], environment_id=ENVIRONMENT)))
    assert run["status"] == SUCCESS, run["run_steps"][-1]["logs"]
    return run


@pytest.fixture(params=[DBT_1_12, LATEST_WITH_1_12])
def engine(request: pytest.FixtureRequest, cloud: LocalDbtCloud) -> Iterator[str]:
    """The engine the environment runs for one test: dbt 1.12 as it is, or a release-track build of it."""
    engine: str = request.param
    cloud.set_environment(ENVIRONMENT, engine=engine)
    yield engine
    cloud.set_environment(ENVIRONMENT, engine=DBT_1_12)


def assert_on(cloud: LocalDbtCloud, run_id: int, engine: str) -> None:
    """The run was made by `engine`: its `dbt_version`, and what its artifacts are stamped with."""
    build = TRACKS.get(engine)
    if build is not None:
        results = cloud.artifact(run_id, 4)
        assert cloud.run(run_id)["dbt_version"] == build.track
        assert results is not None and results["metadata"]["dbt_version"] == build.stamp


def test_the_engine_switch_runs_dbt_1_12_and_the_run_says_so(cloud: LocalDbtCloud, built: dict[str, Any]) -> None:
    run = built
    assert run["dbt_version"] == require(DBT_1_12).version
    assert run["dbt_version"].startswith("1.12.")
    results = cloud.artifact(run["id"], 4)
    assert results is not None and results["metadata"]["dbt_version"] == run["dbt_version"]
    assert HOOK in {r["unique_id"] for r in results["results"]}  # the environment's own dbt_project.yml
    with pytest.raises(ValueError, match=r"unknown dbt engine 'dbt-0\.1'"):
        cloud.add_job(["dbt run"], engine="dbt-0.1")


def test_an_engine_may_rewrite_what_dbt_wrote_and_environments_lay_their_own_files(
    cloud: LocalDbtCloud, tmp_path: Path
) -> None:
    """The hook an emulated engine (Fusion) plugs into: `Runtime.rewrite` gets each dbt step's target."""

    def rewrite(target: Path) -> None:
        path = target / "run_results.json"
        if path.is_file():
            written = json.loads(path.read_text(encoding="utf-8"))
            path.write_text(json.dumps({**written, "args": {"which": written["args"]["which"]}}), encoding="utf-8")

    RUNTIMES["rewritten"] = lambda: replace(core(DBT_1_12), name="rewritten", version="2.0.0-test", rewrite=rewrite)
    try:
        cloud.set_environment(13, engine="rewritten", project_files={"models/extra.sql": "select 1 as x\n"})
        run = cloud.wait(cloud.trigger(cloud.add_job(["dbt run --select extra"], environment_id=13)))
    finally:
        del RUNTIMES["rewritten"]
    assert (run["status"], run["dbt_version"]) == (SUCCESS, "2.0.0-test")
    results = cloud.artifact(run["id"], 4)
    assert results is not None and results["args"] == {"which": "run"}
    assert [r["unique_id"] for r in results["results"]] == ["model.shop.extra"]
    # files an environment no longer lays over the project are gone from its workspace at the next clone
    cloud.set_environment(13, project_files={})
    project = cloud.root / "environments" / "13" / "workspace" / "project"
    assert (project / "models" / "extra.sql").is_file()
    cloud.engine.executors[13].clone(Step(0, 0, 1, 1, "Clone git repository", tmp_path), project)
    assert not (project / "models" / "extra.sql").exists() and (project / "dbt_project.yml").is_file()


@pytest.mark.usefixtures("built")
def test_a_failed_on_run_start_hook_is_rerun_as_written(cloud: LocalDbtCloud, tmp_path: Path, engine: str) -> None:
    job_id, run_id = cloud.failing_run(["dbt build --select staging"], ["on-run-start"], environment_id=ENVIRONMENT)
    assert_on(cloud, run_id, engine)
    failed = cloud.executed_nodes(run_id)[4]
    assert failed.pop(HOOK) == "error" and set(failed.values()) == {"skipped"}
    assert "unit_test.shop.stg_orders.test_basic" not in failed  # what narrowing to the skipped nodes would lose

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert (result.exit_code, result.outputs["status"]) == (0, "success"), result.log
    assert result.json_output("steps") == ["dbt build --select staging"]
    assert "on-run-start hook failed and dbt skipped every node (the default from dbt 1.12)" in result.summary
    executed = cloud.executed_nodes(int(result.outputs["run-id"]))[4]
    assert set(failed) | {"unit_test.shop.stg_orders.test_basic"} <= set(executed)


@pytest.mark.usefixtures("built")
@pytest.mark.parametrize(
    ("rebuild", "engine"),
    [("failed", DBT_1_12), ("with-test-parents", LATEST_WITH_1_12)],  # each way once: make test stays short
    indirect=["engine"],
)
def test_children_that_ran_on_stale_data(cloud: LocalDbtCloud, tmp_path: Path, rebuild: str, engine: str) -> None:
    """on_error: continue: the summary names them; `rebuild: with-test-parents` rebuilds them.

    The step also builds an exposure, which dbt 1.10+ records `no-op`: done, never rerun.
    """
    job_id, run_id = cloud.failing_run(
        ["dbt build --select stg_orders+ greeting+"], ["stg_orders"], environment_id=ENVIRONMENT
    )
    assert_on(cloud, run_id, engine)
    failed = cloud.executed_nodes(run_id)[4]
    assert (failed.pop(HOOK), failed.pop("model.shop.stg_orders")) == ("success", "error")
    assert {failed.pop(f"exposure.shop.{name}") for name in ("greeting_page", "weekly_report")} == {"no-op"}
    assert {failed[uid] for uid in STALE_MODELS} == {"success"}, "on_error: continue did not run the children"
    assert set(failed.values()) == {"success", "pass"}
    # all that ran after stg_orders, its tests too, but greeting and the unit tests (run on fixtures)
    stale = {uid for uid in failed if uid != "model.shop.greeting" and not uid.startswith("unit_test.")}

    result = run_action(tmp_path, inputs(cloud, job_id, rebuild=rebuild))

    assert (result.exit_code, result.outputs["status"]) == (0, "success"), result.log
    named = (
        "dbt platform Latest track (build 2026.10.6)" if engine in TRACKS else f"dbt {cloud.run(run_id)['dbt_version']}"
    )
    assert f"Engine of the failed run: {named}" in result.summary
    executed = cloud.executed_nodes(int(result.outputs["run-id"]))[4]
    executed.pop(HOOK)
    if rebuild == "failed":
        assert set(executed) == {"model.shop.stg_orders"}  # as dbt retry
        assert f"{len(stale)} node(s) ran on a failed model's stale data (on_error: continue)" in result.summary
    else:
        assert executed.pop("exposure.shop.weekly_report", "no-op") == "no-op"  # if compacted to `stg_orders+`
        assert set(executed) == {"model.shop.stg_orders"} | stale, result.json_output("steps")
        assert set(executed.values()) == {"success", "pass"}
