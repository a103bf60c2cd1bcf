"""Planning on artifacts of every dbt engine: old dbt Core (1.4, 1.5), unrecorded and unknown versions, dbt v2 (Fusion).

The documents below follow the shape of real artifacts (field notes "dbt engines and versions" and
"dbt v2 (Fusion engine)"): dbt <= 1.4 records `--selector` as `selector_name`, 1.5 manifests have no
`metadata.project_name`, Fusion records no selection in `args`, `null` config fields, a `manifest/v20`
label, ephemeral models as `skipped`, and sometimes no `error` result at all.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restart import commands
from restart.artifacts import parse_manifest, parse_run_results
from restart.avoided import avoided
from restart.engines import Engine, parse_version
from restart.plan import StepArtifacts, make_plan, manifest_needed, results_belong_to
from restart.records import CANCELLED, ERROR, SUCCESS
from restart.selection import selects, selects_nothing
from restart.selector import Selector
from tests.emulator.fusion import FusionMode, rewrite_manifest, rewrite_run_results
from tests.exactness.harness import single_step_run
from tests.factories import make_run


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.5.11", (1, 5, 11)),
        ("1.12.0-b1", (1, 12, 0)),
        ("1.7.0rc1", (1, 7, 0)),
        ("2.0.0-preview.45", (2, 0, 0)),
        ("v1.8", (1, 8, 0)),
        (" 1.6.0 ", (1, 6, 0)),
        ("", None),
        ("versionless-ish", None),
    ],
)
def test_versions_are_read_robustly(text: str, version: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == version


def test_what_each_engine_resolves() -> None:
    assert Engine.of(None, "1.5.11").text == "1.5.11"  # run_results names none: the run's version
    assert Engine.of("1.4.9", "1.11.0").text == "1.4.9"  # what wrote the artifacts wins
    assert [Engine(v).file_by_stem for v in ("1.5.11", "1.6.0-b2", "1.12.0-b1", "2.0.0-preview.45", "")] == [
        False,
        True,
        True,
        False,  # Fusion: selected by name, never by file
        False,  # unrecorded: only forms every version resolves
    ]
    assert [Engine(v).indirect_empty for v in ("1.4.9", "1.5.0", "2.0.0", "")] == [False, True, True, False]
    assert Engine("2.0.0-preview.45").fusion and not Engine("1.11.2").fusion
    assert Engine("latest").kind is not None and not Engine("latest").fusion and Engine("latest-fusion").fusion
    assert Engine("").unsupported == ""
    for outside in ("0.21.1", "3.0.0", "nightly"):
        assert Engine(outside).unsupported, outside


# ---- dbt Core 1.4 / 1.5 ----------------------------------------------------------------------------


def old_run_results(version: str, statuses: dict[str, str], **args: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v4.json",
            "dbt_version": version,
            "generated_at": "2023-05-02T04:01:12.123456Z",
            "invocation_id": "4b9f6c1e-0000-4000-8000-000000000000",
            "env": {},
        },
        "results": [
            {
                "status": status,
                "timing": [],
                "thread_id": "Thread-1",
                "execution_time": 0.1,
                "adapter_response": {},
                "message": None if status == "success" else f"{status}: {uid}",
                "failures": None,
                "unique_id": uid,
            }
            for uid, status in statuses.items()
        ],
        "elapsed_time": 1.0,
        "args": {"write_json": True, "use_colors": True, "rpc_method": "build", **args},
    }


def node(uid: str, path: str, depends: list[str] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    kind, package, name = uid.split(".")[:3]
    folders = path.split("/")[1:-1]
    fqn = [package, *folders, name]
    return {
        "unique_id": uid,
        "resource_type": kind,
        "package_name": package,
        "name": name,
        "fqn": fqn,
        "original_file_path": path,
        "depends_on": {"macros": [], "nodes": list(depends)},
        "tags": [],
        "config": {"materialized": "view" if kind == "model" else None, "tags": []},
        **extra,
    }


def old_manifest(version: str) -> dict[str, Any]:
    nodes = [
        node("seed.shop.raw_orders", "seeds/raw_orders.csv"),
        node("model.shop.stg_orders", "models/staging/stg_orders.sql", ["seed.shop.raw_orders"]),
        node("model.shop.orders", "models/marts/orders.sql", ["model.shop.stg_orders"]),
        node("model.shop.orders_daily", "models/marts/orders_daily.sql", ["model.shop.orders"]),
        node("test.shop.not_null_orders_id.1a2b", "models/marts/_marts.yml", ["model.shop.orders"]),
        node("test.shop.not_null_stg_orders_id.3c4d", "models/staging/_staging.yml", ["model.shop.stg_orders"]),
    ]
    for item in nodes:
        if item["resource_type"] == "test":
            item["fqn"] = ["shop", *item["original_file_path"].split("/")[1:-1], item["name"]]
    metadata = {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v9.json", "dbt_version": version}
    return {"metadata": metadata, "nodes": {n["unique_id"]: n for n in nodes}, "sources": {}, "exposures": {}}


OLD_RUN_FAILURE = {
    "model.shop.stg_orders": "success",
    "model.shop.orders": "error",
    "model.shop.orders_daily": "skipped",
}
OLD_FAILURE = {
    "seed.shop.raw_orders": "success",
    "model.shop.stg_orders": "success",
    "test.shop.not_null_stg_orders_id.3c4d": "pass",
    "model.shop.orders": "error",
    "model.shop.orders_daily": "skipped",
    "test.shop.not_null_orders_id.1a2b": "skipped",
}


@pytest.mark.parametrize("version", ["1.4.9", "1.5.11"])
def test_old_dbt_build_with_a_yaml_selector_is_narrowed_without_file_selectors(version: str) -> None:
    command = "dbt build --selector nightly"
    recorded = {"selector_name": "nightly"} if version.startswith("1.4") else {"selector": "nightly"}
    results = parse_run_results(old_run_results(version, OLD_FAILURE, which="build", **recorded))
    manifest = parse_manifest(old_manifest(version))
    assert manifest.project_name == ""  # 1.5 manifests do not name their project
    assert results_belong_to(results, commands.parse(command), Engine(version))
    assert manifest_needed(results, commands.parse(command))  # the manifest proves the selectors

    step = make_plan(single_step_run(command), {4: StepArtifacts(results, manifest)}).steps[0]

    assert step.action == "narrow", step.warning
    wanted = {"model.shop.orders", "model.shop.orders_daily", "test.shop.not_null_orders_id.1a2b"}
    assert set(step.nodes) == wanted
    assert "file:" not in step.new_command
    selectors = step.new_command.split(" --select ", 1)[1].split(" --indirect-selection")[0].split()
    picked = set().union(*(selects(Selector.parse(s), manifest) for s in selectors))
    assert "model.shop.orders" in picked and picked <= wanted | {"model.shop.orders_daily"}


@pytest.mark.parametrize(("version", "empty"), [("1.4.9", False), ("1.5.11", True)])
def test_indirect_selection_empty_is_sent_only_to_versions_that_have_it(version: str, empty: bool) -> None:
    """Without a manifest a build's rerun nodes may pull in tests that passed: `empty` exists from 1.5."""
    results = parse_run_results(old_run_results(version, OLD_RUN_FAILURE, which="build"))
    step = make_plan(single_step_run("dbt build"), {4: StepArtifacts(results)}).steps[0]
    assert step.action == "narrow"
    assert ("--indirect-selection empty" in step.new_command) is empty
    assert ("no `--indirect-selection empty` (dbt 1.5+)" in step.warning) is not empty


def test_old_dbt_without_manifest_selects_by_name_never_by_file() -> None:
    results = parse_run_results(old_run_results("1.5.11", OLD_RUN_FAILURE, which="run", select=["marts"]))
    assert "1.5.11 has no `file:` selector" in manifest_needed(results, commands.parse("dbt run -s marts"))
    step = make_plan(single_step_run("dbt run -s marts"), {4: StepArtifacts(results)}).steps[0]
    assert step.action == "narrow"
    assert step.sent == (
        "dbt run --select orders,resource_type:model,package:shop orders_daily,resource_type:model,package:shop"
    )
    assert "dbt may rerun a few more nodes" in step.warning


def test_the_runs_version_is_used_when_run_results_names_none() -> None:
    document = old_run_results("", OLD_RUN_FAILURE, which="run")
    del document["metadata"]["dbt_version"]
    results = parse_run_results(document)
    run = single_step_run("dbt run")
    modern = make_plan(replace(run, dbt_version="1.11.2"), {4: StepArtifacts(results)})
    assert "file:orders,resource_type:model,package:shop" in modern.steps[0].new_command
    unknown = make_plan(run, {4: StepArtifacts(results)})
    assert "file:" not in unknown.steps[0].new_command  # unrecorded: only forms every dbt version resolves


@pytest.mark.parametrize("version", ["0.21.1", "3.1.0"])
def test_a_version_outside_the_supported_range_reruns_as_written_and_says_why(version: str) -> None:
    results = parse_run_results(old_run_results(version, OLD_FAILURE, which="build"))
    assert manifest_needed(results, commands.parse("dbt build")) == ""
    step = make_plan(single_step_run("dbt build"), {4: StepArtifacts(results)}).steps[0]
    assert (step.action, step.sent) == ("rerun", "dbt build")
    assert f"dbt {version} is outside what this tool narrows" in step.warning


def test_a_narrowed_command_the_manifest_proves_empty_reruns_as_written() -> None:
    """A node renamed between run_results.json and manifest.json: its selector would match nothing."""
    statuses = {"model.shop.orders_renamed": "error"}
    results = parse_run_results(old_run_results("1.11.2", statuses, which="run"))
    manifest = parse_manifest(old_manifest("1.11.2"))
    step = make_plan(single_step_run("dbt run"), {4: StepArtifacts(results, manifest)}).steps[0]
    assert (step.action, step.sent) == ("rerun", "dbt run")
    assert "would execute no node" in step.warning


# ---- dbt v2 (Fusion) -------------------------------------------------------------------------------

FUSION = "2.0.0-preview.45"


def fusion_run_results(statuses: dict[str, str], which: str = "build") -> dict[str, Any]:
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": FUSION,
            "generated_at": "2026-09-14T03:00:05.123Z",
            "invocation_id": "0199a0b2-0000-7000-8000-000000000000",
        },
        "results": [
            {"unique_id": uid, "status": status, "timing": [], "thread_id": "main", "adapter_response": {}}
            for uid, status in statuses.items()
        ],
        "elapsed_time": 2.5,
        "args": {"command": which, "which": which, "__other__": {"static_analysis": "on"}},
    }


def fusion_manifest() -> dict[str, Any]:
    nodes = [
        node("seed.shop.raw_orders", "seeds/raw_orders.csv"),
        node("model.shop.stg_orders", "models/staging/stg_orders.sql", ["seed.shop.raw_orders"]),
        node("model.shop.int_orders", "models/intermediate/int_orders.sql", ["model.shop.stg_orders"]),
        node("model.shop.orders", "models/marts/orders.sql", ["model.shop.int_orders"]),
        node("model.shop.customers", "models/marts/customers.sql", ["seed.shop.raw_orders"]),
        node("test.shop.not_null_orders_id.1a2b", "models/marts/_marts.yml", ["model.shop.orders"]),
        node("test.shop.not_null_customers_id.5e6f", "models/marts/_marts.yml", ["model.shop.customers"]),
    ]
    for item in nodes:
        item["config"] = {"materialized": None, "tags": None, "enabled": True}  # Fusion's nulls
        item["tags"] = None
        item["depends_on"]["nodes_with_ref_location"] = [[d, {"line": 1}] for d in item["depends_on"]["nodes"]]
        if item["resource_type"] == "test":
            item["fqn"] = ["shop", *item["original_file_path"].split("/")[1:-1], item["name"]]
    nodes[2]["config"]["materialized"] = "ephemeral"
    metadata = {
        "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v20.json",
        "dbt_version": FUSION,
        "project_name": "shop",
    }
    nodes_by_id = {n["unique_id"]: n for n in nodes}
    return {"metadata": metadata, "nodes": nodes_by_id, "sources": {}, "functions": None, "unit_tests": None}


# `customers` was reused (dbt State) and its test skipped for it; `int_orders` is ephemeral.
FUSION_FAILURE = {
    "seed.shop.raw_orders": "success",
    "model.shop.stg_orders": "error",
    "model.shop.int_orders": "skipped",
    "model.shop.orders": "skipped",
    "model.shop.customers": "reused",
    "test.shop.not_null_customers_id.5e6f": "skipped",
    "test.shop.not_null_orders_id.1a2b": "skipped",
}


def test_fusion_manifests_parse_leniently() -> None:
    manifest = parse_manifest(fusion_manifest())
    assert manifest.nodes["model.shop.int_orders"].materialized == "ephemeral"
    assert manifest.nodes["model.shop.orders"].materialized == ""
    assert manifest.nodes["model.shop.orders"].tags == ()
    assert manifest.nodes["model.shop.orders"].depends_on == ("model.shop.int_orders",)


def test_fusion_step_with_a_selection_is_narrowed_to_what_the_failure_held_back() -> None:
    command = "dbt build --select staging+ --exclude tag:slow"
    results = parse_run_results(fusion_run_results(FUSION_FAILURE))
    manifest = parse_manifest(fusion_manifest())
    assert results_belong_to(results, commands.parse(command), Engine(FUSION))
    assert not results_belong_to(results, commands.parse("dbt run --select staging+"), Engine(FUSION))
    assert "Fusion" in manifest_needed(results, commands.parse(command))

    step = make_plan(single_step_run(command), {4: StepArtifacts(results, manifest)}).steps[0]

    assert step.action == "narrow", step.warning
    # The ephemeral model and the test of the reused model are not held back by the failure.
    assert set(step.nodes) == {"model.shop.stg_orders", "model.shop.orders", "test.shop.not_null_orders_id.1a2b"}
    assert "file:" not in step.new_command and "--exclude" not in step.new_command


def test_fusion_step_without_its_error_result_rebuilds_the_failed_root() -> None:
    statuses = {uid: s for uid, s in FUSION_FAILURE.items() if s != "error"}  # Fusion left the error out
    results = parse_run_results(fusion_run_results(statuses))
    manifest = parse_manifest(fusion_manifest())

    step = make_plan(single_step_run("dbt build"), {4: StepArtifacts(results, manifest)}).steps[0]

    assert step.action == "narrow", step.warning
    assert "model.shop.stg_orders" in step.nodes
    assert set(step.nodes) == {"model.shop.stg_orders", "model.shop.orders", "test.shop.not_null_orders_id.1a2b"}
    assert [f.unique_id for f in step.failures] == ["model.shop.stg_orders"]


@pytest.mark.parametrize(
    ("command", "with_manifest", "why"),
    [
        ("dbt build --select staging+", True, "selection hides which one failed"),
        ("dbt build", False, "manifest.json is unusable"),
        ("dbt build --fail-fast", True, "--fail-fast"),
    ],
)
def test_fusion_step_that_cannot_be_explained_reruns_as_written(command: str, with_manifest: bool, why: str) -> None:
    statuses = {uid: s for uid, s in FUSION_FAILURE.items() if s != "error"}
    if "fail-fast" in command:
        statuses = FUSION_FAILURE
    results = parse_run_results(fusion_run_results(statuses))
    manifest = parse_manifest(fusion_manifest()) if with_manifest else None
    step = make_plan(single_step_run(command), {4: StepArtifacts(results, manifest)}).steps[0]
    assert (step.action, step.sent) == ("rerun", command)
    assert why in step.warning


def test_fusion_step_whose_skipped_nodes_are_all_no_ops_reruns_as_written() -> None:
    """Only an ephemeral model and a reused test skipped, nothing failed on record: no failed root to find."""
    statuses = {
        "seed.shop.raw_orders": "success",
        "model.shop.stg_orders": "success",
        "model.shop.int_orders": "skipped",
        "model.shop.orders": "success",
        "model.shop.customers": "reused",
        "test.shop.not_null_customers_id.5e6f": "skipped",
        "test.shop.not_null_orders_id.1a2b": "pass",
    }
    results = parse_run_results(fusion_run_results(statuses))
    step = make_plan(single_step_run("dbt build"), {4: StepArtifacts(results, parse_manifest(fusion_manifest()))})
    assert (step.steps[0].action, step.steps[0].sent) == ("rerun", "dbt build")
    assert "none could be found" in step.steps[0].warning


def test_dbt_core_step_with_only_skipped_nodes_is_never_narrowed_to_them() -> None:
    statuses = {"model.shop.orders": "skipped", "model.shop.orders_daily": "skipped"}
    results = parse_run_results(old_run_results("1.11.2", statuses, which="run"))
    step = make_plan(single_step_run("dbt run"), {4: StepArtifacts(results)}).steps[0]
    assert (step.action, step.sent) == ("rerun", "dbt run")
    assert "skipped nodes but no failed one" in step.warning


# ---- Fusion, every shape: what dbt-core's `dbt retry` reruns, from what Fusion records -----------


@st.composite
def fusion_failures(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], set[str], FusionMode]:
    """(dbt-core's run_results.json, its manifest.json, what `dbt retry` reruns, how Fusion rewrites them)."""
    count = draw(st.integers(2, 9))
    nodes: dict[str, dict[str, Any]] = {}
    for i in range(count):
        parents = draw(st.sets(st.integers(0, i - 1), max_size=2)) if i else set()
        ephemeral = i > 0 and draw(st.booleans()) and draw(st.booleans())
        uid = f"model.shop.m{i}"
        nodes[uid] = node(uid, f"models/m{i}.sql", [f"model.shop.m{p}" for p in sorted(parents)])
        nodes[uid]["config"]["materialized"] = "ephemeral" if ephemeral else "table"
        if not ephemeral and draw(st.booleans()):
            test = f"test.shop.not_null_m{i}_id.{i:04x}"
            nodes[test] = node(test, "models/_models.yml", [uid])
            nodes[test]["fqn"] = ["shop", f"not_null_m{i}_id"]
    models = [u for u, n in nodes.items() if n["config"]["materialized"] == "table"]
    failing = draw(st.sets(st.sampled_from(models), min_size=1, max_size=2))
    statuses: dict[str, str] = {}
    for uid, item in nodes.items():  # in dependency order: parents come first
        if item["config"]["materialized"] == "ephemeral":
            continue
        held = any(statuses.get(a) == "error" for a in _ancestors(nodes, uid))  # dbt skips what an error is above
        if held:
            statuses[uid] = "skipped"
        elif uid in failing:
            statuses[uid] = "error"
        else:
            statuses[uid] = "pass" if uid.startswith("test.") else "success"
    core = old_run_results("1.11.2", statuses, which="build")
    manifest = {"metadata": {"dbt_schema_version": "v12", "project_name": "shop"}, "nodes": nodes}
    reused = draw(st.sets(st.sampled_from([n["name"] for n in nodes.values()])))
    mode = FusionMode(reused=frozenset(reused), drop_errors=draw(st.booleans()))
    return core, manifest, {u for u, s in statuses.items() if s in ("error", "skipped")}, mode


def _ancestors(nodes: dict[str, dict[str, Any]], uid: str) -> set[str]:
    found: set[str] = set()
    queue = list(nodes[uid]["depends_on"]["nodes"])
    while queue:
        parent = queue.pop()
        if parent not in found:
            found.add(parent)
            queue.extend(nodes[parent]["depends_on"]["nodes"])
    return found


@settings(max_examples=150, deadline=None)
@given(fusion_failures())
def test_fusion_restarts_rerun_what_dbt_retry_reruns_on_dbt_core(
    case: tuple[dict[str, Any], dict[str, Any], set[str], FusionMode],
) -> None:
    """Whatever the DAG, ephemeral models, reused nodes and dropped error results: the same nodes."""
    core, manifest, expected, mode = case
    fusion = rewrite_run_results(core, manifest, mode)
    results = parse_run_results(fusion)
    parsed = parse_manifest(rewrite_manifest(manifest))
    assert results_belong_to(results, commands.parse("dbt build"), Engine(results.dbt_version))
    step = make_plan(single_step_run("dbt build"), {4: StepArtifacts(results, parsed)}).steps[0]
    if not results.results:  # Fusion recorded nothing (its one error dropped): nothing to narrow to
        assert (step.action, step.sent) == ("rerun", "dbt build")
        return
    assert step.action == "narrow", step.warning
    assert set(step.nodes) == expected


def test_selects_nothing_is_proven_only_from_what_is_modelled() -> None:
    manifest = parse_manifest(fusion_manifest())
    run = frozenset({"model"})

    def nothing(*selectors: str) -> bool:
        return selects_nothing([Selector.parse(s) for s in selectors], manifest, run)

    assert not nothing("orders")
    assert not nothing("file:orders,resource_type:model,package:shop")
    assert not nothing("int_orders+")  # ephemeral, but its children run
    assert nothing("int_orders")  # ephemeral alone: dbt runs nothing
    assert nothing("orders_2023", "file:gone,resource_type:model,package:shop")
    assert nothing("raw_orders")  # a seed: `dbt run` does not execute it
    assert not nothing("config.materialized:table")  # not modelled: nothing proven


REAL = Path(__file__).parent / "artifacts"


@pytest.mark.parametrize("version", ["1.4.9", "1.5.11"])
def test_real_old_dbt_artifacts_narrow_to_selectors_that_version_resolves(version: str) -> None:
    """Artifacts dbt 1.4.9 and 1.5.11 wrote (tests/artifacts/README.md); each command checked with their `dbt ls`."""
    results = parse_run_results(json.loads((REAL / f"dbt-{version}" / "run_results.json").read_bytes()))
    manifest = parse_manifest(json.loads((REAL / f"dbt-{version}" / "manifest.json").read_bytes()))
    assert (results.dbt_version, manifest.project_name) == (version, "")
    run = single_step_run("dbt build --selector nightly")
    wanted = {
        "model.p.orders",
        "model.p.orders_daily",
        "test.p.not_null_orders_id.84ef11d8fe",
        "test.p.unique_orders_daily_id.ae621f5544",
    }

    with_manifest = make_plan(run, {4: StepArtifacts(results, manifest)}).steps[0]
    without = make_plan(run, {4: StepArtifacts(results)}).steps[0]

    assert (with_manifest.sent, set(with_manifest.nodes)) == ("dbt build --select orders+", wanted)
    by_name = (
        "dbt build --select orders,resource_type:model,package:p orders_daily,resource_type:model,package:p "
        "not_null_orders_id,resource_type:test,package:p unique_orders_daily_id,resource_type:test,package:p"
    )
    if version == "1.4.9":  # dbt 1.4 refuses `--indirect-selection empty` (not a valid choice)
        assert without.sent == by_name and "no `--indirect-selection empty`" in without.warning
    else:
        assert without.sent == by_name + " --indirect-selection empty"


def test_fusion_results_are_recognised_wherever_a_step_s_results_are_checked() -> None:
    """Every reader of a step's results (not only the narrowing) takes Fusion's `args`, which record no
    selection, for the step's own: a dropped step's nodes count as work avoided, and a timed-out step
    still lists what failed in it."""
    seeded = parse_run_results(fusion_run_results({"seed.shop.raw_orders": "success"}, which="seed"))
    previous = make_run(["dbt seed --select raw_orders", "dbt build"], [SUCCESS, ERROR])
    plan = make_plan(previous, {})
    saved = avoided(plan, previous, {4: seeded})
    assert (saved.nodes, saved.unknown_steps) == (1, ())

    results = parse_run_results(fusion_run_results(FUSION_FAILURE))
    timed_out = replace(
        make_run(["dbt build --select staging+"], [ERROR]),
        status=CANCELLED,
        status_message="This run timed out after running for 1 day, which exceeded the configured timeout",
    )
    [step] = make_plan(timed_out, {4: StepArtifacts(results)}).steps
    assert step.action == "rerun" and step.reason.startswith("timed out")
    assert [f.unique_id for f in step.failures] == ["model.shop.stg_orders"]
