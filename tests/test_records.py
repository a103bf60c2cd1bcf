"""Records from the API's JSON (`restart.records`): any shape dbt Cloud could answer is a record or a
`RecordError`, never another exception. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from restart import records
from restart.api import DbtCloud
from tests.factories import Clock
from tests.fake_cloud import run_json
from tests.test_transport import Session, response

RUN = run_json(100, records.ERROR, steps=[(1, "Clone git repository", records.SUCCESS)])


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("run_steps", ["x"], "a run step is not a JSON object"),
        ("run_steps", {"index": 1}, "the run's steps is not a JSON list"),
        ("id", "\u0661\u0662", "non-integer 'id'"),
        ("id", "²", "non-integer 'id'"),
        ("status", " 10", "non-integer 'status'"),
    ],
)
def test_an_odd_run_is_a_record_error(field: str, value: Any, problem: str) -> None:
    with pytest.raises(records.RecordError, match=problem):
        records.run_from_json({**RUN, field: value})


def test_fields_of_the_wrong_type_are_unknown_not_stored() -> None:
    run = records.run_from_json(
        {**RUN, "can_retry": "no", "retry_not_supported_reason": 3, "retrying_run_id": "\u0669", "trigger": None}
    )
    assert (run.can_retry, run.retry_not_supported_reason, run.retrying_run_id, run.cause) == (None, None, None, "")
    run = records.run_from_json({**RUN, "can_retry": False, "retry_not_supported_reason": "RETRY_NOT_LATEST_RUN"})
    assert (run.can_retry, run.retry_not_supported_reason) == (False, "RETRY_NOT_LATEST_RUN")


def test_one_odd_run_in_a_job_s_list_is_skipped_not_fatal() -> None:
    listed = [{**RUN, "id": 101, "trigger": "x"}, {**RUN, "id": 102, "run_steps": ["x"]}, RUN]
    client = DbtCloud("https://cloud.example", "t", 1, session=Session(response(200, listed)), sleep=Clock().sleep)
    assert [run.id for run in client.recent_runs(7)] == [101, 100]  # a trigger that is no object records nothing


@pytest.mark.parametrize(("value", "number"), [(12, 12), ("12", 12), ("\u0661\u0662", None), ("²", None), (True, None)])
def test_ids_are_ascii_digits(value: Any, number: int | None) -> None:
    assert records.run_id_of({"id": value}) == number
