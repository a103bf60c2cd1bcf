"""The planner against real dbt for microbatch models: the restart builds the batches `dbt retry` builds.

Each case runs a failing backfill of the demo project's microbatch models (batch faults injected
through DBT_EMULATOR_FAULTS), plans the restart from that step's own artifacts, then compares with
`dbt retry` on a copy of the step: node for node (`dbt ls` on every command sent) and batch for batch,
counting from dbt's logs the batches that `dbt retry` and the commands sent really start
(`batch_results.successful` of a retry also lists the earlier run's batches). One case also runs as a
dbt platform release-track build runs it (artifacts stamped `2026.4.7+4533730`, the run on `latest`).
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from restart.artifacts import parse_manifest, parse_run_results
from restart.microbatch import batch_steps, batches_avoided
from restart.plan import StepArtifacts, make_plan
from tests.emulator.tracks import LATEST_BEFORE_1_12
from tests.engines import DBT_1_11
from tests.exactness.harness import DbtProject, single_step_run, started_batches

PROJECT = Path(__file__).parent / "dbt_project"
BACKFILL = "dbt build --select tag:microbatch --event-time-start 2026-11-01 --event-time-end 2026-11-05"
LONG_BACKFILL = "dbt run --select tag:microbatch --event-time-start 2026-11-01 --event-time-end 2026-11-10"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> DbtProject:
    root = tmp_path_factory.mktemp("exactness-microbatch") / "shop"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb"))
    settings = root / "dbt_project.yml"
    text = settings.read_text(encoding="utf-8")
    enabled = "+enabled: \"{{ var('microbatch', false) }}\""
    assert enabled in text
    settings.write_text(text.replace(enabled, "+enabled: true"), encoding="utf-8")
    project = DbtProject(root)
    project.deps_and_parse()
    return project


def batches(log_dir: Path) -> Counter[tuple[str, str]]:
    """(relation, batch) started, as often as started, from the dbt.log files under `log_dir`."""
    found: Counter[tuple[str, str]] = Counter()
    for log in log_dir.rglob("dbt.log"):
        for relation, labels in started_batches(log.read_text(encoding="utf-8")).items():
            found.update((relation, label) for label in labels)
    return found


CASES = [
    (BACKFILL, ["mb_events@2026-11-03"], 2),
    (BACKFILL, ["mb_events@2026-11-03", "mb_sessions@2026-11-02"], 3),
    (BACKFILL, ["mb_events@2026-11-02", "mb_events@2026-11-04"], 3),  # one model, two windows
    (BACKFILL, ["mb_events", "mb_sessions@2026-11-04"], 2),  # mb_events fails in every batch
    (BACKFILL.replace("dbt build", "dbt run"), ["mb_sessions@2026-11-01"], 1),  # the first batch fails: all do
]


@pytest.mark.parametrize(
    ("engine", "command", "faults", "commands"),
    [(DBT_1_11, *case) for case in CASES] + [(LATEST_BEFORE_1_12, *CASES[1])],
)
def test_the_restart_builds_the_batches_dbt_retry_builds(
    shop: DbtProject, engine: str, command: str, faults: list[str], commands: int
) -> None:
    shop = shop if engine == DBT_1_11 else shop.on_track(engine)
    step = shop.run(command, faults)
    assert not step.success and step.run_results is not None and step.manifest is not None
    found = StepArtifacts(parse_run_results(step.run_results), parse_manifest(step.manifest))
    plan = make_plan(replace(single_step_run(command), dbt_version=step.run_version), {4: found})
    assert len(plan.steps_override) == commands, plan.steps_override

    retry_log = shop.next_dir("retry-log")
    retried = shop.retry(step, log=retry_log)
    assert set().union(*(shop.ls(sent) for sent in plan.steps_override)) == retried
    ours = shop.next_dir("restart-log")
    for sent in plan.steps_override:
        assert shop.run_in(shop.next_dir("restart"), sent, log=ours).success, sent
    expected = batches(retry_log)
    assert expected and batches(ours) == expected


def test_past_three_windows_one_covering_window_builds_the_batches_in_between_too(shop: DbtProject) -> None:
    faults = [f"mb_events@2026-11-0{day}" for day in (2, 4, 6, 8)]
    step = shop.run(LONG_BACKFILL, faults)
    assert step.run_results is not None
    plan = make_plan(single_step_run(LONG_BACKFILL), {4: StepArtifacts(parse_run_results(step.run_results))})
    [covering, _rest] = plan.steps
    assert covering.batches is not None and covering.batches.covering
    assert covering.batches.redone == 3
    assert "2026-11-02 to 2026-11-09, end excluded, 3 batch(es) that had succeeded rebuilt with them" in covering.reason
    assert batches_avoided(batch_steps(plan.steps)) == 2  # 2026-11-01 and 2026-11-09

    retry_log = shop.next_dir("retry-log")
    shop.retry(step, log=retry_log)
    ours = shop.next_dir("restart-log")
    assert shop.run_in(shop.next_dir("restart"), covering.new_command, log=ours).success
    retried, built = batches(retry_log), batches(ours)
    assert set(retried) < set(built)
    assert sorted(label for _, label in set(built) - set(retried)) == ["2026-11-03", "2026-11-05", "2026-11-07"]
