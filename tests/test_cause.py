"""Counting restarts of one failure: our cause markers and dbt Cloud's own reruns (`retrying_run_id`)."""

from __future__ import annotations

import re

import pytest

from restart.cause import (
    DBT_CLOUD_CAUSE_LIMIT,
    Marker,
    count_attempts,
    count_restarts,
    failure_behind,
    next_marker,
    read_marker,
    retry_root,
    with_marker,
)
from restart.settings import MAX_CAUSE_INPUT

OURS = Marker(100, 1, "abcd1234").render()


def test_a_chain_of_native_reruns_leads_back_to_the_failure() -> None:
    retrying = {102: 101, 101: 100}
    assert retry_root(102, retrying) == 100
    assert retry_root(100, retrying) == 100
    assert retry_root(7, {7: 8, 8: 7}) in (7, 8), "a loop in bad data ends"


def test_native_reruns_and_marked_restarts_count_towards_the_same_failure() -> None:
    # 101 is our restart of 100; 102 is dbt Cloud's rerun of 101; 103 a rerun of an unrelated 50.
    causes = {101: f"Restart {OURS}", 102: "Rerun from failure", 103: "Rerun from failure", 100: "Scheduled"}
    retrying = {102: 101, 103: 50}
    assert failure_behind(102, "Rerun from failure", retrying, causes) == 100
    assert failure_behind(103, "Rerun from failure", retrying, causes) == 50
    assert count_restarts(100, retrying, causes) == 2
    assert count_restarts(50, retrying, causes) == 1


def test_a_marker_names_the_run_it_restarts_in_a_bracket_older_versions_skip() -> None:
    marker = next_marker(101, f"Restart {OURS}", earlier_attempts=1)
    rendered = marker.render()
    assert rendered == f"[dbt-cloud-restart run=100 attempt=2 id={marker.nonce}][restarts=101]"
    assert read_marker(f"text {rendered}") == marker
    old_reader = re.compile(r"\[dbt-cloud-restart run=(\d+) attempt=(\d+) id=([0-9a-f]{8,32})\]")
    assert old_reader.search(rendered), "a version without `restarts` still counts this restart"
    longest = Marker(10**14 - 1, 999, "f" * 8, 10**14 - 1)  # 14-digit run ids, as on a busy account
    assert len(with_marker("x" * 300, longest)) == DBT_CLOUD_CAUSE_LIMIT
    assert with_marker("x" * MAX_CAUSE_INPUT, longest) == "x" * MAX_CAUSE_INPUT + " " + longest.render()


@pytest.mark.parametrize(
    ("cause", "run_id", "expected"),
    [
        ("[dbt-cloud-restart run=100 attempt=2 id=abcd1234][restarts=101]", 101, True),
        ("[dbt-cloud-restart run=100 attempt=2 id=abcd1234][restarts=101]", 100, False),  # restart of a restart
        ("[dbt-cloud-restart run=100 attempt=1 id=abcd1234][restarts=100]", 100, True),
        ("[dbt-cloud-restart run=100 attempt=1 id=abcd1234]", 100, True),  # older marker, first attempt
        ("[dbt-cloud-restart run=100 attempt=2 id=abcd1234]", 100, False),  # older marker: which run is unknown
        ("[dbt-cloud-restart run=100 attempt=2 id=abcd1234]", 101, False),
    ],
)
def test_restarts_run_tells_a_restart_from_a_restart_of_a_restart(cause: str, run_id: int, expected: bool) -> None:
    marker = read_marker(cause)
    assert marker is not None and marker.restarts_run(run_id) is expected


def test_two_restarts_of_the_same_run_count_once_towards_the_loop_guard() -> None:
    twin = "[dbt-cloud-restart run=100 attempt={} id={}][restarts={}]"
    causes = [twin.format(1, "aaaa1111", 100), twin.format(1, "bbbb2222", 100), twin.format(2, "cccc3333", 101)]
    assert count_attempts(100, causes) == 2
    older = ["[dbt-cloud-restart run=100 attempt=1 id=abcd1234]", "[dbt-cloud-restart run=100 attempt=2 id=abcd1234]"]
    assert count_attempts(100, older) == 2
