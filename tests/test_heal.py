"""Deciding when to restart, end to end: a transient failure auto-healed after a delay, several jobs in
one step (one of them missing), and `rebuild: with-test-parents`. The transient/persistent decisions and
own patterns are proven against the in-memory dbt Cloud in tests/test_self_heal.py."""

from __future__ import annotations

import time
from pathlib import Path

from tests.emulator import LocalDbtCloud
from tests.runner import inputs, run_action

TIMEOUT_MESSAGE = "could not connect to server: Connection timed out"


def test_a_transient_failure_is_restarted_after_the_delay(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, _run_id = cloud.failing_run(["dbt seed", "dbt run"], [f"stg_orders={TIMEOUT_MESSAGE}"], environment_id=1)

    started = time.monotonic()
    result = run_action(tmp_path, inputs(cloud, str(job_id), restart_on="transient", delay="1.5"))

    assert result.exit_code == 0, result.log
    assert (result.outputs["status"], result.outputs["restarted"]) == ("success", "true")
    assert "waiting 1.5s before triggering" in result.log and time.monotonic() - started >= 1.5
    assert "Failures by class" in result.summary and "🔁 transient" in result.summary


def test_three_jobs_in_one_step_and_a_bad_one_that_does_not_stop_them(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    succeeded = cloud.add_job(["dbt seed --select raw_customers"], environment_id=4)
    assert cloud.wait(cloud.trigger(succeeded))["status"] == 10
    failed, failed_run = cloud.failing_run(["dbt seed"], ["raw_payments"], environment_id=5)
    cancelled = cloud.add_job(["dbt seed --select raw_orders"], environment_id=6)
    cloud.set_step_delay(30)
    cancelled_run = cloud.trigger(cancelled)
    while cloud.run(cancelled_run)["status"] != 3:
        time.sleep(0.1)
    cloud.api.cancel_run(None, str(cancelled_run))  # type: ignore[arg-type]
    assert cloud.wait(cancelled_run)["status"] == 30
    cloud.set_step_delay(0)

    result = run_action(tmp_path, inputs(cloud, f"{succeeded}, 987654, {failed}\n{cancelled}"))

    assert result.exit_code == 1, result.log
    status = result.json_output("status")
    assert status == {str(succeeded): "skipped", "987654": "error", str(failed): "success", str(cancelled): "success"}
    assert any("job 987654 was not found" in e for e in result.errors())
    assert result.json_output("previous-run-id")[str(failed)] == str(failed_run)
    assert result.json_output("steps") == {
        str(succeeded): [],
        "987654": [],
        str(failed): ["dbt seed --select file:raw_payments,resource_type:seed,package:shop"],
        str(cancelled): ["dbt seed --select raw_orders"],
    }
    assert result.summary.startswith("# dbt Cloud restart of 4 jobs")
    assert result.summary.count("## ") >= 3
    for job in (succeeded, failed, cancelled):
        assert f"==== job {job}:" in result.log


def test_with_test_parents_rebuilds_the_tested_model(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, run_id = cloud.failing_run(["dbt build"], ["not_null_stg_orders_order_id"], environment_id=8)
    failed = cloud.executed_nodes(run_id)[4]
    assert failed["model.shop.stg_orders"] == "success"

    result = run_action(tmp_path, inputs(cloud, str(job_id), rebuild="with-test-parents"))

    assert result.exit_code == 0, result.log
    rerun = set(cloud.executed_nodes(int(result.outputs["run-id"]))[4])
    retried = {u for u, s in failed.items() if s in ("error", "fail", "skipped")}
    assert rerun == retried | {"model.shop.stg_orders"}
    assert "with 1 parent of failed tests" in result.summary
