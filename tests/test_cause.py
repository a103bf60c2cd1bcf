"""Counting restarts of one failure: our cause markers and dbt Cloud's own reruns (`retrying_run_id`)."""

from __future__ import annotations

from restart.cause import Marker, count_restarts, failure_behind, retry_root

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
