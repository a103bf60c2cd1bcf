"""Microbatch models in the pure planner: failed batches read, windows chosen, commands rendered, checked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from restart import commands as cmds
from restart.artifacts import BatchResults, NodeResult, RunResults, parse_run_results
from restart.avoided import avoided
from restart.avoided import headline as avoided_headline
from restart.microbatch import (
    MAX_WINDOW_STEPS,
    BatchStep,
    ModelBatches,
    batches_avoided,
    batches_rebuilt,
    failed_batches_rebuilt,
    flag_value,
    from_result,
    plan_windows,
)
from restart.plan import Plan, StepArtifacts, make_plan
from restart.records import ERROR, SUCCESS, Run, Step
from restart.summary import _step_cell
from restart.verify import verify
from tests.exactness.harness import started_batches
from tests.factories import SETUP, make_run

EVENTS = "model.shop.mb_events"
SESSIONS = "model.shop.mb_sessions"
BACKFILL = "dbt build --vars '{microbatch: true}' --event-time-start 2026-11-01 --event-time-end 2026-11-05"


def day(n: int) -> tuple[str, str]:
    """The daily batch of 2026-11-<n> as dbt writes it."""
    start = datetime(2026, 11, n, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1)).isoformat()


DBT_VERSION = "1.11.1"  # microbatch models need dbt 1.9+; `file:` matches stems from 1.6


def window(first: int, after: int) -> tuple[datetime, datetime]:
    return datetime(2026, 11, first, tzinfo=UTC), datetime(2026, 11, after, tzinfo=UTC)


def partial(unique_id: str, failed: list[int], days: range = range(1, 5)) -> NodeResult:
    batches = BatchResults(tuple(day(n) for n in days if n not in failed), tuple(day(n) for n in failed))
    return NodeResult(unique_id, "partial success", "batches failed", batches)


def plan_of(command: str, *nodes: NodeResult) -> list[tuple[str | None, tuple[str, ...]]]:
    found = StepArtifacts(RunResults(nodes, {"which": cmds.parse(command).name}, dbt_version=DBT_VERSION))
    plan = make_plan(make_run([command], [ERROR]), {4: found})
    return [(s.sent, s.nodes) for s in plan.steps]


def test_one_failed_batch_is_rebuilt_alone_before_the_rest_of_the_step() -> None:
    steps = plan_of(BACKFILL, partial(EVENTS, [3]), NodeResult("model.shop.mb_daily", "skipped"))
    assert steps == [
        (
            "dbt build --vars '{microbatch: true}' --select file:mb_events,resource_type:model,package:shop"
            " --indirect-selection empty --event-time-start 2026-11-03 --event-time-end 2026-11-04",
            (EVENTS,),
        ),
        (
            f"{BACKFILL} --select file:mb_daily,resource_type:model,package:shop --indirect-selection empty",
            ("model.shop.mb_daily",),
        ),
    ]


def test_the_plan_says_which_batches_failed() -> None:
    found = StepArtifacts(RunResults((partial(EVENTS, [3]),), {"which": "build"}, dbt_version=DBT_VERSION))
    [step] = make_plan(make_run([BACKFILL], [ERROR]), {4: found}).steps
    described = "mb_events: 1 of 4 daily batches failed (2026-11-03); rebuilding that batch only"
    assert step.reason == described and described in _step_cell(step)
    assert step.batches is not None and step.batches.window == window(3, 4)
    assert [f.unique_id for f in step.failures] == [EVENTS]


def test_a_model_failing_in_every_batch_or_without_batch_results_reruns_with_the_step() -> None:
    every = NodeResult(EVENTS, "error", "boom", BatchResults((), (day(1), day(2))))
    unknown = NodeResult(SESSIONS, "partial success", "", None)
    [(sent, nodes)] = plan_of(BACKFILL, every, unknown)
    assert sent is not None and "--event-time-start 2026-11-01 --event-time-end 2026-11-05" in sent
    assert nodes == (EVENTS, SESSIONS)
    assert from_result(every) is None and from_result(unknown) is None


def test_the_rest_keeps_a_model_that_failed_in_every_batch_on_the_commands_window() -> None:
    every = NodeResult(EVENTS, "error", "boom", BatchResults((), (day(1),)))
    steps = plan_of("dbt run", every, partial(SESSIONS, [2]))
    assert steps[0] == (
        "dbt run --select file:mb_sessions,resource_type:model,package:shop"
        " --event-time-start 2026-11-02 --event-time-end 2026-11-03",
        (SESSIONS,),
    )
    assert steps[1] == ("dbt run --select file:mb_events,resource_type:model,package:shop", (EVENTS,))


@pytest.mark.parametrize("flag", ["--full-refresh", "-f", "--sample '3 days'", "--sample='3 days'"])
def test_a_full_refresh_or_a_sample_keeps_the_commands_window(flag: str) -> None:
    [(sent, nodes)] = plan_of(f"{BACKFILL} {flag}", partial(EVENTS, [3]))
    assert sent is not None and "--event-time-start 2026-11-01" in sent and nodes == (EVENTS,)


def test_two_windows_of_one_model_are_two_steps_and_it_is_listed_once() -> None:
    found = StepArtifacts(RunResults((partial(EVENTS, [2, 4]),), {"which": "build"}, dbt_version=DBT_VERSION))
    plan = make_plan(make_run([BACKFILL], [ERROR]), {4: found})
    assert [s.sent.split("--event-time-start ")[1] for s in plan.steps if s.sent] == [
        "2026-11-02 --event-time-end 2026-11-03",
        "2026-11-04 --event-time-end 2026-11-05",
    ]
    assert plan.rerun_nodes == [EVENTS]
    assert "2 of 4 daily batches failed (2026-11-02, 2026-11-04); rebuilding those batches only" in plan.steps[0].reason
    assert "one step per window of failed batches (2 steps), exact" in plan.steps[0].reason


def test_adjacent_failed_batches_and_models_failing_the_same_batches_share_a_step() -> None:
    models = [from_result(partial(EVENTS, [2, 3])), from_result(partial(SESSIONS, [2, 3]))]
    [step] = plan_windows([m for m in models if m is not None])
    assert step.window == window(2, 4) and step.unique_ids == (EVENTS, SESSIONS) and not step.covering


def test_past_the_limit_one_covering_window_is_chosen_and_says_what_it_rebuilds_again() -> None:
    days = range(1, 10)
    failed = [2, 4, 6, 8][: MAX_WINDOW_STEPS + 1]
    model = from_result(partial(EVENTS, failed, days))
    assert model is not None
    [step] = plan_windows([model])
    assert step.covering and step.window == window(2, 9) and step.redone == 3
    assert "smallest window covering every failed batch (2026-11-02 to 2026-11-09, end excluded" in step.describe(1)
    assert batches_avoided([step]) == 2


def test_batches_avoided_counts_the_successful_batches_no_step_rebuilds() -> None:
    models = [m for m in (from_result(partial(EVENTS, [3])), from_result(partial(SESSIONS, [1, 2]))) if m]
    steps = plan_windows(models)
    assert batches_avoided(steps) == 3 + 2
    assert batches_avoided([]) == 0


def test_batches_rebuilt_names_the_failed_batches_the_new_run_did_not_build() -> None:
    model = from_result(partial(EVENTS, [2, 3]))
    assert model is not None
    rebuilt = BatchResults((day(2), day(3)), ())
    assert batches_rebuilt([model], {EVENTS: rebuilt}) == {}
    # a retry lists the earlier run's batches too: only coverage of the failed ones counts
    assert batches_rebuilt([model], {EVENTS: BatchResults((day(1), day(2), day(4)), (day(3),))}) == {
        EVENTS: (window(3, 4),)
    }
    assert batches_rebuilt([model], {}) == {EVENTS: (window(2, 3), window(3, 4))}
    assert batches_rebuilt([model], {EVENTS: BatchResults((("not a time", "x"),), ())}) == {
        EVENTS: (window(2, 3), window(3, 4))
    }


def test_a_partial_last_batch_counts_as_rebuilt_by_its_whole_batch() -> None:
    stopped = "2026-11-04T02:13:11.5+00:00"
    model = ModelBatches(
        EVENTS, (window(3, 4),), ((datetime(2026, 11, 4, tzinfo=UTC), datetime.fromisoformat(stopped)),)
    )
    [step] = plan_windows([model])
    assert (flag_value(step.window[0]), flag_value(step.window[1], up=True)) == ("2026-11-04", "2026-11-04T02:13:12")
    assert batches_rebuilt([model], {EVENTS: BatchResults((day(4),), ())}) == {}


@pytest.mark.parametrize(
    ("moment", "up", "shown"),
    [
        (datetime(2026, 11, 3, tzinfo=UTC), False, "2026-11-03"),
        (datetime(2026, 11, 3, 5, 0, 0, 1, tzinfo=UTC), False, "2026-11-03T05:00:00"),
        (datetime(2026, 11, 3, 23, 59, 59, 1, tzinfo=UTC), True, "2026-11-04"),
        (datetime(2026, 11, 3, 1, tzinfo=UTC).astimezone(UTC).replace(tzinfo=None), False, "2026-11-03T01:00:00"),
        (datetime.fromisoformat("2026-11-03T02:00:00+02:00"), False, "2026-11-03"),
    ],
)
def test_flag_values_are_utc_to_the_second(moment: datetime, up: bool, shown: str) -> None:
    assert flag_value(moment, up=up) == shown


@pytest.mark.parametrize(
    ("length", "label", "size"),
    [(timedelta(hours=1), "2026-11-03T00:00", "hourly"), (timedelta(days=30), "2026-11", "monthly")],
)
def test_batch_sizes_name_the_batches(length: timedelta, label: str, size: str) -> None:
    start = datetime(2026, 11, 3, tzinfo=UTC)
    model = ModelBatches(EVENTS, ((start - length, start),), ((start, start + length),))
    assert model.describe() == f"mb_events: 1 of 2 {size} batches failed ({label}); rebuilding that batch only"


def test_many_failed_batches_are_listed_in_part() -> None:
    model = from_result(partial(EVENTS, list(range(2, 10)), range(1, 10)))
    assert model is not None
    assert "8 of 9 daily batches failed (2026-11-02, 2026-11-03, 2026-11-04, 2026-11-05, 2026-11-06, and 3 more)" in (
        model.describe()
    )


def test_event_time_flags_are_replaced_and_everything_else_kept() -> None:
    command = cmds.parse(
        "dbt build --event-time-start=2026-10-01 --vars '{a: \"b c\"}' --event-time-end 2026-10-02 -t x"
    )
    assert command.with_event_time("2026-11-03", "2026-11-04") == (
        "dbt build --vars '{a: \"b c\"}' -t x --event-time-start 2026-11-03 --event-time-end 2026-11-04"
    )


def test_batch_results_are_read_leniently() -> None:
    document = {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
        "results": [
            {
                "unique_id": EVENTS,
                "status": "partial success",
                "batch_results": {"successful": [list(day(1))], "failed": [list(day(2))]},
            },
            {"unique_id": SESSIONS, "status": "partial success", "batch_results": {"successful": "oops"}},
            {"unique_id": "model.shop.x", "status": "success", "batch_results": None},
        ],
    }
    first, second, third = parse_run_results(document).results
    assert first.batch_results == BatchResults((day(1),), (day(2),))
    assert second.batch_results is None and third.batch_results is None


def test_started_batches_reads_dbt_log_lines() -> None:
    log = (
        "01:02:03  Batch 1 of 2 START batch 2026-11-03 of main.mb_events ........ [RUN]\n"
        "01:02:03.123 [info ] [Thread-1]: Batch 2 of 2 START batch 2026-11-04 of main.mb_events ... [RUN]\n"
        "01:02:04  Batch 1 of 2 OK created batch 2026-11-03 of main.mb_events ..... [OK in 0.1s]\n"
    )
    assert started_batches(log) == {"main.mb_events": ["2026-11-03", "2026-11-04"]}


def test_batch_steps_lists_the_batch_steps_of_a_plan() -> None:
    found = StepArtifacts(
        RunResults(
            (partial(EVENTS, [3]), NodeResult("model.shop.mb_daily", "skipped")),
            {"which": "build"},
            dbt_version=DBT_VERSION,
        )
    )
    plan = make_plan(make_run([BACKFILL], [ERROR]), {4: found})
    steps = plan.batch_steps
    assert [type(s) for s in steps] == [BatchStep] and steps[0].unique_ids == (EVENTS,)


def test_each_batch_step_is_verified_on_its_own_window() -> None:
    """Failed batches 2026-11-02 and -04: two steps, each checked for the batch it was planned to rebuild."""
    found = StepArtifacts(RunResults((partial(EVENTS, [2, 4]),), {"which": "build"}, dbt_version=DBT_VERSION))
    plan = make_plan(make_run([BACKFILL], [ERROR]), {4: found})
    assert [s.batches.window for s in plan.steps if s.batches] == [window(2, 3), window(4, 5)]
    new = new_run_of(plan)
    first = len(SETUP) + 1

    def ran(*batches: BatchResults) -> dict[int, list[NodeResult]]:
        return {first + i: [NodeResult(EVENTS, "success", batch_results=b)] for i, b in enumerate(batches)}

    assert verify(plan, new, ran(BatchResults((day(2),), ()), BatchResults((day(4),), ()))).verified
    verdict = verify(plan, new, ran(BatchResults((day(2),), ()), BatchResults((), (day(4),))))
    assert [(p.unique_id, p.problem) for p in verdict.problems] == [
        (EVENTS, "1 failed batch(es) not rebuilt (2026-11-04)")
    ]


def test_the_unit_tests_a_cut_short_build_never_recorded_stay_in_the_rest_of_the_step() -> None:
    """A --fail-fast build cut short: the unit tests dbt never recorded are found through the partly
    failed model; the rest of the step keeps them while the model's failed batch has its own step."""
    from restart.artifacts import Manifest, ManifestNode

    unit = "unit_test.shop.mb_events.test_sum"
    manifest = Manifest(
        {
            EVENTS: ManifestNode(EVENTS, "model", "shop", "mb_events", ("shop", "mb_events"), False, ()),
            unit: ManifestNode(
                unit, "unit_test", "shop", "test_sum", ("shop", "mb_events", "test_sum"), False, (EVENTS,)
            ),
        }
    )
    skipped = NodeResult("model.shop.mb_daily", "skipped", "Skipping due to fail_fast")
    found = StepArtifacts(
        RunResults((partial(EVENTS, [3]), skipped), {"which": "build"}, dbt_version=DBT_VERSION), manifest
    )
    batch, rest = make_plan(make_run([f"{BACKFILL} --fail-fast"], [ERROR]), {4: found}).steps
    assert batch.nodes == (EVENTS,) and batch.batches is not None
    assert unit in rest.nodes and EVENTS not in rest.nodes and rest.batches is None


def test_the_summary_draws_one_failure_region_for_the_commands_of_one_step() -> None:
    from restart.artifacts import Manifest, ManifestNode
    from restart.summary import _failure_region

    daily = "model.shop.mb_daily"
    manifest = Manifest(
        {
            EVENTS: ManifestNode(EVENTS, "model", "shop", "mb_events", ("shop", "mb_events"), False, ()),
            daily: ManifestNode(daily, "model", "shop", "mb_daily", ("shop", "mb_daily"), False, (EVENTS,)),
        }
    )
    found = StepArtifacts(
        RunResults((partial(EVENTS, [3]), NodeResult(daily, "skipped")), {"which": "build"}, dbt_version=DBT_VERSION),
        manifest,
    )
    plan = make_plan(make_run([BACKFILL], [ERROR]), {4: found})
    assert [s.nodes for s in plan.steps] == [(EVENTS,), (daily,)]
    region = "\n".join(_failure_region(plan))
    assert region.count("step 4, ") == 1 and "**1 failed** (red) and 1 more node rerun with it" in region
    assert "n0 --> n1" in region


def batch_plan() -> Plan:
    """A backfill whose mb_events failed the batch of 2026-11-03: its batch step, then the rest."""
    found = StepArtifacts(
        RunResults(
            (partial(EVENTS, [3]), NodeResult("model.shop.mb_daily", "skipped")),
            {"which": "build"},
            dbt_version=DBT_VERSION,
        )
    )
    return make_plan(make_run([BACKFILL], [ERROR]), {4: found})


def new_run_of(plan: Plan) -> Run:
    """The restart's run: dbt Cloud's setup steps, then one successful step per command sent."""
    names = [*SETUP, *(f"Invoke dbt with `{c}`" for c in plan.steps_override)]
    steps = tuple(Step(i + 1, name, SUCCESS) for i, name in enumerate(names))
    return replace(make_run([BACKFILL], [ERROR]), id=101, status=SUCCESS, steps=steps)


def test_verification_fails_a_batch_step_whose_failed_batch_did_not_succeed() -> None:
    plan = batch_plan()
    batch_step, rest = plan.steps
    assert batch_step.batches is not None
    new = new_run_of(plan)
    first = len(SETUP) + 1  # the batch step's index in the new run
    rebuilt = BatchResults((day(3),), ())
    still_failing = BatchResults((), (day(3),))
    daily = NodeResult("model.shop.mb_daily", "success")
    good = {first: [NodeResult(EVENTS, "success", batch_results=rebuilt)], first + 1: [daily]}
    assert verify(plan, new, good).verified
    bad = {first: [NodeResult(EVENTS, "success", batch_results=still_failing)], first + 1: [daily]}
    verdict = verify(plan, new, bad)
    assert not verdict.verified
    assert [(p.unique_id, p.problem) for p in verdict.problems] == [
        (EVENTS, "1 failed batch(es) not rebuilt (2026-11-03)")
    ]
    assert failed_batches_rebuilt(rest.batches, daily) == ""  # steps without batches are not checked for them


def test_the_avoided_work_counts_the_batches_that_had_succeeded() -> None:
    plan = batch_plan()
    saved = avoided(plan, make_run([BACKFILL], [ERROR]), {})
    assert saved.batches == 3  # 2026-11-01, -02 and -04 succeeded and are not rebuilt
    assert "and 3 microbatch batches that already succeeded" in avoided_headline(saved)
