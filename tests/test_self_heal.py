"""`restart-on: transient` and `delay`, decided against the in-memory dbt Cloud (tests/fake_cloud.py):
which failures are transient, own patterns, the wait before the trigger, and what the log and summary
say. One case runs end to end, through real dbt and the action: tests/test_heal.py."""

from __future__ import annotations

import io

import pytest

from restart import actions, settings, summary
from restart.context import Context
from restart.orchestrate import restart
from restart.outcome import Outcome
from tests.fake_cloud import FakeCloud
from tests.test_orchestrate import BASE, FakeStop, failed_build, posts

TIMEOUT_MESSAGE = "could not connect to server: Connection timed out"


def heal(cloud: FakeCloud, stop: FakeStop | None = None, **inputs: str) -> tuple[Outcome, list[str]]:
    """The restart with these inputs, and the workflow commands it wrote."""
    config = settings.parse({**BASE, **{k.replace("_", "-"): v for k, v in inputs.items()}})
    stream = io.StringIO()
    outcome = restart(config, cloud, actions.Log(actions=True, stream=stream), Context(), stop or FakeStop())
    return outcome, stream.getvalue().splitlines()


def test_a_transient_failure_is_restarted_after_the_delay() -> None:
    cloud, stop = failed_build(message=TIMEOUT_MESSAGE), FakeStop()
    outcome, log = heal(cloud, stop, restart_on="transient", delay="1.5")
    assert (outcome.status, posts(cloud)) == ("success", ["trigger"])
    assert stop.pauses[0] == 1.5 and any("waiting 1.5s before triggering" in line for line in log)
    markdown = summary.summary(outcome)
    assert "Failures by class" in markdown and "🔁 transient" in markdown


def test_a_failing_data_test_is_persistent() -> None:
    cloud = failed_build()
    results = cloud.artifacts[(100, "run_results.json", 3)]["results"]
    results[0] = {
        "unique_id": "test.shop.not_null_stg_orders_order_id",
        "status": "fail",
        "message": "Got 3 results, configured to fail if != 0",
    }
    results[1] = {"unique_id": "model.shop.b", "status": "success", "message": None}
    outcome, log = heal(cloud, restart_on="transient")
    assert (outcome.status, outcome.exit_code, posts(cloud)) == ("skipped", 0, [])
    [notice] = [line for line in log if line.startswith("::notice")]
    assert "test.shop.not_null_stg_orders_order_id" in notice and "data test found failing rows" in notice
    assert "⛔ persistent" in summary.summary(outcome)


def test_a_persistent_error_names_the_node_and_why() -> None:
    cloud = failed_build()
    outcome, log = heal(cloud, restart_on="transient")
    assert (outcome.status, posts(cloud)) == ("skipped", [])
    [notice] = [line for line in log if line.startswith("::notice")]
    assert "model.shop.a" in notice and "matches no transient pattern" in notice


def test_own_patterns_replace_the_built_in_ones() -> None:
    built_in, _ = heal(failed_build(message="warehouse is napping"), restart_on="transient", dry_run="true")
    assert built_in.status == "skipped"
    own, _ = heal(
        failed_build(message="warehouse is napping"),
        restart_on="transient",
        dry_run="true",
        transient_patterns="napping\nsnoozing",
    )
    assert own.status == "planned"
    not_own, _ = heal(failed_build(message=TIMEOUT_MESSAGE), restart_on="transient", transient_patterns="napping")
    assert not_own.status == "skipped", "own patterns replace the built-in ones"
    with pytest.raises(settings.InputError, match="`transient-patterns` line 1 is not a valid regular expression"):
        settings.parse({**BASE, "transient-patterns": "(unclosed"})
