"""The pure decisions after the trigger (`restart.decide`): how the wait ended -> the outcome and what to
log; the commit status; the verify gate. Table-driven, data in and data out: no client, no clock."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from restart import decide, settings
from restart.outcome import Outcome
from restart.records import CANCELLED, ERROR, RUNNING, SUCCESS
from restart.verify import ContextCheck, verify
from tests.factories import run_record
from tests.test_verify import new_run, planned, ran

BASE = {"dbt-cloud-token": "t", "account-id": "1", "job-id": "7"}
PREVIOUS = run_record(id=100)
REQUEST = decide.TriggerRequest(kind="select", body={}, marker="[m]", plan=planned(), details=("said",))


def config(**inputs: str) -> settings.Settings:
    return settings.parse({**BASE, **{k.replace("_", "-"): v for k, v in inputs.items()}})


@pytest.mark.parametrize(
    ("ending", "status", "inputs", "detail", "expected"),
    [
        ("not-waited", RUNNING, {}, "", ("running", "run #101 started", 0, (), ("said",))),
        (
            "lost",
            RUNNING,
            {},
            "HTTP 401",
            ("running", "run #101 started; HTTP 401", 1, (("error", "lost track of run 101: HTTP 401"),), ("said",)),
        ),
        (
            "interrupted",
            RUNNING,
            {},
            "Run #101 was cancelled.",
            (
                "cancelled",
                "interrupted; Run #101 was cancelled.",
                143,
                (("error", "the workflow was cancelled while run 101 was running. Run #101 was cancelled."),),
                ("said", "Run #101 was cancelled."),
            ),
        ),
        (
            "timed-out",
            RUNNING,
            {"timeout": "60"},
            "Run #101 was cancelled.",
            (
                "timeout",
                "run #101 timed out",
                1,
                (("error", "run 101 did not finish within 60s"),),
                ("said", "Run #101 was cancelled."),
            ),
        ),
        (
            "timed-out",
            RUNNING,
            {"cancel_on_timeout": "false"},
            "",
            ("timeout", "run #101 timed out", 1, None, ("said",)),
        ),
        ("finished", SUCCESS, {}, "", ("success", "run #101 success", 0, (), ("said",))),
        (
            "finished",
            ERROR,
            {},
            "",
            ("error", "run #101 error", 1, (("error", "run 101 ended error: Database Error"),), ("said",)),
        ),
        ("finished", ERROR, {"fail_on_run_failure": "false"}, "", ("error", "run #101 error", 0, None, ("said",))),
        ("finished", CANCELLED, {}, "", ("cancelled", "run #101 cancelled", 1, None, ("said",))),
    ],
)
def test_how_the_wait_ended_decides_the_outcome(
    ending: decide.Ending, status: int, inputs: dict[str, str], detail: str, expected: tuple[Any, ...]
) -> None:
    new = run_record(id=101, status=status, status_message="Database Error" if status == ERROR else "")
    ended = decide.after_wait(config(**inputs), PREVIOUS, REQUEST, new, ending, detail=detail, signal_exit=143)
    outcome = ended.outcome
    status_name, headline, code, said, details = expected
    assert (outcome.status, outcome.headline, outcome.exit_code, outcome.details) == (
        status_name,
        headline,
        code,
        details,
    )
    if said is not None:
        assert tuple((line.level, line.text) for line in ended.say) == said
    assert (outcome.previous, outcome.plan, outcome.new_run) == (PREVIOUS, REQUEST.plan, new)
    assert outcome.interrupted is (ending == "interrupted")


def test_a_trigger_that_may_have_started_a_run_names_what_to_look_for() -> None:
    ended = decide.trigger_unknown(config(), PREVIOUS, REQUEST, "a run whose cause carries [m]", "lost and unlisted")
    outcome = ended.outcome
    assert (outcome.status, outcome.exit_code, outcome.new_run) == ("error", 1, None)
    assert outcome.headline == "a run of job 7 may have started: look for a run whose cause carries [m]"
    assert outcome.previous == PREVIOUS and outcome.plan == REQUEST.plan
    assert "look in job 7 for a run whose cause carries [m]" in outcome.details[1]
    assert [(line.level, line.text) for line in ended.say] == [("error", "lost and unlisted")]


def test_a_cancel_before_the_trigger_keeps_what_was_found() -> None:
    outcome = decide.cancelled_before_trigger(config(), PREVIOUS, REQUEST.plan, 130).outcome
    assert (outcome.status, outcome.exit_code, outcome.previous, outcome.plan) == (
        "cancelled",
        130,
        PREVIOUS,
        REQUEST.plan,
    )
    assert outcome.interrupted and outcome.new_run is None


NEW = run_record(id=101, status=SUCCESS)


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (Outcome(status="skipped", headline="", strategy="select"), None),
        (Outcome(status="running", headline="", strategy="select", new_run=NEW), "pending"),
        (Outcome(status="success", headline="", strategy="select", new_run=NEW), "success"),
        (Outcome(status="success", headline="", strategy="select", new_run=NEW, exit_code=1), "failure"),
        (Outcome(status="error", headline="", strategy="select", new_run=NEW), "failure"),
        (Outcome(status="timeout", headline="", strategy="select", new_run=NEW, exit_code=1), "failure"),
        (Outcome(status="cancelled", headline="", strategy="select", new_run=NEW, exit_code=143), "failure"),
    ],
)
def test_the_commit_status_follows_the_outcome(outcome: Outcome, state: decide.ReportState | None) -> None:
    assert decide.report_state(outcome) == state


@pytest.mark.parametrize(
    ("mode", "code", "headline", "levels"),
    [("fail", 1, "run #101 success, not verified", ["error"]), ("warn", 0, "run #101 success", ["warning"])],
)
def test_a_success_that_left_planned_work_undone_fails_or_warns(
    mode: str, code: int, headline: str, levels: list[str]
) -> None:
    plan = planned()
    new = new_run(plan, [SUCCESS, SUCCESS])
    outcome = Outcome(status="success", headline="run #101 success", strategy="select", new_run=new, plan=plan)
    verdict = verify(plan, new, {4: ran("model.shop.b")})
    judged = decide.judge(config(verify=mode), outcome, verdict)
    assert (judged.outcome.exit_code, judged.outcome.headline, judged.outcome.verdict) == (code, headline, verdict)
    assert [line.level for line in judged.say] == levels and "model.shop.c" in judged.say[-1].text


def test_a_run_that_did_the_planned_work_passes_the_gate_silently() -> None:
    plan = planned()
    new = new_run(plan, [SUCCESS, SUCCESS])
    outcome = Outcome(status="success", headline="h", strategy="select", new_run=new, plan=plan)
    judged = decide.judge(config(), outcome, verify(plan, new, {4: ran("model.shop.c", "model.shop.b")}))
    assert (judged.outcome, judged.say) == (replace(outcome, verdict=judged.outcome.verdict), ())
    assert judged.outcome.verdict and judged.outcome.verdict.verified


@pytest.mark.parametrize(
    ("mode", "differences", "unknown", "code", "levels"),
    [
        ("fail", ("schema_override: sent 'dbt_ctx', recorded None",), False, 1, ["error"]),
        ("warn", ("schema_override: sent 'dbt_ctx', recorded None",), False, 0, ["warning"]),
        ("fail", (), False, 0, []),
        ("fail", (), True, 0, ["warning"]),
    ],
)
def test_a_new_run_in_another_context_fails_or_warns_as_undone_work_does(
    mode: str, differences: tuple[str, ...], unknown: bool, code: int, levels: list[str]
) -> None:
    outcome = Outcome(status="success", headline="run #101 success", strategy="select", new_run=NEW)
    check = ContextCheck(differences, unknown)
    judged = decide.judge_context(config(verify=mode), outcome, check)
    assert (judged.outcome.exit_code, judged.outcome.context_check) == (code, check)
    assert [line.level for line in judged.say] == levels
    assert judged.outcome.headline.endswith("not verified") == (code == 1)


@pytest.mark.parametrize(
    ("run", "problem"),
    [
        (run_record(id=100), ""),
        (run_record(id=100, job_id=8), "run 100 belongs to job 8, not to job-id 7"),
        (run_record(id=100, status=RUNNING), "run 100 is still running: wait for it to finish before restarting"),
    ],
)
def test_the_run_to_restart_is_a_finished_run_of_the_job(run: Any, problem: str) -> None:
    assert decide.previous_problem(config(), run) == problem


@pytest.mark.parametrize(
    ("mode", "busy", "status", "headline"),
    [
        ("skip", decide.Busy(run_record(id=9, status=RUNNING)), "skipped", "run 9 of job 7 is running"),
        ("fail", decide.Busy(run_record(id=9, status=RUNNING)), "error", "run 9 of job 7 is running"),
        (
            "wait",
            decide.Busy(run_record(id=9, status=RUNNING), 60.0),
            "skipped",
            "run 9 of job 7 is running after waiting 60s",
        ),
    ],
)
def test_a_busy_job_is_a_decision_over_its_active_run(mode: str, busy: decide.Busy, status: str, headline: str) -> None:
    gated = decide.gate(config(if_job_running=mode), PREVIOUS, [busy.run, PREVIOUS], busy)
    assert isinstance(gated, decide.Finished)
    assert (gated.outcome.status, gated.outcome.headline) == (
        status,
        f"{headline}: not starting another run of the job",
    )
    assert decide.busy_with([run_record(id=10, status=RUNNING), busy.run, PREVIOUS]) == busy.run  # the oldest
