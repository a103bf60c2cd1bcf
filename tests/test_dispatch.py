"""The action under `repository_dispatch`, idempotent restarts and the growing delay.

Pure decisions (`restart.context`, `restart.decide`) table by table, then the executor against the
in-memory dbt Cloud (`tests.fake_cloud`). End to end: tests/test_github.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from restart import actions, cli, decide, settings
from restart.cause import Marker
from restart.context import REPOSITORY_DISPATCH, Context, EventError, with_event_values
from restart.orchestrate import restart
from restart.outcome import Outcome
from restart.outputs import outputs_of
from restart.records import CANCELLED, ERROR, QUEUED, RUNNING, SUCCESS, Run, run_from_json
from restart.transport import ApiError
from tests.factories import FakeStop
from tests.fake_cloud import FakeCloud, run_json
from tests.test_orchestrate import BASE, failed_build, posts

PAYLOAD = {
    "account_id": "1",
    "job_id": "7",
    "run_id": "100",
    "event_id": "wev_2x7Qa",
    "event_type": "job.run.completed",
}
EVENT = Context(event_name=REPOSITORY_DISPATCH, client_payload=PAYLOAD, run_url="https://github.com/a/b/actions/runs/9")


def dispatched(payload: dict[str, Any]) -> Context:
    return Context(event_name=REPOSITORY_DISPATCH, client_payload=payload)


def marker(restarts: int, original: int = 100, attempt: int = 1) -> str:
    return Marker(original, attempt, "abcd1234", restarts).render()


# --- the event's values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "payload", "filled"),
    [
        ({}, PAYLOAD, {"account-id": "1", "job-id": "7", "run-id": "100"}),
        ({"account-id": "1"}, PAYLOAD, {"account-id": "1", "job-id": "7", "run-id": "100"}),
        ({"job-id": "7"}, PAYLOAD, {"job-id": "7", "run-id": "100"}),
        ({"job-id": "5, 7"}, PAYLOAD, {"job-id": "7", "run-id": "100"}),  # the event's job, of those listed
        ({"job-id": "7", "run-id": "99"}, PAYLOAD, {"job-id": "7", "run-id": "99"}),  # the step's own run wins
        ({"job-id": "7"}, {"run_id": "100"}, {"job-id": "7", "run-id": "100"}),
        ({}, {"account_id": 1, "job_id": 7, "run_id": 100}, {"job-id": "7", "run-id": "100"}),  # numbers too
    ],
)
def test_client_payload_fills_the_inputs_the_step_leaves_empty(
    given: dict[str, str], payload: dict[str, Any], filled: dict[str, str]
) -> None:
    values = with_event_values(dispatched(payload), {"dbt-cloud-token": "t", **given})
    assert values.skip == ""
    assert {k: v for k, v in values.values.items() if k in filled} == filled


@pytest.mark.parametrize(
    ("given", "payload", "message"),
    [
        ({}, {**PAYLOAD, "run_id": "12a"}, "client_payload key `run_id` of the repository_dispatch event must be"),
        ({}, {**PAYLOAD, "job_id": "0"}, "client_payload key `job_id` "),
        ({}, {**PAYLOAD, "job_id": "²"}, "client_payload key `job_id` "),  # str.isdigit says yes, int() no
        ({}, {**PAYLOAD, "run_id": "١٢"}, "client_payload key `run_id` "),  # Arabic-Indic digits
        ({}, {**PAYLOAD, "job_id": True}, "client_payload key `job_id` "),
        ({}, {**PAYLOAD, "account_id": "-3"}, "client_payload key `account_id` "),
        ({"account-id": "2"}, PAYLOAD, "client_payload key `account_id` is 1 but input account-id is 2"),
        ({}, {"run_id": "100"}, "has no `job_id` and input job-id is empty"),
        ({}, {**PAYLOAD, "event_id": "wev\n::error::x"}, "client_payload key `event_id` "),
    ],
)
def test_a_bad_payload_value_is_one_line_naming_its_key(
    given: dict[str, str], payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(EventError) as caught:
        with_event_values(dispatched(payload), given)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_event_about_another_job_is_skipped_and_other_events_fill_nothing() -> None:
    assert with_event_values(dispatched(PAYLOAD), {"job-id": "5,6"}).skip == (
        "the repository_dispatch event names job 7, which is not in job-id (5, 6)"
    )
    assert with_event_values(Context(event_name="push", client_payload=PAYLOAD), {}).values == {}
    workflow = Context(event_name="workflow_dispatch", dispatch_inputs={"run_id": "5"})
    assert with_event_values(workflow, {"job-id": "7"}).values == {"job-id": "7", "run-id": "5"}


def test_the_cause_and_the_summary_name_the_dbt_cloud_event() -> None:
    run = run_from_json(run_json(100, ERROR))
    assert decide.default_cause(run, EVENT) == (
        "Restart of run #100 from its point of failure after dbt Cloud event wev_2x7Qa (job.run.completed)"
        " by https://github.com/a/b/actions/runs/9"
    )
    assert decide.event_details(EVENT) == (
        "Triggered by dbt Cloud event wev_2x7Qa (job.run.completed), dispatched by the relay",
    )
    assert decide.event_details(Context()) == ()
    odd = dispatched({**PAYLOAD, "event_type": "x\n::error::forged"})
    assert odd.dbt_event_label == "dbt Cloud event wev_2x7Qa", "remote text that is no event type is left out"


# --- what a dispatched event may restart --------------------------------------------------------------


def run(run_id: int, status: int, **fields: Any) -> Run:
    return run_from_json(run_json(run_id, status, **fields))


CONFIG = settings.parse(BASE)


@pytest.mark.parametrize(
    ("previous", "recent", "why"),
    [
        (run(100, ERROR), [run(100, ERROR)], ""),
        (run(100, CANCELLED, status_message="This run timed out after 1 hour"), [], ""),
        (run(100, SUCCESS), [], "run 100 succeeded: the repository_dispatch event names a run that did not fail"),
        (run(100, CANCELLED, status_message="Cancelled by user"), [], "run 100 was cancelled, not stopped by"),
        (run(100, ERROR), [run(130, SUCCESS), run(120, SUCCESS)], "run 100 is older than the job's 2 latest runs"),
    ],
)
def test_a_dispatched_event_restarts_only_a_run_that_failed_or_timed_out(
    previous: Run, recent: list[Run], why: str
) -> None:
    found = decide.skip_dispatched(CONFIG, EVENT, previous, recent)
    assert (found.outcome.headline if found else "").startswith(why)
    assert decide.skip_dispatched(CONFIG, Context(event_name="workflow_dispatch"), run(100, SUCCESS), []) is None


# --- idempotency: a restart of exactly this run ---------------------------------------------------------


@pytest.mark.parametrize(
    ("recent", "found"),
    [
        ([run(101, RUNNING, cause=f"x {marker(100)}")], 101),
        ([run(101, QUEUED, cause=f"x {marker(100)}")], 101),
        ([run(101, SUCCESS, cause=f"x {marker(100)}")], 101),
        ([run(102, ERROR, cause=marker(100)), run(101, CANCELLED, cause=marker(100))], 101),  # the first made
        ([run(101, ERROR, retrying_run_id=100)], 101),  # dbt Cloud's rerun from failure (strategy native)
        ([run(102, ERROR, cause=marker(101, attempt=2))], None),  # a restart of the restart 101
        ([run(101, ERROR, cause=marker(99, original=99))], None),  # another failure's restart
        ([run(101, ERROR, cause="Scheduled")], None),
    ],
)
def test_a_restart_of_exactly_this_run_is_found_whatever_its_state(recent: list[Run], found: int | None) -> None:
    previous = run(100, ERROR)
    existing = decide.first_restart(previous, recent)
    assert (existing.id if existing else None) == found
    finished = decide.duplicate(CONFIG, previous, recent)
    assert (finished is not None) is (found is not None)


def test_a_duplicate_exits_0_with_a_notice_and_outputs_naming_the_first_restart() -> None:
    previous, first = run(100, ERROR), run(101, ERROR, cause=marker(100))
    finished = decide.duplicate(CONFIG, previous, [first])
    assert finished is not None
    outcome = finished.outcome
    assert (outcome.status, outcome.exit_code, outcome.restarted) == ("skipped", 0, False)
    assert [say.level for say in finished.say] == ["notice"]
    assert finished.say[0].text == (
        "run 100 was already restarted by run 101 (error): https://cloud.example/runs/101;"
        " restart run 101 instead if it failed"
    )
    outputs = outputs_of(outcome)
    assert (outputs["run-id"], outputs["run-url"], outputs["restarted"]) == ("101", first.href, "false")


@pytest.mark.parametrize(
    ("ours", "recent", "expected"),
    [
        (run(102, QUEUED), [run(101, RUNNING, cause=marker(100))], (101, True)),
        (run(102, QUEUED), [run(102, RUNNING), run(101, QUEUED, cause=marker(100))], (101, False)),  # ours started
        (run(101, QUEUED), [run(102, QUEUED, cause=marker(100))], None),  # the other copy's is later: it gives way
        (run(102, QUEUED), [run(101, ERROR, cause=marker(101, attempt=2))], None),
    ],
)
def test_after_the_trigger_only_the_later_created_unstarted_restart_gives_way(
    ours: Run, recent: list[Run], expected: tuple[int, bool] | None
) -> None:
    found = decide.twin(run(100, ERROR), ours, recent)
    assert ((found.earlier.id, found.cancel) if found else None) == expected


# --- the growing delay ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delay", "earlier", "seconds"),
    [(0, 3, 0), (60, 0, 60), (60, 1, 120), (60, 2, 240), (60, 5, 1800), (60, 100, 1800), (3600, 2, 3600)],
)
def test_the_delay_doubles_per_earlier_restart_up_to_half_an_hour(delay: float, earlier: int, seconds: float) -> None:
    assert decide.delay_before(delay, earlier).seconds == seconds


def test_the_delay_says_why_it_grew() -> None:
    assert decide.delay_before(60, 2).reason == "delay 60s doubled for each of 2 earlier restart(s) of this failure"
    assert decide.delay_before(60, 9).reason.endswith("(capped)")


# --- the executor, against the in-memory dbt Cloud ------------------------------------------------------


def restart_with(cloud: FakeCloud, context: Context = EVENT, stop: FakeStop | None = None, **inputs: str) -> Outcome:
    config = settings.parse({**BASE, **{k.replace("_", "-"): v for k, v in inputs.items()}})
    log = actions.Log(actions=False, stream=io.StringIO())
    return restart(config, cloud, log, context, stop or FakeStop(), connect=lambda: cloud)


@pytest.mark.parametrize("strategy", ["select", "native"])
@pytest.mark.parametrize("first_status", [RUNNING, SUCCESS])
def test_the_same_failure_dispatched_twice_starts_one_restart(strategy: str, first_status: int) -> None:
    cloud = failed_build()
    cloud.new_status = first_status
    first = restart_with(cloud, run_id="100", strategy=strategy, wait="false")
    second = restart_with(cloud, run_id="100", strategy=strategy, wait="false")
    assert first.new_run is not None and first.status != "skipped"
    assert posts(cloud) == ["trigger" if strategy == "select" else "rerun"]
    assert (second.status, second.exit_code, second.existing) == ("skipped", 0, first.new_run)


def test_a_dry_run_of_a_failure_restarted_already_says_what_a_real_run_would() -> None:
    cloud = failed_build()
    first = restart_with(cloud, run_id="100", wait="false")
    dry = restart_with(cloud, run_id="100", dry_run="true")
    assert posts(cloud) == ["trigger"]
    assert (dry.status, dry.existing) == ("skipped", first.new_run)


def test_a_restart_that_failed_is_restarted_through_its_own_failure_and_counted() -> None:
    cloud = failed_build()
    first = restart_with(cloud, run_id="100", wait="false")
    assert first.new_run is not None
    cloud.runs[0].update(status=ERROR, run_steps=cloud.runs[-1]["run_steps"], job=cloud.runs[-1]["job"])
    cloud.artifacts[(first.new_run.id, "run_results.json", 3)] = cloud.artifacts[(100, "run_results.json", 3)]
    again = restart_with(cloud, run_id=str(first.new_run.id), wait="false", delay="10")
    assert again.new_run is not None, again.headline
    assert f"[restarts={first.new_run.id}]" in cloud.triggered[-1]["cause"]
    assert "attempt=2" in cloud.triggered[-1]["cause"]
    assert again.details[0] == (
        "Waited 20s before triggering: delay 10s doubled for each of 1 earlier restart(s) of this failure."
    )
    guarded = restart_with(cloud, run_id=str(first.new_run.id), wait="false", max_attempts="1")
    assert guarded.status == "skipped" and guarded.existing is not None  # found before the loop guard


class RacingCloud(FakeCloud):
    """Another copy of the action triggers the same restart just before this one's trigger lands."""

    def trigger(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        other = str(body["cause"]).replace("id=", "id=ffff")
        self._start(job_id, {**body, "cause": other})
        return super().trigger(job_id, body)


def test_of_two_copies_racing_the_later_created_restart_is_cancelled() -> None:
    base = failed_build()
    cloud = RacingCloud(runs=base.runs, artifacts=base.artifacts, new_status=QUEUED)
    outcome = restart_with(cloud, run_id="100", wait="false")
    assert posts(cloud) == ["trigger", "cancel_run 102"]
    assert outcome.existing is not None and outcome.existing.id == 101
    assert (outcome.status, outcome.exit_code, outcome.restarted) == ("skipped", 0, False)
    assert outcome.details[-1] == "Run #102, triggered at the same time, was cancelled before it started."


def test_a_race_loser_that_already_started_is_left_running_with_a_warning() -> None:
    base = failed_build()
    cloud = RacingCloud(runs=base.runs, artifacts=base.artifacts, new_status=RUNNING)
    outcome = restart_with(cloud, run_id="100", wait="false")
    assert posts(cloud) == ["trigger"]
    assert outcome.new_run is not None and outcome.new_run.id == 102


def test_under_repository_dispatch_a_run_that_succeeded_is_not_run_again() -> None:
    cloud = FakeCloud(runs=[run_json(100, SUCCESS)])
    outcome = restart_with(cloud, run_id="100", if_previous_succeeded="run")
    assert (outcome.status, posts(cloud)) == ("skipped", [])


# --- the entry point: the payload checked before any API call -------------------------------------------


def run_entry(tmp_path: Path, payload: dict[str, Any], **given: str) -> tuple[int, dict[str, str], str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "dbt-cloud-run-failed", "client_payload": payload}))
    env = {"GITHUB_EVENT_NAME": REPOSITORY_DISPATCH, "GITHUB_EVENT_PATH": str(event)}
    stream = io.StringIO()
    values = {"dbt-cloud-token": "tok", "dbt-cloud-host": "http://127.0.0.1:9", **given}
    code, outputs = cli.run_with(values, env, actions.Log(actions=True, stream=stream))
    return code, outputs, stream.getvalue()


def test_a_bad_payload_fails_the_step_with_one_error_naming_the_key(tmp_path: Path) -> None:
    code, outputs, log = run_entry(tmp_path, {**PAYLOAD, "run_id": "1; rm -rf /"})
    errors = [line for line in log.splitlines() if line.startswith("::error")]
    assert (code, outputs["status"], len(errors)) == (1, "error", 1)
    assert errors[0].startswith("::error title=Invalid input::client_payload key `run_id` ")


def test_an_event_about_another_job_is_a_notice_and_no_api_call(tmp_path: Path) -> None:
    code, outputs, log = run_entry(tmp_path, PAYLOAD, **{"account-id": "1", "job-id": "8"})
    assert (code, outputs["status"]) == (0, "skipped")  # host port 9 is closed: any API call would fail
    assert "::notice::the repository_dispatch event names job 7, which is not in job-id (8): nothing to restart" in log


class FlakyCloud(FakeCloud):
    """The look after the trigger, or the cancel, fails."""

    fail: str = ""
    looks: int = 0

    def recent_runs(self, job_id: int, limit: int = 25) -> list[Run]:
        self.looks += 1
        if self.fail == "look" and self.looks > 1:
            raise ApiError("dbt Cloud failed on recent runs (HTTP 503)")
        return super().recent_runs(job_id, limit)

    def cancel_run(self, run_id: int) -> dict[str, Any]:
        if self.fail == "cancel":
            raise ApiError("dbt Cloud failed on cancel (HTTP 503)")
        return super().cancel_run(run_id)


@pytest.mark.parametrize(
    ("fail", "warning"),
    [
        ("look", "could not check that run 102 is the only restart of run 100"),
        ("cancel", "run 101 already restarts run 100, but run 102 could not be cancelled"),
    ],
)
def test_a_look_or_cancel_that_fails_after_the_trigger_is_a_warning(fail: str, warning: str) -> None:
    base = failed_build()

    class Racing(FlakyCloud, RacingCloud):
        pass

    cloud = Racing(runs=base.runs, artifacts=base.artifacts, new_status=QUEUED)
    cloud.fail = fail
    stream = io.StringIO()
    config = settings.parse({**BASE, "run-id": "100", "wait": "false"})
    outcome = restart(config, cloud, actions.Log(actions=True, stream=stream), EVENT, FakeStop(), connect=lambda: cloud)
    assert outcome.new_run is not None and outcome.new_run.id == 102
    assert any(line.startswith("::warning::") and warning in line for line in stream.getvalue().splitlines())
