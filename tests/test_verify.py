"""Verification of a restart and the work it avoided, on hand-made runs (pure: no emulator)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from restart import cli, outputs, summary
from restart.artifacts import NodeResult, RunResults, parse_run_results
from restart.avoided import Avoided, avoided, dropped_to_read, duration
from restart.avoided import headline as avoided_headline
from restart.outcome import Outcome
from restart.plan import Plan, StepArtifacts, StepPlan, make_plan
from restart.records import ERROR, SUCCESS, Run, Step, run_from_json, step_seconds
from restart.verify import Verdict, check_context, complaint, context_complaint, headline, verify
from tests.factories import SETUP, make_run

COMMANDS = ["dbt seed", "dbt run --select staging+", "dbt test"]
FAILED_RESULTS = RunResults(
    (
        NodeResult("operation.shop.shop-on-run-start-0", "success", "", execution_time=0.5),
        NodeResult("model.shop.a", "success", "", execution_time=10.0),
        NodeResult("model.shop.b", "error", "boom", execution_time=1.0),
        NodeResult("model.shop.c", "skipped", "", execution_time=0.0),
    ),
    {"which": "run", "select": ["staging+"]},
)
SEEDS = RunResults(
    tuple(NodeResult(f"seed.shop.raw_{n}", "success", "", execution_time=2.0) for n in ("a", "b", "c")),
    {"which": "seed"},
)


def failed_run() -> Run:
    run = make_run(COMMANDS, [SUCCESS, ERROR])
    steps = tuple(replace(s, seconds=30.0) if s.index == 4 else s for s in run.steps)
    return replace(run, steps=steps, duration="2 minutes")


def planned() -> Plan:
    return make_plan(failed_run(), {5: StepArtifacts(FAILED_RESULTS)})


def new_run(plan: Plan, statuses: list[int], *, status: int = SUCCESS) -> Run:
    names = [(n, SUCCESS) for n in SETUP]
    names += [(f"Invoke dbt with `{c}`", s) for c, s in zip(plan.steps_override, statuses, strict=False)]
    steps = tuple(Step(i + 1, n, s) for i, (n, s) in enumerate(names))
    return replace(failed_run(), id=101, status=status, steps=steps, steps_override=tuple(plan.steps_override))


def ran(*uids: str, status: str = "success") -> list[NodeResult]:
    return [NodeResult(uid, status) for uid in uids]


def test_the_plan_keeps_what_a_narrowed_step_does_not_rerun() -> None:
    plan = planned()
    narrowed = plan.steps[1]
    assert narrowed.action == "narrow" and narrowed.nodes == ("model.shop.b", "model.shop.c")
    assert [r.unique_id for r in narrowed.kept] == ["model.shop.a"], "hooks rerun with every invocation"


def test_every_planned_node_ran_is_verified() -> None:
    plan = planned()
    verdict = verify(plan, new_run(plan, [SUCCESS, SUCCESS]), {4: ran("model.shop.c", "model.shop.b")})
    assert verdict.verified and verdict.missing == () and verdict.unplanned == ()
    assert (verdict.planned, verdict.ran) == (2, 2)
    assert [s.new_index for s in verdict.steps] == [4, 5]
    assert headline(verdict) == "Verified: 2 of 2 planned nodes ran; 1 of 1 steps rerun as written ran"
    assert complaint(verdict, 101) == ""


def test_any_status_counts_as_having_run() -> None:
    plan = planned()
    results = {4: [NodeResult("model.shop.b", "error"), NodeResult("model.shop.c", "skipped")]}
    verdict = verify(plan, new_run(plan, [ERROR], status=ERROR), results)
    assert verdict.missing == () and verdict.ran == 2
    assert not verdict.verified and [s.plan.command for s in verdict.unreached] == ["dbt test"]


def test_a_planned_node_that_did_not_run_is_named_with_the_likely_causes() -> None:
    plan = planned()
    verdict = verify(plan, new_run(plan, [SUCCESS, SUCCESS]), {4: ran("model.shop.b")})
    assert not verdict.verified and verdict.missing == ("model.shop.c",)
    why = complaint(verdict, 101)
    assert why.startswith("run 101 succeeded but 1 planned node(s) did not run: model.shop.c.")
    assert "renamed or deleted" in why and "dbt version" in why and "bug" in why
    assert headline(verdict) == (
        "Not verified: 1 of 2 planned nodes ran; 1 of 1 steps rerun as written ran; missing: model.shop.c"
    )


def test_many_missing_nodes_name_the_first_few() -> None:
    uids = tuple(f"model.shop.m{i}" for i in range(12))
    plan = Plan((StepPlan("dbt run", 4, "narrow", "failed", "dbt run --select m+", nodes=uids),))
    verdict = verify(plan, new_run(plan, [SUCCESS]), {4: []})
    assert len(verdict.missing) == 12
    assert "model.shop.m4 and 7 more." in complaint(verdict, 101)


def test_a_step_never_reached_misses_all_its_nodes() -> None:
    plan = planned()
    verdict = verify(plan, new_run(plan, []), {})
    assert verdict.missing == ("model.shop.b", "model.shop.c") and verdict.ran == 0


def test_nodes_that_ran_but_were_not_planned_are_reported() -> None:
    plan = planned()
    results = {4: ran("model.shop.b", "model.shop.c", "model.shop.z", "operation.shop.shop-on-run-end-0")}
    verdict = verify(plan, new_run(plan, [SUCCESS, SUCCESS]), results)
    assert verdict.unplanned == ("model.shop.z",) and verdict.verified
    assert headline(verdict).endswith("ran; 1 unplanned node(s) ran too: model.shop.z")


def test_results_that_cannot_be_read_are_unverified_but_prove_nothing_missing() -> None:
    plan = planned()
    verdict = verify(plan, new_run(plan, [SUCCESS, SUCCESS]), {})
    assert not verdict.verified and verdict.missing == () and [s.new_index for s in verdict.unknown] == [4]
    assert complaint(verdict, 101) == ""
    assert "could not be read" in headline(verdict)


def test_a_per_node_check_can_add_problems() -> None:
    plan = planned()

    def batches(step: StepPlan, result: NodeResult) -> str:
        return "2 of 5 batches ran" if result.unique_id == "model.shop.b" else ""

    verdict = verify(plan, new_run(plan, [SUCCESS, SUCCESS]), {4: ran("model.shop.b", "model.shop.c")}, [batches])
    assert not verdict.verified and [p.unique_id for p in verdict.problems] == ["model.shop.b"]
    assert "model.shop.b: 2 of 5 batches ran" in complaint(verdict, 101)


def test_avoided_work_counts_kept_nodes_and_dropped_steps() -> None:
    plan = planned()
    assert list(dropped_to_read(plan)) == [4]
    saved = avoided(plan, failed_run(), {4: SEEDS})
    assert saved == Avoided(nodes=4, seconds=40.0, unknown_steps=(), previous_nodes=6, previous_partial=False)
    assert avoided_headline(saved) == "Skipped 4 nodes that already succeeded: about 40 s of warehouse time"


def test_a_dropped_step_without_results_counts_by_its_time() -> None:
    plan = planned()
    for dropped in ({}, {4: None}, {4: RunResults(SEEDS.results, {"which": "run"})}):
        saved = avoided(plan, failed_run(), dropped)
        assert (saved.nodes, saved.seconds, saved.unknown_steps, saved.previous_partial) == (1, 40.0, (4,), True)
    assert "(and 1 step whose nodes are not known)" in avoided_headline(saved)


def test_a_dropped_step_without_a_duration_counts_its_nodes_times() -> None:
    plan = planned()
    run = failed_run()
    run = replace(run, steps=tuple(replace(s, seconds=None) for s in run.steps))
    assert avoided(plan, run, {4: SEEDS}).seconds == 16.0


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0 s"), (44.6, "45 s"), (372, "6 min 12 s"), (120, "2 min"), (3780, "1 h 3 min")]
)
def test_durations_read_naturally(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_step_durations_come_from_the_api() -> None:
    assert step_seconds({"duration": "00:06:12"}) == 372
    stamps = {"started_at": "2026-11-24 21:18:03.5+00:00", "finished_at": "2026-11-24 21:18:10.5+00:00"}
    assert step_seconds({"duration": None, **stamps}) == 7.0
    assert step_seconds({"duration": "soon", "started_at": "x", "finished_at": None}) is None
    step = {"index": 4, "name": "Invoke dbt with `dbt seed`", "status": 10, "duration": "00:00:09"}
    assert run_from_json({"id": 1, "job_definition_id": 2, "status": 10, "run_steps": [step]}).steps[0].seconds == 9


def test_execution_time_is_read_leniently_and_never_compared() -> None:
    document = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
        "results": [
            {"unique_id": "model.p.a", "status": "success", "execution_time": 1.25},
            {"unique_id": "model.p.b", "status": "success", "execution_time": "slow"},
            {"unique_id": "model.p.c", "status": "success"},
        ],
    }
    times = [r.execution_time for r in parse_run_results(document).results]
    assert times == [1.25, 0.0, 0.0]
    assert NodeResult("model.p.a", "success", "", execution_time=3.0) == NodeResult("model.p.a", "success")


def outcome(verdict: Verdict | None, saved: Avoided | None, **fields: Any) -> Outcome:
    plan = planned()
    new = new_run(plan, [SUCCESS, SUCCESS])
    return Outcome(
        status="success",
        headline="run #101 success",
        strategy="select",
        exit_code=0,
        previous=failed_run(),
        plan=plan,
        new_run=new,
        verdict=verdict,
        avoided=saved,
        **fields,
    )


def test_outputs_say_verified_missing_and_avoided() -> None:
    plan = planned()
    missing = verify(plan, new_run(plan, [SUCCESS, SUCCESS]), {4: ran("model.shop.b")})
    values = outputs.outputs_of(outcome(missing, Avoided(4, 40.04)))
    assert values["verified"] == "false" and json.loads(values["missing-nodes"]) == ["model.shop.c"]
    assert (values["avoided-nodes"], values["avoided-seconds"]) == ("4", "40.0")
    assert cli.decoded(values)["verified"] is False and cli.decoded(values)["avoided-seconds"] == 40.0
    unknown = outputs.outputs_of(outcome(None, None))
    assert (unknown["verified"], unknown["missing-nodes"], unknown["avoided-nodes"]) == ("", "[]", "")
    assert cli.decoded(unknown)["verified"] is None and cli.decoded(unknown)["avoided-nodes"] is None


def test_summary_says_what_was_saved_the_verdict_and_compares_both_runs() -> None:
    plan = planned()
    verdict = verify(plan, new_run(plan, [SUCCESS, SUCCESS]), {4: ran("model.shop.b", "model.shop.c")})
    results = {4: ran("model.shop.b", "model.shop.c"), 5: ran("test.shop.t", status="pass")}
    text = summary.summary(outcome(verdict, Avoided(41, 372.0, (), 45), new_results=results))
    lines = text.splitlines()
    assert lines[2] == "**Skipped 41 nodes that already succeeded: about 6 min 12 s of warehouse time**"
    assert "- ✅ Verified: 2 of 2 planned nodes ran; 1 of 1 steps rerun as written ran" in lines
    assert "| Duration | 2 minutes | 2 minutes |" in lines
    assert "| Nodes | 45 (1 step not reached) | 3 |" in lines


def test_summary_of_a_restart_not_verified_warns() -> None:
    plan = planned()
    verdict = verify(plan, new_run(plan, [SUCCESS, SUCCESS]), {4: ran("model.shop.b")})
    text = summary.summary(replace(outcome(verdict, Avoided(1, 10.0)), exit_code=1))
    assert text.startswith("## ⚠️ dbt Cloud restart")
    assert "- ⚠️ Not verified: 1 of 2 planned nodes ran" in text and "missing: model.shop.c" in text


def test_outputs_too_big_for_github_shorten_the_node_lists() -> None:
    uids = [f"model.shop.{'m' * 90}{i}" for i in range(12_000)]
    values = {"status": "success", "rerun-nodes": json.dumps(uids), "missing-nodes": json.dumps(uids)}
    fitted, warning = outputs.fit_outputs(values)
    assert sum(len(v.encode()) for v in fitted.values()) <= outputs.OUTPUT_BUDGET
    assert json.loads(fitted["rerun-nodes"]) == [] and 0 < len(json.loads(fitted["missing-nodes"])) < len(uids)
    assert "output rerun-nodes lists 0 of 12000" in warning and "output missing-nodes lists" in warning


def test_outputs_of_several_jobs_keep_within_githubs_limit_too() -> None:
    uids = tuple(f"model.shop.{'m' * 90}{i}" for i in range(6_000))  # ~0.6 MB of rerun-nodes per job
    plan = Plan((StepPlan("dbt build", 4, "rerun", "failed", "dbt build --select ...", nodes=uids),))
    outcomes = [(job, Outcome(status="planned", headline="p", strategy="select", plan=plan)) for job in (1, 2)]
    values, warning = outputs.outputs_by_job(outcomes)
    assert sum(len(v.encode()) for v in values.values()) <= outputs.OUTPUT_BUDGET
    kept = json.loads(values["rerun-nodes"])
    assert set(kept) == {"1", "2"} and all(0 < len(kept[job]) < len(uids) for job in kept)
    assert "job 1: output rerun-nodes lists" in warning and "job 2: output rerun-nodes lists" in warning


@pytest.mark.parametrize(
    ("sent", "trigger", "differences"),
    [
        ({}, {"cause": "c", "schema_override": None}, ()),
        ({"schema_override": "s", "threads_override": 2}, {"schema_override": "s", "threads_override": 2}, ()),
        ({"schema_override": "s"}, {"cause": "c"}, ("schema_override: sent 's', its trigger records none",)),
        ({}, {"git_branch": "main"}, ()),  # what dbt Cloud fills in by itself is not held against it
        ({"threads_override": 2}, {"threads_override": 3}, ("threads_override: sent 2, its trigger records 3",)),
        (
            {"generate_docs_override": True},
            {"generate_docs_override": 1},
            ("generate_docs_override: sent True, its trigger records a value this tool cannot read",),
        ),
        (
            {"schema_override": "s"},
            {"schema_override": 5},
            ("schema_override: sent 's', its trigger records a value this tool cannot read",),
        ),
    ],
)
def test_the_new_runs_trigger_must_carry_the_context_sent(
    sent: dict[str, object], trigger: dict[str, object], differences: tuple[str, ...]
) -> None:
    new = run_from_json({"id": 2, "job_definition_id": 7, "status": 10, "trigger": trigger})
    check = check_context(sent, new)
    assert (check.differences, check.verified) == (differences, not differences)
    complaint = context_complaint(check, 2)
    assert bool(complaint) == bool(differences)
    assert not differences or complaint.startswith("run 2 did not run in the context it was triggered with")


def test_a_new_run_read_without_its_trigger_is_not_verified_but_not_blamed() -> None:
    new = run_from_json({"id": 2, "job_definition_id": 7, "status": 10})
    check = check_context({"schema_override": "s"}, new)
    assert (check.unknown, check.verified, context_complaint(check, 2)) == (True, False, "")
