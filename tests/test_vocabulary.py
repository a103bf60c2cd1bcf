"""The typed vocabulary: dbt's words defined once, and the inputs' choices as `Literal` types."""

from collections.abc import Iterable
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


def test_statuses_are_dbt_s_own() -> None:
    """Each status set is derived from the installed dbt-core's, so dbt adding a status fails here."""
    from dbt.artifacts.schemas.results import NodeStatus
    from dbt.task.retry import RETRYABLE_STATUSES

    def words(values: Iterable[str]) -> set[str]:
        return {str(value) for value in values}

    assert words(RETRYABLE_STATUSES) == words(dbt.RETRYABLE)
    written = words(NodeStatus)
    newer = {str(dbt.Status.REUSED)} - written  # dbt 1.12's, unknown to an older dbt-core in this venv
    assert words(dbt.Status) == written | newer
    assert words(RETRYABLE_STATUSES) - {NodeStatus.Skipped} == words(dbt.FAILED)
    assert (written | newer) - words(RETRYABLE_STATUSES) - {NodeStatus.Warn} == words(dbt.DONE)
    assert words([NodeStatus.Success, NodeStatus.Pass, NodeStatus.Warn]) == words(dbt.RAN)


def test_resource_types_and_commands_are_dbt_s_own() -> None:
    from dbt.artifacts.resources.types import NodeType
    from dbt.graph.selector_spec import IndirectSelection
    from dbt.task.build import BuildTask

    kinds = {str(kind) for kind in NodeType}
    assert {str(kind) for kind in dbt.ResourceType} <= kinds
    # what `dbt build` executes and records, less what never fails a node (exposures, saved queries)
    built = {str(kind) for kind in BuildTask.RUNNER_MAP} - {NodeType.SavedQuery, NodeType.Exposure}
    assert built == {str(kind) for kind in dbt.EXECUTES[dbt.BUILD]}
    assert [str(mode) for mode in IndirectSelection] == [str(mode) for mode in dbt.IndirectSelection]
    assert f"{NodeType.Operation}." == dbt.HOOK
    assert {kind.split(".")[0] for kind in dbt.ERRORED_KINDS} == {str(kind) for kind in dbt.REBUILT}
