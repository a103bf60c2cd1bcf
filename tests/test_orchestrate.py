"""The restart's branches, decided (`restart.decide`) and carried out (`restart.orchestrate`) against an
in-memory dbt Cloud (`tests.fake_cloud`): no dbt, no HTTP, no waiting.

The same branches run end to end, through dbt and the local dbt Cloud, in tests/test_restart_end_to_end.py,
tests/test_faults.py, tests/test_heal.py, tests/test_field_notes.py and tests/test_verified_restart.py.
"""

from __future__ import annotations

import io
import json
import signal
from typing import Any

import pytest

from restart import actions, decide, outputs, settings, summary
from restart.context import Context
from restart.orchestrate import RestartError, execute, restart
from restart.outcome import Outcome
from restart.outputs import outputs_by_job, outputs_of
from restart.overrides import NewContext
from restart.records import CANCELLED, ERROR, RUNNING, SUCCESS, RetryDetails, Run, run_from_json
from restart.signals import Interrupted, Stop
from restart.transport import ApiError
from tests.factories import FakeStop
from tests.fake_cloud import FakeCloud, run_json

BASE = {"dbt-cloud-token": "tok", "account-id": "1", "job-id": "7", "poll-interval": "1", "verify": "off"}
V6 = "https://schemas.getdbt.com/dbt/run-results/v6.json"
SETUP = [(1, "Clone git repository", SUCCESS), (2, "Create profile from connection DuckDB", SUCCESS)]
BUILD = (3, "Invoke dbt with `dbt build`")


def failed_build(run_id: int = 100, message: str = "Database Error: syntax error", **fields: Any) -> FakeCloud:
    """A job whose latest run failed in its one `dbt build`: model a errored, b was skipped."""
    job = {"id": 7, "name": "nightly", "execute_steps": ["dbt build"]}
    run = run_json(run_id, ERROR, steps=[*SETUP, (*BUILD, ERROR)], job=job, **fields)
    results = {
        "metadata": {"dbt_schema_version": V6, "dbt_version": "1.11.2"},
        "results": [
            {"unique_id": "model.shop.a", "status": "error", "message": message},
            {"unique_id": "model.shop.b", "status": "skipped", "message": None},
            {"unique_id": "model.shop.c", "status": "success", "message": None},
        ],
        "args": {"which": "build"},
    }
    return FakeCloud(runs=[run], artifacts={(run_id, "run_results.json", 3): results})


def run_restart(cloud: FakeCloud, stop: Stop | None = None, **inputs: str) -> Outcome:
    config = settings.parse({**BASE, **{k.replace("_", "-"): v for k, v in inputs.items()}})
    log = actions.Log(actions=False, stream=io.StringIO())
    return restart(config, cloud, log, Context(), stop or FakeStop(), connect=lambda: cloud)


def posts(cloud: FakeCloud) -> list[str]:
    return [call for call in cloud.calls_made if call in ("trigger", "rerun") or call.startswith("cancel")]


def test_an_outcome_before_the_trigger_names_the_native_strategy() -> None:
    cloud = FakeCloud(runs=[run_json(100, SUCCESS)])
    outcome = run_restart(cloud, strategy="native")
    assert (outcome.status, outcome.strategy) == ("skipped", "native")
    assert "Strategy: `native`" in summary.summary(outcome)


@pytest.mark.parametrize(("mode", "status", "code"), [("skip", "skipped", 0), ("fail", "error", 1)])
def test_a_previous_run_that_succeeded_is_not_restarted(mode: str, status: str, code: int) -> None:
    cloud = FakeCloud(runs=[run_json(100, SUCCESS)])
    outcome = run_restart(cloud, if_previous_succeeded=mode)
    assert (outcome.status, outcome.exit_code, outcome.previous and outcome.previous.id) == (status, code, 100)
    assert posts(cloud) == []


def test_a_previous_run_that_succeeded_runs_the_job_in_full_when_asked() -> None:
    cloud = FakeCloud(runs=[run_json(100, SUCCESS)])
    outcome = run_restart(cloud, if_previous_succeeded="run", payload='{"git_branch": "main"}')
    assert posts(cloud) == ["trigger"] and outcome.status == "success" and outcome.plan is None
    [body] = cloud.triggered
    assert "steps_override" not in body and body["git_branch"] == "main"
    assert "[dbt-cloud-restart run=100 attempt=1 " in body["cause"]


def test_a_full_run_dry_run_triggers_nothing() -> None:
    cloud = FakeCloud(runs=[run_json(100, SUCCESS)])
    outcome = run_restart(cloud, if_previous_succeeded="run", dry_run="true")
    assert (outcome.status, outcome.headline, posts(cloud)) == ("planned", "would run job 7 in full", [])


@pytest.mark.parametrize(("mode", "status", "code"), [("skip", "skipped", 0), ("fail", "error", 1)])
def test_a_busy_job_is_left_alone(mode: str, status: str, code: int) -> None:
    cloud = failed_build()
    cloud.runs.insert(0, run_json(101, RUNNING, status_humanized="Running"))
    outcome = run_restart(cloud, if_job_running=mode)
    assert (outcome.status, outcome.exit_code, posts(cloud)) == (status, code, [])
    assert outcome.headline == "run 101 of job 7 is running: not starting another run of the job"


def test_a_busy_job_is_waited_for_then_restarted() -> None:
    cloud = failed_build()
    busy = run_json(101, RUNNING)
    cloud.runs.insert(0, busy)
    stop = FakeStop()
    original = cloud.recent_runs

    def recent_runs(job_id: int, limit: int = 25) -> list[Run]:
        found = original(job_id, limit)
        busy["status"] = ERROR  # it finishes once it has been seen running (and is the one restarted)
        return found

    cloud.recent_runs = recent_runs  # type: ignore[method-assign]
    cloud.artifacts[(101, "run_results.json", 3)] = cloud.artifacts[(100, "run_results.json", 3)]
    busy.update(run_steps=cloud.runs[1]["run_steps"], job=cloud.runs[1]["job"])
    outcome = run_restart(cloud, stop, if_job_running="wait")
    assert stop.pauses == [1.0] and posts(cloud) == ["trigger"]
    assert outcome.status == "success" and outcome.previous and outcome.previous.id == 101


def test_the_loop_guard_stops_a_failure_restarted_max_attempts_times() -> None:
    marker = "[dbt-cloud-restart run=100 attempt={} id=0123abcd]"
    cloud = failed_build(103, cause=marker.format(3))
    cloud.runs += [run_json(i, ERROR, cause=marker.format(i - 100)) for i in (102, 101)] + [run_json(100, ERROR)]
    outcome = run_restart(cloud, max_attempts="3")
    assert (outcome.status, posts(cloud)) == ("skipped", [])
    assert outcome.headline.startswith("run 100 has already been restarted 3 time(s) (max-attempts 3)")


def test_a_run_dbt_cloud_already_reran_is_not_restarted() -> None:
    cloud = failed_build()
    cloud.runs.insert(0, run_json(101, ERROR, retrying_run_id=100, status_humanized="Error"))
    outcome = run_restart(cloud, run_id="100")
    assert (outcome.status, posts(cloud)) == ("skipped", [])
    assert (
        outcome.headline
        == "run 100 was already rerun from failure by run 101 (error); restart run 101 instead if it failed"
    )


def test_native_is_refused_when_dbt_cloud_cannot_rerun() -> None:
    cloud = failed_build(can_retry=False, retry_not_supported_reason="RETRY_NOT_LATEST_RUN")
    with pytest.raises(RestartError, match=r"RETRY_NOT_LATEST_RUN: it is not the job's latest run"):
        run_restart(cloud, strategy="native")
    config = settings.parse({**BASE, "strategy": "native"})
    outcome = execute(config, actions.Log(actions=False, stream=io.StringIO()), {}, FakeStop(), client=cloud)
    assert (outcome.status, outcome.exit_code, outcome.strategy, posts(cloud)) == ("error", 1, "native", [])


def test_native_dry_run_says_what_dbt_cloud_would_run() -> None:
    cloud = failed_build(can_retry=True)
    cloud.details = RetryDetails("dbt build", ("dbt docs generate",))
    outcome = run_restart(cloud, strategy="native", dry_run="true")
    assert (outcome.status, outcome.strategy, posts(cloud)) == ("planned", "native", [])
    assert outcome.details == ("dbt Cloud's rerun: dbt retry (of the failed step: dbt build), then dbt docs generate",)


def test_native_asks_dbt_cloud_to_rerun() -> None:
    cloud = failed_build(can_retry=True)
    cloud.details = RetryDetails("dbt build", ())
    outcome = run_restart(cloud, strategy="native")
    assert posts(cloud) == ["rerun"] and cloud.triggered == []
    assert (outcome.status, outcome.strategy, outcome.plan) == ("success", "native", None)
    assert outcome.details == ("dbt Cloud's rerun: dbt retry (of the failed step: dbt build)",)


def test_select_triggers_the_plans_steps_and_follows_the_new_run() -> None:
    cloud = failed_build()
    outcome = run_restart(cloud)
    assert posts(cloud) == ["trigger"]
    [body] = cloud.triggered
    assert outcome.plan and body["steps_override"] == outcome.plan.steps_override
    assert outcome.plan.rerun_nodes == ["model.shop.a", "model.shop.b"]
    assert body["steps_override"][0].startswith("dbt build --select ")
    assert (outcome.status, outcome.exit_code, outcome.strategy) == ("success", 0, "select")
    assert outcome.new_run and outcome.new_run.id == 101 and outcome.avoided is not None


def test_a_persistent_failure_is_not_restarted_with_restart_on_transient() -> None:
    outcome = run_restart(failed_build(), restart_on="transient")
    assert outcome.status == "skipped" and "failed persistently" in outcome.headline
    assert [f.transient for f in outcome.classified] == [False]


def test_transient_failures_are_restarted_with_restart_on_transient() -> None:
    cloud = failed_build(message="could not connect to server: connection refused")
    outcome = run_restart(cloud, restart_on="transient")
    assert posts(cloud) == ["trigger"] and [f.transient for f in outcome.classified] == [True]


def test_dry_run_plans_without_triggering() -> None:
    cloud = failed_build()
    outcome = run_restart(cloud, dry_run="true")
    assert (outcome.status, outcome.headline, posts(cloud)) == ("planned", "1 step(s) planned, not triggered", [])
    assert outcome.plan and outcome.plan.rerun_nodes == ["model.shop.a", "model.shop.b"]
    assert outcome.avoided is not None  # what the restart would save is still read


def test_a_failure_outside_the_commands_leaves_nothing_to_rerun() -> None:
    cloud = FakeCloud(runs=[run_json(100, ERROR, steps=[(1, "Clone git repository", ERROR), (*BUILD, SUCCESS)])])
    outcome = run_restart(cloud)
    assert (outcome.status, outcome.headline, posts(cloud)) == ("skipped", "nothing to rerun", [])


def test_a_cancel_during_the_delay_triggers_nothing_and_keeps_the_story() -> None:
    cloud = failed_build()
    stop = FakeStop(cancel_after=1)
    config = settings.parse({**BASE, "delay": "30"})
    outcome = execute(config, actions.Log(actions=False, stream=io.StringIO()), {}, stop, client=cloud)
    assert (outcome.status, outcome.exit_code, posts(cloud)) == ("cancelled", 128 + signal.SIGTERM, [])
    assert stop.pauses == [30.0] and outcome.headline == "cancelled before triggering"
    assert outputs.outputs_of(outcome)["previous-run-id"] == "100"
    assert outcome.plan and outcome.plan.rerun_nodes == ["model.shop.a", "model.shop.b"]
    assert "dbt build --select" in summary.summary(outcome)


def test_the_fake_stop_raises_as_the_real_one_does() -> None:
    with pytest.raises(Interrupted):
        FakeStop(cancel_after=1).sleep(5)


def test_the_decision_alone_needs_no_client() -> None:
    config = settings.parse({**BASE, "dry-run": "true"})
    run = run_from_json(failed_build().runs[0])
    assert decide.route(config, run) == "select"
    assert decide.gate(config, run, [], None) == decide.Proceed(0)
    full = decide.full_run(settings.parse(BASE), run, "cause", "[m]")
    assert full == decide.TriggerRequest(kind="full", body={"cause": "cause"}, marker="[m]", context=NewContext("keep"))


def test_what_a_restart_saves_is_read_from_the_dropped_steps() -> None:
    seeded = run_json(100, ERROR, steps=[*SETUP, (3, "Invoke dbt with `dbt seed`", SUCCESS), (4, BUILD[1], ERROR)])
    seeded["job"] = {"id": 7, "name": "nightly", "execute_steps": ["dbt seed", "dbt build"]}
    cloud = failed_build()
    build = cloud.artifacts.pop((100, "run_results.json", 3))
    seed = {"unique_id": "seed.shop.s", "status": "success", "message": None, "execution_time": 12.5}
    seeds = {**build, "args": {"which": "seed"}, "results": [seed]}
    cloud.runs[0] = seeded
    cloud.artifacts.update({(100, "run_results.json", 3): seeds, (100, "run_results.json", 4): build})
    outcome = run_restart(cloud)
    assert outcome.plan and [step.action for step in outcome.plan.steps] == ["skip", "narrow"]
    assert outcome.avoided and outcome.avoided.nodes == 2 and outcome.avoided.seconds == 12.5
    assert "get_artifact 100 run_results.json 3" in cloud.calls_made


class LosingCloud(FakeCloud):
    """dbt Cloud starting the run but losing the answer (HTTP 502); then the runs cannot be listed when
    `listing_fails`."""

    listing_fails = False

    def trigger(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        super().trigger(job_id, body)
        raise ApiError("dbt Cloud failed a new run of job 7 (HTTP 502)", 502)

    def rerun(self, job_id: int) -> dict[str, Any]:
        super().rerun(job_id)
        raise ApiError("dbt Cloud failed a rerun of job 7 (HTTP 502)", 502)

    def runs_with_cause(self, job_id: int, text: str) -> list[dict[str, Any]]:
        if self.listing_fails:
            self.calls_made.append("runs_with_cause")
            raise ApiError("dbt Cloud failed on recent runs of job 7 (HTTP 500)", 500)
        return super().runs_with_cause(job_id, text)

    def runs_retrying(self, job_id: int, run_id: int) -> list[dict[str, Any]]:
        if self.listing_fails:
            self.calls_made.append("runs_retrying")
            raise ApiError("dbt Cloud failed on recent runs of job 7 (HTTP 500)", 500)
        return super().runs_retrying(job_id, run_id)


def lost_and_unlisted(**fields: Any) -> LosingCloud:
    failed = failed_build(**fields)
    cloud = LosingCloud(runs=failed.runs, artifacts=failed.artifacts, details=failed.details)
    cloud.listing_fails = True
    return cloud


def test_a_lost_trigger_whose_search_fails_tells_the_user_a_run_may_exist() -> None:
    cloud = lost_and_unlisted()
    stream = io.StringIO()
    outcome = execute(settings.parse(BASE), actions.Log(actions=False, stream=stream), {}, FakeStop(), client=cloud)
    assert posts(cloud) == ["trigger"]  # never a second POST
    assert (outcome.status, outcome.exit_code) == ("error", 1)
    assert outcome.previous and outcome.previous.id == 100 and outcome.plan is not None
    marker = cloud.triggered[0]["cause"][cloud.triggered[0]["cause"].index("[dbt-cloud-restart") :]
    assert f"may have started: look for a run whose cause carries {marker}" in outcome.headline
    shown = summary.summary(outcome)
    assert "look in job 7 for a run whose cause carries" in shown and "Nothing was sent twice" in shown
    assert "look in job 7 for a run whose cause carries" in stream.getvalue()


def test_a_lost_native_rerun_answer_adopts_the_rerun_it_started() -> None:
    failed = failed_build(can_retry=True)
    cloud = LosingCloud(runs=failed.runs, artifacts=failed.artifacts, details=RetryDetails("dbt build", ()))
    outcome = run_restart(cloud, strategy="native")
    assert posts(cloud) == ["rerun"] and "runs_retrying" in cloud.calls_made
    assert outcome.status == "success" and outcome.new_run and outcome.new_run.id == 101


def test_a_lost_native_rerun_answer_with_no_listing_keeps_the_story_and_never_resends() -> None:
    cloud = lost_and_unlisted(can_retry=True)
    cloud.details = RetryDetails("dbt build", ())
    outcome = run_restart(cloud, strategy="native")
    assert posts(cloud) == ["rerun"]
    assert (outcome.status, outcome.exit_code) == ("error", 1) and outcome.previous
    assert "look for a run retrying run 100 (retrying_run_id 100)" in outcome.headline


def many_results(run_id: int = 100) -> dict[str, Any]:
    """A build's run_results.json with one error and 24 skipped models (enough to want manifest.json)."""
    nodes: list[dict[str, Any]] = [{"unique_id": "model.shop.a", "status": "error", "message": "boom"}]
    nodes += [{"unique_id": f"model.shop.m{i}", "status": "skipped", "message": None} for i in range(24)]
    return {
        "metadata": {"dbt_schema_version": V6, "dbt_version": "1.11.2"},
        "results": nodes,
        "args": {"which": "build"},
    }


def test_a_timed_out_run_s_interrupted_step_reads_no_manifest() -> None:
    job = {"id": 7, "name": "nightly", "execute_steps": ["dbt build"]}
    run = run_json(
        100, CANCELLED, steps=[*SETUP, (*BUILD, ERROR)], job=job, status_message="Job run timed out after 3600s"
    )
    cloud = FakeCloud(runs=[run], artifacts={(100, "run_results.json", 3): many_results()})
    outcome = run_restart(cloud, dry_run="true")
    assert outcome.plan and [step.action for step in outcome.plan.steps] == ["rerun"]
    assert not [call for call in cloud.calls_made if "manifest.json" in call]


def test_a_manifest_that_cannot_be_read_says_why_in_the_debug_log() -> None:
    cloud = failed_build()
    cloud.artifacts[(100, "run_results.json", 3)] = many_results()

    def refuse(run_id: int, path: str, step: int | None = None) -> bytes | None:
        raise ApiError(f"dbt Cloud denied access to {path} of run {run_id} step {step} (HTTP 403)", 403)

    cloud.get_artifact_bytes = refuse  # type: ignore[method-assign]
    stream = io.StringIO()
    config = settings.parse({**BASE, "dry-run": "true"})
    restart(config, cloud, actions.Log(actions=True, stream=stream, debug_enabled=True), Context(), FakeStop())
    assert "::debug::step 3: manifest.json could not be read: dbt Cloud denied access" in stream.getvalue()


SHA = "9f1c2ab3e4d5f60718293a4b5c6d7e8f90a1b2c3"
CI_TRIGGER = {
    "cause_category": "ci",
    "git_branch": "feature/x",
    "git_sha": SHA,
    "github_pull_request_id": 42,
    "schema_override": "dbt_cloud_pr_7_42",
    "threads_override": 8,
    "dbt_version_override": None,
}


def test_a_restart_keeps_the_failed_runs_context_with_payload_winning() -> None:
    cloud = failed_build(trigger=CI_TRIGGER)
    stream = io.StringIO()
    config = settings.parse(
        {**BASE, "verify": "fail", "payload": '{"threads_override": 2, "target_name_override": "ci"}'}
    )
    outcome = restart(
        config, cloud, actions.Log(actions=True, stream=stream), Context(), FakeStop(), connect=lambda: cloud
    )
    [body] = cloud.triggered
    assert {k: v for k, v in body.items() if k not in ("cause", "steps_override")} == {
        "git_branch": "feature/x",
        "git_sha": SHA,
        "github_pull_request_id": 42,
        "schema_override": "dbt_cloud_pr_7_42",
        "target_name_override": "ci",
        "threads_override": 2,
    }
    assert outcome.context and {s.key: s.source for s in outcome.context.sent}["threads_override"] == "payload"
    assert outcome.context_check and outcome.context_check.verified  # the fake's new run records what was sent
    sent = {k: v for k, v in body.items() if k not in ("cause", "steps_override")}
    assert json.loads(outputs_of(outcome)["context"]) == sent
    by_job, _ = outputs_by_job([(7, outcome), (8, Outcome(status="skipped", headline="", strategy="select"))])
    assert json.loads(by_job["context"]) == {"7": sent, "8": {}}
    assert "::notice title=Pinned commit::the new run checks out commit 9f1c2ab3e4d5 again" in stream.getvalue()


def test_job_defaults_sends_only_the_payload() -> None:
    cloud = failed_build(trigger=CI_TRIGGER)
    outcome = run_restart(cloud, context="job-defaults", payload='{"threads_override": 2}')
    [body] = cloud.triggered
    assert set(body) == {"cause", "steps_override", "threads_override"}
    assert outcome.context is not None  # threads_override is payload's: sent, not left
    assert [item.key for item in outcome.context.left] == [
        "git_branch",
        "git_sha",
        "github_pull_request_id",
        "schema_override",
    ]


def test_a_scheduled_runs_restart_sends_no_override() -> None:
    cloud = failed_build(trigger={k: None for k in CI_TRIGGER} | {"cause_category": "scheduled"})
    outcome = run_restart(cloud, verify="fail")
    [body] = cloud.triggered
    assert set(body) == {"cause", "steps_override"}
    assert outcome.context == NewContext("keep") and outcome.context_check and outcome.context_check.verified


@pytest.mark.parametrize(("mode", "code"), [("fail", 1), ("warn", 0), ("off", 0)])
def test_a_new_run_without_the_context_sent_is_not_verified(mode: str, code: int) -> None:
    cloud = failed_build(trigger=CI_TRIGGER)
    original = cloud.trigger

    def ignoring_schema(job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        run = original(job_id, body)
        del cloud.runs[0]["trigger"]["schema_override"]  # dbt Cloud dropped it: the default schema
        return run

    cloud.trigger = ignoring_schema  # type: ignore[method-assign]
    outcome = run_restart(cloud, verify=mode)
    assert outcome.exit_code == code
    if mode == "off":
        assert outcome.context_check is None and outputs_of(outcome)["verified"] == ""
        return
    assert outcome.context_check and outcome.context_check.differences == (
        "schema_override: sent 'dbt_cloud_pr_7_42', its trigger records none",
    )
    assert outputs_of(outcome)["verified"] == "false"
    assert outcome.headline.endswith(", not verified") == (mode == "fail")


def test_a_context_that_cannot_be_read_stops_the_restart_before_the_trigger() -> None:
    cloud = failed_build(trigger={"schema_override": ["a", "b"]})
    outcome = run_restart(cloud)
    assert (outcome.status, outcome.exit_code, posts(cloud)) == ("error", 1, [])
    assert "records schema_override in a form this tool cannot read" in outcome.headline
    assert run_restart(cloud, payload='{"schema_override": "s"}').status == "success"


def test_a_full_run_keeps_the_context_of_the_run_that_succeeded() -> None:
    cloud = FakeCloud(runs=[run_json(100, SUCCESS, trigger={"schema_override": "s1", "git_branch": "release"})])
    outcome = run_restart(cloud, if_previous_succeeded="run", payload='{"git_branch": null}', verify="fail")
    [body] = cloud.triggered
    assert {k: v for k, v in body.items() if k != "cause"} == {"schema_override": "s1"}
    assert outcome.context and [(x.key, x.why) for x in outcome.context.left] == [
        ("git_branch", "`payload` sets it to null")
    ]
    assert outcome.context_check and outcome.context_check.verified and outcome.exit_code == 0


def test_a_run_started_with_its_own_steps_is_planned_from_them() -> None:
    cloud = failed_build(trigger={"steps_override": ["dbt seed", "dbt build"]})
    seeded = [*SETUP, (3, "Invoke dbt with `dbt seed`", SUCCESS), (4, BUILD[1], ERROR)]
    cloud.runs[0]["run_steps"] = [{"index": i, "name": n, "status": st} for i, n, st in seeded]
    cloud.artifacts[(100, "run_results.json", 4)] = cloud.artifacts.pop((100, "run_results.json", 3))
    outcome = run_restart(cloud)
    assert outcome.plan and [step.action for step in outcome.plan.steps] == ["skip", "narrow"]
    [body] = cloud.triggered
    assert body["steps_override"] == [outcome.plan.steps[1].new_command]
    assert "steps_override" not in (outcome.context.body if outcome.context else {})
