"""The typed vocabulary: dbt's words defined once, and the inputs' choices as `Literal` types."""

from typing import Any, get_args

import pytest

from restart import dbt_vocabulary as dbt
from restart import settings

GOOD = {"dbt-cloud-token": "tok", "account-id": "1", "job-id": "2"}
CHOICES: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("strategy", "strategy", settings.Strategy, settings.STRATEGIES),
    ("if-previous-succeeded", "if_previous_succeeded", settings.IfPreviousSucceeded, settings.IF_PREVIOUS_SUCCEEDED),
    ("if-job-running", "if_job_running", settings.IfJobRunning, settings.IF_JOB_RUNNING),
    ("report", "report", settings.Report, settings.REPORTS),
    ("restart-on", "restart_on", settings.RestartOn, settings.RESTART_ON),
    ("rebuild", "rebuild", dbt.Rebuild, settings.REBUILDS),
    ("verify", "verify", settings.Verify, settings.VERIFY_MODES),
]


@pytest.mark.parametrize(("name", "field", "kind", "choices"), CHOICES)
def test_each_choice_input_takes_its_literal(name: str, field: str, kind: Any, choices: tuple[str, ...]) -> None:
    assert choices == get_args(kind)
    assert getattr(settings.parse(GOOD), field) == choices[0]  # the first is the default
    for choice in choices:
        parsed = settings.parse({**GOOD, name: choice.upper()})
        assert getattr(parsed, field) == choice
    with pytest.raises(settings.InputError, match=f"Input `{name}` must be one of {', '.join(choices)}"):
        settings.parse({**GOOD, name: "bogus"})


def test_statuses_and_resource_types_equal_what_dbt_writes() -> None:
    assert {"error", "fail", "skipped", "runtime error", "partial success"} == dbt.RETRYABLE
    assert dbt.RETRYABLE - {dbt.Status.SKIPPED} == dbt.FAILED
    assert {"success", "pass", "no-op", "reused"} == dbt.DONE
    assert not dbt.DONE & dbt.RETRYABLE
    assert "model" in dbt.EXECUTABLE and "operation" not in dbt.EXECUTABLE and "source" not in dbt.EXECUTABLE
    assert {"build", "test"} == dbt.EXECUTES_TESTS
    assert dbt.EXECUTES["build"] <= dbt.EXECUTABLE
    assert dbt.HOOK == "operation." and dbt.ERRORED_KINDS == ("model.", "seed.", "snapshot.")
    assert [str(mode) for mode in dbt.IndirectSelection] == ["eager", "cautious", "buildable", "empty"]
