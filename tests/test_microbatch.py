"""Microbatch models end to end: a restart rebuilds only the batches that failed, and leaves no gap.

The demo project's microbatch models (tests/dbt_project/models/microbatch, enabled by
`--vars '{microbatch: true}'`) read six events a day; `mb_events@2026-11-03` in the faults fails only
that day's batch of mb_events.

The backfills run on a dbt platform release track (`TRACK`, tests/emulator/tracks.py: dbt 1.11 underneath,
artifacts stamped `2026.4.7+4533730`, the run on `latest`), and check that the failed run carries the stamp;
the nightly runs on plain dbt 1.11.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from restart.artifacts import parse_run_results
from restart.microbatch import ModelBatches, batches_rebuilt, parse_time
from tests.emulator import SUCCESS, LocalDbtCloud
from tests.emulator.tracks import LATEST_BEFORE_1_12, assert_on_track
from tests.exactness.harness import started_batches
from tests.runner import ActionResult, inputs, run_action

VARS = "--vars '{microbatch: true}'"
BUILD = f"dbt build {VARS} --select tag:microbatch"
BACKFILL = f"{BUILD} --event-time-start 2026-11-01 --event-time-end 2026-11-05"
EVENTS_PER_DAY = 6
TRACK = LATEST_BEFORE_1_12


def by_file(name: str) -> str:
    return f"file:{name},resource_type:model,package:shop"


def restart(cloud: LocalDbtCloud, tmp_path: Path, job_id: int) -> tuple[ActionResult, int]:
    """Run the action on the job's failed run; (its result, the new run id)."""
    result = run_action(tmp_path, inputs(cloud, str(job_id)))
    assert result.exit_code == 0, result.log
    assert result.outputs["status"] == "success", result.log
    return result, int(result.outputs["run-id"])


def logs(cloud: LocalDbtCloud, run_id: int) -> str:
    """The dbt output of every command step of a run."""
    steps = cloud.engine.runs[run_id].steps
    return "".join(s.stdout_path.read_text() for s in steps if s.command and s.stdout_path and s.stdout_path.is_file())


def days(cloud: LocalDbtCloud, table: str, environment_id: int) -> dict[str, int]:
    rows = cloud.query(f"select cast(event_at as date), count(*) from {table} group by 1 order by 1", environment_id)
    return {str(day): count for day, count in rows}


@pytest.fixture(scope="module")
def backfill(cloud: LocalDbtCloud, tmp_path_factory: pytest.TempPathFactory) -> tuple[ActionResult, int]:
    cloud.set_environment(1, engine=TRACK)
    job_id, run_id = cloud.failing_run([BACKFILL], ["mb_events@2026-11-03"], environment_id=1)
    assert_on_track(cloud, run_id, TRACK)
    return restart(cloud, tmp_path_factory.mktemp("backfill"), job_id)


def test_a_backfill_failing_on_one_batch_rebuilds_that_batch_only(
    cloud: LocalDbtCloud, backfill: tuple[ActionResult, int]
) -> None:
    result, new_run = backfill
    assert json.loads(result.outputs["steps"]) == [
        f"dbt build {VARS} --select {by_file('mb_events')} --indirect-selection empty"
        " --event-time-start 2026-11-03 --event-time-end 2026-11-04",
        f"dbt build {VARS} --event-time-start 2026-11-01 --event-time-end 2026-11-05"
        f" --select {by_file('mb_daily')} --indirect-selection empty",
    ]
    described = "mb_events: 1 of 4 daily batches failed (2026-11-03); rebuilding that batch only"
    assert described in result.summary and described in result.log
    assert started_batches(logs(cloud, new_run)) == {"main.mb_events": ["2026-11-03"]}
    assert days(cloud, "mb_events", 1) == {f"2026-11-0{d}": EVENTS_PER_DAY for d in range(1, 5)}


def test_the_restart_rebuilt_every_failed_batch(cloud: LocalDbtCloud, backfill: tuple[ActionResult, int]) -> None:
    result, new_run = backfill
    assert result.outputs["verified"] == "true"  # the action's own check, batch for batch
    [events] = [r for r in parse_run_results(cloud.artifact(new_run, 4)).results if r.unique_id.endswith("mb_events")]
    failed = (parse_time("2026-11-03T00:00:00+00:00"), parse_time("2026-11-04T00:00:00+00:00"))
    planned = [ModelBatches("model.shop.mb_events", (), (failed,))]
    assert batches_rebuilt(planned, {events.unique_id: events.batch_results}) == {}
    assert batches_rebuilt(planned, {}) == {"model.shop.mb_events": (failed,)}


def test_two_models_failing_different_batches_get_a_step_each(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    faults = ["mb_events@2026-11-03", "mb_sessions@2026-11-02"]
    cloud.set_environment(2, engine=TRACK)
    job_id, run_id = cloud.failing_run([BACKFILL], faults, environment_id=2)
    assert_on_track(cloud, run_id, TRACK)

    result, new_run = restart(cloud, tmp_path, job_id)

    steps = json.loads(result.outputs["steps"])
    assert [s.split(" --event-time-start ")[1:] for s in steps[:2]] == [
        ["2026-11-02 --event-time-end 2026-11-03"],
        ["2026-11-03 --event-time-end 2026-11-04"],
    ]
    assert "one step per window of failed batches (2 steps)" in result.summary
    assert started_batches(logs(cloud, new_run)) == {
        "main.mb_sessions": ["2026-11-02"],
        "main.mb_events": ["2026-11-03"],
    }
    full = {f"2026-11-0{d}": EVENTS_PER_DAY for d in range(1, 5)}
    assert days(cloud, "mb_events", 2) == full and days(cloud, "mb_sessions", 2) == full


def test_a_nightly_restarted_days_later_still_rebuilds_the_failed_batch(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    """Without event-time flags a run builds the batches up to its start (and `lookback` before it): the
    restart two days later would build 2026-11-05 and 2026-11-06 and leave 2026-11-02 empty."""
    cloud.set_clock(datetime(2026, 11, 4, 2, 0, tzinfo=UTC))
    try:
        job_id, _ = cloud.failing_run([BUILD], ["mb_events@2026-11-02"], environment_id=3)
        assert "2026-11-02" not in days(cloud, "mb_events", 3)
        cloud.set_clock(datetime(2026, 11, 6, 2, 0, tzinfo=UTC))

        result, new_run = restart(cloud, tmp_path, job_id)
    finally:
        cloud.set_clock(None)

    assert json.loads(result.outputs["steps"])[0].endswith("--event-time-start 2026-11-02 --event-time-end 2026-11-03")
    assert started_batches(logs(cloud, new_run)) == {"main.mb_events": ["2026-11-02"]}
    assert days(cloud, "mb_events", 3) == {f"2026-11-0{d}": EVENTS_PER_DAY for d in range(1, 5)}


def test_the_emulator_clock_sets_the_time_dbt_runs_at(cloud: LocalDbtCloud) -> None:
    """The emulator switch itself: a run without event-time flags builds its batches up to the clock."""
    job_id = cloud.add_job([f"dbt run {VARS} --select mb_source mb_events"], environment_id=4)
    cloud.set_clock(datetime(2026, 11, 2, 23, 30, tzinfo=UTC))
    try:
        run_id = cloud.trigger(job_id)
        assert cloud.wait(run_id)["status"] == SUCCESS
    finally:
        cloud.set_clock(None)
    results = cloud.artifact(run_id, 4)
    assert results is not None
    assert results["metadata"]["invocation_started_at"].startswith("2026-11-02T23:30:00")
    assert started_batches(logs(cloud, run_id)) == {"main.mb_events": ["2026-11-01", "2026-11-02"]}
