"""dbt platform's release tracks: calendar-stamped builds of dbt Core, read for what they are.

A job on a release track writes `metadata.dbt_version` as `2026.4.7+4533730` (`2024.8.220` in 2024) and
its run reports the track (`latest`, `versionless`, ...): field notes "dbt engines and versions". Such a
build is dbt Core as built on that date, never "dbt 2026": the planner narrows its failed steps, with
the 1.12 defaults from the date they reached Latest (2026-09-01).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restart import commands
from restart.artifacts import NodeResult, RunResults
from restart.engines import (
    EVERY_BUILD,
    LATEST_HAS_1_12,
    RULES,
    Engine,
    Kind,
    Rule,
    Track,
    read_version,
)
from restart.outcome import Outcome
from restart.plan import StepArtifacts, make_plan, manifest_needed
from restart.summary import summary
from tests.emulator.tracks import LATEST_BEFORE_1_12, LATEST_WITH_1_12, TRACKS, stamp_artifact
from tests.engines import DBT_1_11, DBT_1_12
from tests.factories import make_run
from tests.test_engines_plan import CONTINUED, HOOK, MANIFEST

# Every stamp the field notes record from real dbt platform runs, with the date its build is read as.
RECORDED_STAMPS = {
    "2024.8.220": date(2024, 8, 1),  # 2024 "versionless": YEAR.MONTH.BUILD, no hash
    "2024.9.248": date(2024, 9, 1),
    "2024.10.258": date(2024, 10, 1),
    "2024.12.20+6d69506": date(2024, 12, 20),  # with a build hash from December 2024: YEAR.MONTH.DAY+hash
    "2025.8.12+a8d4e26": date(2025, 8, 12),
    "2025.10.10+79ec687": date(2025, 10, 10),
    "2025.11.4+d8fa9da": date(2025, 11, 4),
    "2026.2.5+dde6c12": date(2026, 2, 5),
    "2026.4.7+4533730": date(2026, 4, 7),
}
TRACK_NAMES = ["versionless", "latest", "compatible", "extended", "fallback"]


@pytest.mark.parametrize("stamp", sorted(RECORDED_STAMPS))
def test_every_recorded_stamp_reads_as_a_release_track_build_of_current_dbt_core(stamp: str) -> None:
    engine = Engine.of(stamp, "latest")
    assert (engine.kind, engine.built, engine.version) == (Kind.RELEASE_TRACK, RECORDED_STAMPS[stamp], None)
    assert engine.unsupported == "" and engine.kind is not None and not engine.fusion
    assert engine.file_by_stem and engine.indirect_empty  # dbt Core 1.8+ selection, never "dbt 2026"
    assert not engine.has(Rule.CONTINUE_ON_ERROR)  # every recorded build predates 1.12 on Latest
    assert engine.name == f"dbt platform Latest track (build {stamp.split('+')[0]})"


@pytest.mark.parametrize("track", [*TRACK_NAMES, "LATEST", " Compatible "])
def test_the_run_s_track_names_the_engine_and_alone_reads_as_a_release_track(track: str) -> None:
    title = track.strip().title()
    assert Engine.of("2026.4.7+4533730", track).name == f"dbt platform {title} track (build 2026.4.7)"
    alone = Engine.of(None, track)  # run_results.json names no version: the run's track does
    assert (alone.kind, alone.built, alone.unsupported) == (Kind.RELEASE_TRACK, None, "")
    assert alone.file_by_stem and not alone.has(Rule.SKIPS_ON_RUN_START_FAILURE)  # the rules of every build
    assert alone.name == f"dbt platform {title} track (build not recorded)"


def test_other_engines_keep_their_names_and_rules() -> None:
    assert Engine.of("2026.4.7+4533730").name == "dbt platform release track (build 2026.4.7)"  # no track reported
    assert Engine.of("1.11.2", "latest").kind == Kind.CORE  # what wrote the artifacts wins
    assert Engine.of("1.11.2", "latest").name == "dbt 1.11.2"
    assert Engine.of(None, "latest-fusion").name == "dbt platform Latest Fusion track (Fusion)"
    assert Engine.of("2.0.0-preview.45", "latest-fusion").name == "dbt 2.0.0-preview.45 (Fusion)"
    # were a Fusion track to stamp a calendar version, its artifacts are still read as Fusion writes them
    on_fusion = Engine.of("2026.4.7+4533730", "latest-fusion")
    assert on_fusion.fusion and not on_fusion.file_by_stem and on_fusion.built == date(2026, 4, 7)
    assert on_fusion.name == "dbt platform Latest Fusion track (Fusion, build 2026.4.7)"
    assert Engine("2.0.0-preview.45").name == "dbt 2.0.0-preview.45 (Fusion)"
    assert Engine("").name == "an unrecorded dbt version"


@pytest.mark.parametrize("text", ["nightly", "2023.4.7+abc", "2026.13.1+abc", "2026.0.5", "2026.4", "26.4.7+abc"])
def test_what_no_dbt_writes_stays_unreadable_and_reruns_as_written(text: str) -> None:
    engine = Engine(text)
    assert engine.unsupported, text
    assert not any(engine.has(rule) for rule in Rule)


def test_the_rules_table_dates_every_rule() -> None:
    assert {rule: since.track for rule, since in RULES.items()} == {
        Rule.FILE_BY_STEM: EVERY_BUILD,
        Rule.INDIRECT_EMPTY: EVERY_BUILD,
        Rule.SKIPS_ON_RUN_START_FAILURE: LATEST_HAS_1_12,
        Rule.CONTINUE_ON_ERROR: LATEST_HAS_1_12,
    }
    assert date(2026, 9, 1) == LATEST_HAS_1_12
    before, after = Engine("2026.8.31+1a2b3c4"), Engine("2026.9.1+1a2b3c4")
    assert [before.has(rule) for rule in Rule] == [True, True, False, False]
    assert [after.has(rule) for rule in Rule] == [True, True, True, True]


# ---- the parser, property-tested -------------------------------------------------------------------

build_hashes = st.text(alphabet="0123456789abcdef", min_size=7, max_size=40)
build_dates = st.dates(min_value=date(2024, 12, 1), max_value=date(2099, 12, 31))


@given(build_dates, build_hashes)
def test_every_dated_build_with_a_hash_reads_as_its_date(built: date, digest: str) -> None:
    stamp = f"{built.year}.{built.month}.{built.day}+{digest}"
    reading = read_version(stamp)
    assert reading is not None and (reading.kind, reading.built) == (Kind.RELEASE_TRACK, built)
    engine = Engine.of(stamp, "latest")
    assert engine.unsupported == "" and engine.file_by_stem and engine.indirect_empty
    assert engine.has(Rule.CONTINUE_ON_ERROR) is (built >= LATEST_HAS_1_12)


@given(st.integers(2024, 2099), st.integers(1, 12), st.integers(0, 9999))
def test_every_numbered_build_reads_as_its_month(year: int, month: int, number: int) -> None:
    reading = read_version(f"{year}.{month}.{number}")
    assert reading is not None and (reading.kind, reading.built) == (Kind.RELEASE_TRACK, date(year, month, 1))


@given(st.integers(0, 1), st.integers(0, 99), st.integers(0, 99), st.sampled_from(["", "-b1", "rc2", "-preview.3"]))
def test_dbt_core_versions_read_as_dbt_core(major: int, minor: int, patch: int, tag: str) -> None:
    reading = read_version(f"{major}.{minor}.{patch}{tag}")
    assert reading is not None and (reading.kind, reading.version) == (Kind.CORE, (major, minor, patch))


@given(st.text(max_size=40))
def test_any_text_reads_without_raising_and_never_as_a_build_before_release_tracks(text: str) -> None:
    reading = read_version(text)
    assert reading is None or reading.built is None or reading.built >= EVERY_BUILD
    assert isinstance(Engine.of(text, text).name, str)


@given(st.sampled_from(TRACK_NAMES), st.sampled_from(["lower", "upper", "title"]), st.sampled_from(["", " "]))
def test_track_names_read_in_any_case(track: str, case: str, pad: str) -> None:
    reported = pad + getattr(track, case)() + pad
    reading = read_version(reported)
    assert reading is not None and (reading.kind, reading.built) == (Kind.RELEASE_TRACK, None)
    assert Engine.of("", reported).track == Track(track)


# ---- the planner on release-track builds -----------------------------------------------------------


def stamped(nodes: dict[str, str], stamp: str) -> RunResults:
    return RunResults(tuple(NodeResult(u, s, "") for u, s in nodes.items()), {"which": "build"}, 6, stamp)


@pytest.mark.parametrize("stamp", ["2026.4.7+4533730", "2024.8.220"])
def test_a_release_track_build_s_failed_step_is_narrowed_and_the_summary_names_the_track(stamp: str) -> None:
    run = replace(make_run(["dbt build"], [20]), dbt_version="versionless" if stamp.startswith("2024") else "latest")
    found = stamped({"model.shop.stg": "error", "model.shop.mart": "skipped", "model.shop.other": "success"}, stamp)
    plan = make_plan(run, {4: StepArtifacts(found, MANIFEST)})
    step = plan.steps[0]
    assert (step.action, step.warning) == ("narrow", "")
    assert set(step.nodes) == {"model.shop.stg", "model.shop.mart"}
    build = stamp.split("+")[0]
    track = "Versionless" if stamp.startswith("2024") else "Latest"
    assert plan.engine == f"dbt platform {track} track (build {build})"
    assert f"Engine of the failed run: dbt platform {track} track (build {build})" in summary(
        Outcome(status="planned", headline="planned", strategy="select", previous=run, plan=plan)
    )


def test_on_error_continue_is_read_only_from_builds_after_1_12_reached_latest() -> None:
    build = commands.parse("dbt build")
    assert manifest_needed(stamped(CONTINUED, "2026.4.7+4533730"), build, run_version="latest") == ""
    run = replace(make_run(["dbt build"], [20]), dbt_version="latest")
    before = make_plan(run, {4: StepArtifacts(stamped(CONTINUED, "2026.4.7+4533730"), MANIFEST)}).steps[0]
    assert before.stale == () and before.warning == ""
    late = stamped(CONTINUED, "2026.10.6+c0ffee1")
    assert "on_error: continue" in manifest_needed(late, build, run_version="latest")
    after = make_plan(run, {4: StepArtifacts(late, MANIFEST)}).steps[0]
    assert after.stale == ("test.shop.not_null_stg_id.1", "model.shop.mart", "test.shop.unique_mart_id.2")


@pytest.mark.parametrize(("stamp", "why"), [("2026.10.6+c0ffee1", "the default"), ("2026.4.7+4533730", "set in")])
def test_a_failed_on_run_start_hook_is_explained_by_the_build_s_date(stamp: str, why: str) -> None:
    run = replace(make_run(["dbt build"], [20]), dbt_version="latest")
    skipped = {HOOK: "error", "model.shop.stg": "skipped"}
    step = make_plan(run, {4: StepArtifacts(stamped(skipped, stamp), MANIFEST)}).steps[0]
    assert (step.action, step.sent) == ("rerun", "dbt build")
    assert "on-run-start hook failed" in step.warning and why in step.warning


def test_a_timed_out_release_track_run_reruns_its_interrupted_step_as_written() -> None:
    run = replace(
        make_run(["dbt build"], [20], status=30), dbt_version="latest", status_message="This run timed out after 1 day."
    )
    found = stamped({"model.shop.stg": "success"}, "2026.4.7+4533730")
    step = make_plan(run, {4: StepArtifacts(found, MANIFEST)}).steps[0]
    assert (step.action, step.sent) == ("rerun", "dbt build") and "timed out" in step.reason + step.warning


# ---- the local dbt Cloud's release-track mode ------------------------------------------------------


def test_the_release_track_mode_stamps_every_artifact_dbt_wrote(tmp_path: Path) -> None:
    metadata = {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json", "dbt_version": "1.11.2"}
    for name in ("run_results.json", "manifest.json", "catalog.json", "sources.json"):
        (tmp_path / name).write_text(json.dumps({"metadata": metadata, "results": []}), encoding="utf-8")
    (tmp_path / "graph_summary.json").write_text('{"_invocation_id": "x"}', encoding="utf-8")
    (tmp_path / "partial_parse.msgpack").write_bytes(b"\x80")
    build = TRACKS[LATEST_BEFORE_1_12]
    build.restamp(tmp_path)
    for name in ("run_results.json", "manifest.json", "catalog.json", "sources.json"):
        written = json.loads((tmp_path / name).read_text(encoding="utf-8"))
        assert written["metadata"] == {**metadata, "dbt_version": build.stamp}, name
    assert (tmp_path / "graph_summary.json").read_text(encoding="utf-8") == '{"_invocation_id": "x"}'
    assert (tmp_path / "partial_parse.msgpack").read_bytes() == b"\x80"
    # the builds the mode offers: a recorded stamp before 1.12 reached Latest on dbt 1.11, one after on 1.12
    assert Engine(build.stamp).built == date(2026, 4, 7) and build.core == DBT_1_11 and build.track == "latest"
    after = TRACKS[LATEST_WITH_1_12]
    assert Engine(after.stamp).has(Rule.CONTINUE_ON_ERROR) and after.core == DBT_1_12
    assert stamp_artifact(tmp_path / "graph_summary.json", build.stamp) is False
