"""The never-twice trigger protocol (`restart.trigger`), one test per path, against a scripted client
that fails the test on any request it was not told to expect: no HTTP, no waiting.

End to end, with real HTTP faults against the local dbt Cloud: tests/test_faults.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from restart import trigger
from restart.transport import ApiError, RetryPolicy, Unreachable

JOB = 5
MARKER = "[dbt-cloud-restart run=100 attempt=1 id=abc]"
BODY = {"cause": f"restart {MARKER}"}
FIRST = {"id": 201, "trigger": {"cause": BODY["cause"]}}
SECOND = {"id": 202, "trigger": {"cause": BODY["cause"]}}
RERUN = {"id": 301, "retrying_run_id": 100}
LOST = ApiError("dbt Cloud failed a new run of job 5 (HTTP 502)", 502)
REFUSED = ApiError("dbt Cloud refused a new run of job 5 (HTTP 400)", 400)
NOT_SENT = Unreachable("could not connect", sent=False)
LISTING_FAILED = ApiError("dbt Cloud failed on recent runs of job 5 (HTTP 500)", 500)


class Script:
    """A `TriggerClient` that expects exactly the calls of its script, in order, and answers each.

    An answer that is an exception is raised. A call the script does not expect next (or one past its
    end) fails the test at once: nothing is answered twice, nothing repeats by default.
    """

    def __init__(self, *steps: tuple[str, Any]) -> None:
        self.steps = list(steps)
        self.made: list[str] = []
        self.pauses: list[float] = []
        self.retry = RetryPolicy()

    def _answer(self, call: str) -> Any:
        self.made.append(call)
        if not self.steps:
            pytest.fail(f"unexpected request {call!r}: the script was over")
        expected, answer = self.steps.pop(0)
        if call != expected:
            pytest.fail(f"unexpected request {call!r}; the script expected {expected!r}")
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)

    def trigger(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        assert body == BODY
        return dict(self._answer(f"POST run {job_id}"))

    def rerun(self, job_id: int) -> dict[str, Any]:
        return dict(self._answer(f"POST rerun {job_id}"))

    def runs_with_cause(self, job_id: int, text: str) -> list[dict[str, Any]]:
        assert text == MARKER
        return list(self._answer(f"GET runs {job_id}"))

    def runs_retrying(self, job_id: int, run_id: int) -> list[dict[str, Any]]:
        return list(self._answer(f"GET runs {job_id} retrying {run_id}"))

    def cancel_run(self, run_id: int) -> dict[str, Any]:
        return dict(self._answer(f"POST cancel {run_id}"))

    def finished(self) -> bool:
        return not self.steps


POST = "POST run 5"
SEARCH = "GET runs 5"
NOTHING_YET: list[tuple[str, Any]] = [(SEARCH, [])] * trigger.RECONCILE_CHECKS


def run_script(*steps: tuple[str, Any]) -> tuple[Script, dict[str, Any], str]:
    client = Script(*steps)
    run, warning = trigger.trigger_run(client, JOB, dict(BODY), MARKER)
    assert client.finished(), f"requests the protocol never made: {client.steps}"
    return client, run, warning


def test_an_answered_trigger_is_the_run() -> None:
    _, run, warning = run_script((POST, FIRST))
    assert (run["id"], warning) == (201, "")


@pytest.mark.parametrize("error", [REFUSED, NOT_SENT], ids=["refused", "never-sent"])
def test_a_trigger_that_surely_started_nothing_raises_without_a_search(error: ApiError) -> None:
    client = Script((POST, error))
    with pytest.raises(ApiError) as caught:
        trigger.trigger_run(client, JOB, dict(BODY), MARKER)
    assert caught.value is error and client.made == [POST]


def test_a_lost_answer_adopts_the_run_that_carries_the_marker() -> None:
    client, run, warning = run_script((POST, LOST), (SEARCH, []), (SEARCH, [FIRST]))
    assert run["id"] == 201 and "adopted run 201" in warning
    assert client.made.count(POST) == 1 and len(client.pauses) == 1


def test_a_lost_answer_with_no_run_found_is_sent_once_more() -> None:
    client, run, warning = run_script((POST, LOST), *NOTHING_YET, (POST, SECOND), (SEARCH, [SECOND]))
    assert (run["id"], warning) == (202, "")
    assert client.pauses == [1.0, 2.0, 4.0]


def test_a_second_trigger_that_fails_names_both_failures() -> None:
    client = Script((POST, LOST), *NOTHING_YET, (POST, ApiError("HTTP 503 again", 503)))
    with pytest.raises(ApiError, match=r"HTTP 503 again \(the first attempt failed too: .*HTTP 502") as caught:
        trigger.trigger_run(client, JOB, dict(BODY), MARKER)
    assert not isinstance(caught.value, trigger.TriggerUnknown) and client.finished()


def test_the_first_run_showing_up_late_is_kept_and_the_second_cancelled() -> None:
    _, run, warning = run_script(
        (POST, LOST), *NOTHING_YET, (POST, SECOND), (SEARCH, [FIRST, SECOND]), ("POST cancel 202", SECOND)
    )
    assert run["id"] == 201 and warning == "the first trigger did create run 201 after all: kept it, cancelled run 202"


def test_a_second_run_that_cannot_be_cancelled_is_named_for_the_user() -> None:
    _, run, warning = run_script(
        (POST, LOST), *NOTHING_YET, (POST, SECOND), (SEARCH, [FIRST, SECOND]), ("POST cancel 202", LISTING_FAILED)
    )
    assert run["id"] == 201 and "run 202 that the second trigger started could not be cancelled" in warning


def test_a_failed_duplicate_check_tells_the_user_to_look_for_two_runs() -> None:
    _, run, warning = run_script((POST, LOST), *NOTHING_YET, (POST, SECOND), (SEARCH, LISTING_FAILED))
    assert run["id"] == 202 and "look for two runs of job 5" in warning


@pytest.mark.parametrize("looks", range(trigger.RECONCILE_CHECKS))
def test_a_lost_answer_whose_search_fails_says_a_run_may_exist_and_never_posts_again(looks: int) -> None:
    client = Script((POST, LOST), *NOTHING_YET[:looks], (SEARCH, LISTING_FAILED))
    with pytest.raises(trigger.TriggerUnknown) as caught:
        trigger.trigger_run(client, JOB, dict(BODY), MARKER)
    message = str(caught.value)
    assert "was lost" in message and "HTTP 502" in message and "HTTP 500" in message
    assert f"look in job 5 for a run whose cause carries {MARKER}" in message
    assert MARKER in caught.value.look_for
    assert client.made.count(POST) == 1 and client.finished()


RERUN_POST = "POST rerun 5"
RERUN_SEARCH = "GET runs 5 retrying 100"


def rerun_script(*steps: tuple[str, Any]) -> tuple[Script, dict[str, Any], str]:
    client = Script(*steps)
    run, warning = trigger.rerun_run(client, JOB, 100)
    assert client.finished(), f"requests the protocol never made: {client.steps}"
    return client, run, warning


def test_an_answered_rerun_is_the_run() -> None:
    _, run, warning = rerun_script((RERUN_POST, RERUN))
    assert (run["id"], warning) == (301, "")


def test_a_refused_rerun_raises_without_a_search() -> None:
    client = Script((RERUN_POST, REFUSED))
    with pytest.raises(ApiError) as caught:
        trigger.rerun_run(client, JOB, 100)
    assert caught.value is REFUSED and client.made == [RERUN_POST]


def test_a_rerun_whose_answer_was_lost_adopts_the_run_retrying_the_previous_one() -> None:
    client, run, warning = rerun_script((RERUN_POST, LOST), (RERUN_SEARCH, []), (RERUN_SEARCH, [RERUN]))
    assert run["id"] == 301 and "adopted run 301" in warning and client.made.count(RERUN_POST) == 1


def test_a_rerun_whose_answer_was_lost_and_no_run_shows_up_is_never_sent_again() -> None:
    client = Script((RERUN_POST, LOST), *[(RERUN_SEARCH, [])] * trigger.RECONCILE_CHECKS)
    with pytest.raises(trigger.TriggerUnknown, match="it was not sent again") as caught:
        trigger.rerun_run(client, JOB, 100)
    assert "retrying_run_id 100" in caught.value.look_for and client.finished()


def test_a_rerun_whose_answer_was_lost_and_search_fails_says_a_run_may_exist() -> None:
    client = Script((RERUN_POST, LOST), (RERUN_SEARCH, LISTING_FAILED))
    with pytest.raises(trigger.TriggerUnknown, match="look in job 5 for a run retrying run 100"):
        trigger.rerun_run(client, JOB, 100)
    assert client.finished()


def test_the_script_fails_a_request_it_did_not_expect() -> None:
    client = Script((POST, FIRST))
    with pytest.raises(pytest.fail.Exception, match="unexpected request 'POST rerun 5'"):
        client.rerun(JOB)
