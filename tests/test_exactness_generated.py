"""Property: on random dbt projects, a narrowed step reruns exactly what `dbt retry` reruns.

Each example generates a project (tests/exactness/generate.py), parses and builds it once, then
derives several failure cases from it: a random command (build, run, test, seed or snapshot with
random --select/--exclude/--selector/--indirect-selection/--fail-fast) and random faults among the
nodes it selects. For every case the command the planner sends, resolved by `dbt ls`, must select
exactly what `dbt retry` reruns, plus, under --fail-fast, what dbt never recorded.

The suite checks 4 fixed projects on dbt 1.11 and the first of them on dbt 1.12; `make compat` checks
3 on dbt 1.7, written without what 1.7 lacks (`make_legacy`). To explore, `EXACTNESS_PROJECTS=40
.venv/bin/python -m pytest tests/test_exactness_generated.py` checks 40 new random ones per engine (about
7 minutes on dbt 1.11); a failure prints its seed.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from tests.engines import DBT_1_7, DBT_1_11, DBT_1_12, require
from tests.exactness.generate import generate, make_legacy, random_command
from tests.exactness.harness import DbtProject, plan_step, run_recorded, sent_selection

EXPLORE = int(os.environ.get("EXACTNESS_PROJECTS") or 0)  # random projects instead of the fixed four
CASES_PER_PROJECT = 10 if EXPLORE else 7
# Fixed projects per engine: dbt 1.12 checks one in CI (time), dbt 1.7 three under `make compat`.
PROJECTS = {DBT_1_11: EXPLORE or 4, DBT_1_12: EXPLORE or 1, DBT_1_7: EXPLORE or 3}
LEGACY = {DBT_1_7}  # engines before dbt 1.8: projects without unit tests, `data_tests:`, flags


@pytest.mark.parametrize("engine", list(PROJECTS))
def test_generated_projects_rerun_exactly_what_dbt_retry_does(
    engine: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    require(engine)

    @settings(
        max_examples=PROJECTS[engine],
        deadline=None,
        derandomize=not EXPLORE,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: each example runs dbt
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(seed=st.integers(min_value=0, max_value=2**31))
    def check(seed: int) -> None:
        check_project(seed, engine, tmp_path_factory)

    check()


def check_project(seed: int, engine: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """One generated project: its failure cases narrowed exactly as `dbt retry` reruns them."""
    root = tmp_path_factory.mktemp(f"gen{seed}-{engine}") / "gen"
    generated = generate(seed, root)
    if engine in LEGACY:
        make_legacy(root)
    project = DbtProject(root, profile="gen", engine=engine)
    project.deps_and_parse()
    assert project.run("dbt build").success, f"generated project {seed} does not build"

    rng = random.Random(seed)
    checked = groups = 0
    for _ in range(CASES_PER_PROJECT):
        command = random_command(rng, generated)
        wanted = project.ls(command)
        if not wanted:
            continue
        built = wanted if command.startswith("dbt build") else None
        # A build runs a unit test only with its model: a fault in one selected alone would never fire.
        idle = {u for u in wanted if u.startswith("unit_test.")} - project.executed(wanted, built=built)
        candidates = sorted(wanted - idle)
        if not candidates:
            continue
        faults = rng.sample(candidates, k=min(len(candidates), rng.choice([1, 1, 2, 3])))
        context = f"{engine}, seed {seed}: `{command}` with faults {faults}"
        step = run_recorded(project, command, faults)
        assert not step.success, f"{context}: the faults did not make the step fail"
        recorded = set(step.statuses)
        never_recorded = project.executed(wanted - recorded, built=built)
        planned = plan_step(step)
        if engine in LEGACY and step.run_results is None and "--fail-fast" in command:
            # dbt 1.7 stopped by --fail-fast writes no run_results.json at all: rerun as written, as it must be
            assert (planned.action, planned.sent) == ("rerun", command), context
            assert "run_results.json is missing" in planned.warning, context
            continue
        if planned.action == "rerun":  # only a --fail-fast build that left unit tests unknowable
            assert "--fail-fast" in planned.warning, f"{context}: {planned.warning}"
            # Unknowable: some went unrecorded, or a flag hides from the artifacts whether any was selected
            # (README: the step is then rerun as written).
            hidden = ("--indirect-selection empty", "--exclude", "--selector", "--resource-type")
            assert never_recorded or any(flag in command for flag in hidden), f"{context}: {planned.warning}"
            continue
        assert planned.action == "narrow", f"{context}: {planned.warning}"
        assert planned.warning == "", context
        retried = project.retry(step)
        if "--fail-fast" not in command:
            assert not never_recorded, f"{context}: dbt did not record {never_recorded}"
        sent = sent_selection(project, planned)
        if engine in LEGACY and "--fail-fast" in command:
            # dbt 1.7 stopped by --fail-fast may record a test of the failed model `pass`: the narrowed command
            # may rerun such a test too (harmless), never anything else more or less than dbt retry
            sent -= {uid for uid in sent - retried if step.statuses.get(uid) == "pass" and uid.startswith("test.")}
        assert sent == retried | never_recorded, f"{context}: sent `{planned.sent}`"
        checked += 1
        groups += any(word.startswith(("'tag:", "tag:", "path:")) for word in (planned.sent or "").split())
    event(f"failure cases checked per project: {checked}")
    event(f"cases narrowed with a tag: or path: group per project: {groups}")
    assert checked >= 2, f"seed {seed}: too few failure cases reached the oracle"


def test_generator_covers_every_shape(tmp_path: Path) -> None:
    """The shapes the property relies on are really generated (checked without running dbt)."""
    seen: set[str] = set()
    for seed in range(6):
        generated = generate(seed, tmp_path / str(seed))
        seen |= {m.materialized for m in generated.models}
        seen |= {"nested" for m in generated.models if "/" in m.folder}
        seen |= {"folder-named-like-a-model" for m in generated.models if m.folder.endswith("/m_0")}
        seen |= {"package-ref" for m in generated.models if "genpkg.m_0" in m.parents}
        schema = (tmp_path / str(seed) / "models" / "schema.yml").read_text(encoding="utf-8")
        seen |= {word for word in ("unit_tests:", "relationships:", "versions:", "sources:") if word in schema}
        seen |= {"tagged-test" for line in schema.splitlines() if line.startswith(" " * 14 + "config:")}
        seen |= {"tagged-unit-test" for line in schema.splitlines() if line.startswith("    config:")}
    assert seen >= {
        "table",
        "view",
        "ephemeral",
        "incremental",
        "nested",
        "folder-named-like-a-model",
        "package-ref",
        "unit_tests:",
        "relationships:",
        "versions:",
        "sources:",
        "tagged-test",
        "tagged-unit-test",
    }
