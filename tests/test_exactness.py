"""The planner against real dbt: a narrowed step reruns exactly what `dbt retry` reruns.

Each case runs one failing command on a copy of tests/dbt_project with faults injected through
DBT_EMULATOR_FAULTS, plans the restart from that step's own artifacts, and compares, node for
node, what `dbt ls` resolves the command we would send to with what `dbt retry` runs.

Every case runs on dbt 1.11; a representative subset (each kind of selector, fault and flag the
planner treats differently) also on dbt 1.12, and on dbt platform release-track builds (the same
dbt, its artifacts stamped `2026.4.7+4533730` or `2026.10.6+c0ffee1` and the run on `latest`:
tests/emulator/tracks.py), to keep `make test` short.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from restart import commands
from restart.artifacts import parse_run_results
from restart.plan import manifest_needed
from tests.emulator.tracks import LATEST_BEFORE_1_12, LATEST_WITH_1_12, TRACKS
from tests.engines import DBT_1_11, DBT_1_12, require
from tests.exactness.harness import DbtProject, plan_step, run_recorded, sent_selection

PROJECT = Path(__file__).parent / "dbt_project"
SELECTORS = """\
selectors:
  - name: nightly
    definition:
      union:
        - method: path
          value: models/staging
          children: true
        - exclude:
            - method: fqn
              value: revenue_by_day
"""


# A model that fails to compile (not to run) when its name is listed in DBT_EMULATOR_FAULTS, and
# one downstream of it.
COMPILE_FAULT = """\
{% if execute and 'compile_fault' in env_var('DBT_EMULATOR_FAULTS', '').split(',') %}
  {{ exceptions.raise_compiler_error('injected compile error') }}
{% endif %}
select 1 as x
"""


# A model that runs for minutes when `slow` is listed in DBT_EMULATOR_FAULTS (DuckDB cancels it).
SLOW = """\
-- depends_on: {{ ref('stg_customers') }}
{% set slow = 'slow' in env_var('DBT_EMULATOR_FAULTS', '').split(',') %}
select count(*) as n from range({{ 50000000000 if slow else 10 }}) as t(i) where i % 7 = 3
"""


# Tags for `tag:` grouping, set in the copy's dbt_project.yml: folders of models and of the tests
# defined next to them, an ephemeral model, a unit test, a source and the package's model.
TAGS = {
    "    staging:\n      +materialized: view\n": "      +tags: [staging]\n",
    "    intermediate:\n      +materialized: ephemeral\n": "      +tags: [money]\n",
    "    marts:\n      +materialized: table\n": "      +tags: [marts]\n      finance:\n        +tags: [money]\n",
}
TAGS_ELSEWHERE = """
data_tests:
  shop:
    marts:
      +tags: [marts]
      finance:
        +tags: [money]
unit_tests:
  shop:
    staging:
      +tags: [unit]
sources:
  shop:
    +tags: [staging]
"""
# The source gets the staging tag and a test: `tag:staging` and `path:models/staging` match it, and
# under eager indirect selection they would add its test.
SOURCE = ("  - name: shop_raw\n", "    tags: [staging]\n")
SOURCE_TEST = (
    "      - name: raw_orders\n",
    "        columns:\n          - name: id\n            data_tests: [not_null]\n",
)
UTILS_TAGS = "  shop_utils:\n    +materialized: table\n    +tags: [marts]\n"


def add_tags(root: Path) -> None:
    project = root / "dbt_project.yml"
    text = project.read_text(encoding="utf-8")
    for anchor, tags in TAGS.items():
        assert anchor in text, anchor
        text = text.replace(anchor, anchor + tags)
    project.write_text(text + TAGS_ELSEWHERE, encoding="utf-8")
    staging = root / "models" / "staging" / "_staging.yml"
    text = staging.read_text(encoding="utf-8")
    for anchor, added in (SOURCE, SOURCE_TEST):
        assert text.count(anchor) == 1, anchor
        text = text.replace(anchor, anchor + added)
    staging.write_text(text, encoding="utf-8")
    utils = root / "packages" / "shop_utils" / "dbt_project.yml"
    text = utils.read_text(encoding="utf-8")
    assert "  shop_utils:\n    +materialized: table\n" in text
    utils.write_text(text.replace("  shop_utils:\n    +materialized: table\n", UTILS_TAGS), encoding="utf-8")


def on_engines(
    cases: Sequence[tuple[Any, ...]],
    ids: list[str],
    on_1_12: Sequence[int],
    on_track: Sequence[int] = (0,),
    on_track_1_12: Sequence[int] = (),
) -> list[Any]:
    """Every case on dbt 1.11, the cases at indexes `on_1_12` also on dbt 1.12, those at `on_track` on a
    release-track build before 1.12's rules reached Latest (dbt 1.11 underneath), those at `on_track_1_12`
    on one after (dbt 1.12 underneath); `engine` first."""
    params = [pytest.param(DBT_1_11, *case, id=f"{DBT_1_11} {name}") for case, name in zip(cases, ids, strict=True)]
    for engine, indexes in ((DBT_1_12, on_1_12), (LATEST_BEFORE_1_12, on_track), (LATEST_WITH_1_12, on_track_1_12)):
        params += [pytest.param(engine, *cases[i], id=f"{engine} {ids[i]}") for i in indexes]
    return params


@pytest.fixture
def engine() -> str:
    """The dbt a test runs on, unless it is parametrized with `engine`."""
    return DBT_1_11


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], DbtProject]:
    """The shop project built once per dbt engine, as the tests ask for it."""
    made: dict[str, DbtProject] = {}

    def shop_on(engine: str) -> DbtProject:
        if engine not in made:
            if engine in TRACKS:  # the same dbt's project, its artifacts stamped as the build stamps them, and
                # its failing steps and their retries the project's own where it ran them (`on_engines` lists
                # each case on dbt-core before the tracks)
                made[engine] = shop_on(TRACKS[engine].core).on_track(engine, reuse=True)
            else:
                require(engine)
                made[engine] = make_shop(tmp_path_factory.mktemp(f"exactness-{engine}") / "shop", engine)
        return made[engine]

    return shop_on


@pytest.fixture
def shop(shops: Callable[[str], DbtProject], engine: str) -> DbtProject:
    return shops(engine)


def make_shop(root: Path, engine: str) -> DbtProject:
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb"))
    (root / "selectors.yml").write_text(SELECTORS, encoding="utf-8")
    (root / "models" / "compile_fault.sql").write_text(COMPILE_FAULT, encoding="utf-8")
    (root / "models" / "after_compile_fault.sql").write_text("select * from {{ ref('compile_fault') }}\n")
    (root / "models" / "slow.sql").write_text(SLOW, encoding="utf-8")
    add_tags(root)
    project = DbtProject(root, engine=engine)
    project.deps_and_parse()
    first = project.run("dbt build")  # every relation exists before faults are injected
    assert first.success
    return project


CASES = [
    ("dbt build", ["stg_orders"]),
    ("dbt build", ["unique_orders_order_id"]),
    ("dbt build", ["stg_orders.test_basic", "raw_payments"]),
    ("dbt build", ["dim_customers.v1", "shop_utils.calendar"]),
    ("dbt build --select +customers --exclude stg_payments", ["stg_customers"]),
    ("dbt build -s orders+ --indirect-selection cautious", ["orders"]),
    ("dbt build --indirect-selection buildable --select stg_orders+", ["stg_orders"]),
    ("dbt build --selector nightly", ["stg_customers"]),
    ("dbt build --resource-type model --resource-type test", ["stg_orders"]),
    ("dbt --debug build --threads 1 --select staging", ["stg_payments", "test_basic"]),
    ("dbt run", ["stg_orders"]),
    ('dbt run --select staging+ --vars \'{"who": "a b"}\'', ["stg_customers", "calendar"]),
    ("dbt run -m marts", ["shop.calendar", "dim_customers_v2"]),
    ("dbt test", ["unique_customers_customer_id", "test_lifetime_value"]),
    ("dbt test --select stg_orders", ["stg_orders.test_basic"]),
    ("dbt test --select orders --exclude unique_orders_order_id", ["not_null_orders_order_id"]),
    ("dbt seed", ["raw_orders"]),
    ("dbt seed --select raw_payments raw_orders --full-refresh", ["raw_payments"]),
    ("dbt snapshot", ["customers_snapshot"]),
    ("dbt build", ["compile_fault"]),  # a compile error in one model at run time
    ("dbt run --select +after_compile_fault", ["compile_fault"]),
]


CASE_IDS = [f"{c} [{','.join(f)}]" for c, f in CASES]


@pytest.mark.parametrize(
    ("engine", "command", "faults"),
    on_engines(CASES, CASE_IDS, (0, 3, 7, 8, 14, 20), on_track=(0, 1, 3, 7, 16), on_track_1_12=(0,)),
)
def test_narrowed_step_reruns_what_dbt_retry_reruns(shop: DbtProject, command: str, faults: list[str]) -> None:
    step = shop.run(command, faults)
    assert not step.success, "the injected fault did not make the step fail"
    if shop.track is not None:
        assert step.run_results is not None and step.run_results["metadata"]["dbt_version"] == shop.track.stamp
    planned = plan_step(step)
    assert planned.action == "narrow", planned.warning
    assert planned.warning == ""
    retried = shop.retry(step)
    assert retried, "dbt retry found nothing to rerun"
    assert sent_selection(shop, planned) == retried, planned.sent


# Cases where a `tag:` or `path:` group is the shortest exact form (`group`), or where groups must
# not be used (`!a !b`: they would also run the source's test, which carries its source's tag).
GROUPS = [
    ("dbt run", ["stg_orders", "stg_customers", "stg_payments"], "tag:staging"),
    ("dbt run --select marts", ["orders", "customers", "calendar", "greeting"], "path:models/marts"),
    (
        "dbt test --select marts",
        ["unique_orders_order_id", "unique_revenue_by_day_date_day", "not_null_revenue_by_day_date_day"],
        "tag:money",
    ),
    ("dbt test", ["stg_orders.test_basic", "stg_payments.test_basic"], "tag:unit"),
    ("dbt seed", ["raw_orders", "raw_payments", "raw_customers"], "path:seeds"),
    ("dbt build --select marts", ["customers", "calendar", "greeting", "dim_customers"], "path:models/marts"),
    (
        "dbt build --select marts --indirect-selection cautious",
        ["customers", "calendar", "greeting", "dim_customers"],
        "path:models/marts",
    ),
    ("dbt build", ["stg_orders"], "path:models,package:shop_utils"),  # the package's folder, from the root
    (
        "dbt build --select staging",
        ["stg_orders", "stg_customers", "stg_payments"],
        "!tag:staging !path:models/staging",
    ),
]


@pytest.mark.parametrize(
    ("engine", "command", "faults", "group"), on_engines(GROUPS, [f"{c} [{','.join(f)}]" for c, f, _ in GROUPS], (0, 8))
)
def test_groups_rerun_what_dbt_retry_reruns(shop: DbtProject, command: str, faults: list[str], group: str) -> None:
    """`tag:`/`path:` groups in the narrowed command select exactly what `dbt retry` reruns."""
    step = shop.run(command, faults)
    assert not step.success
    planned = plan_step(step)
    assert planned.action == "narrow" and planned.warning == "", planned.warning
    assert sent_selection(shop, planned) == shop.retry(step), planned.sent
    assert planned.sent is not None
    selectors = planned.sent.split(" --select ", 1)[1].split(" --", 1)[0].split()
    if group.startswith("!"):
        assert not {g[1:] for g in group.split()} & set(selectors), planned.sent
        assert "path:tests" in selectors, planned.sent  # the singular test, in its own folder
    else:
        assert group in selectors, planned.sent


FAIL_FAST = [
    ("dbt build --fail-fast", ["stg_customers"], "narrow"),
    ("dbt build -x --threads 1 --select staging+", ["stg_payments"], "narrow"),
    ("dbt build --fail-fast", ["unique_stg_orders_order_id"], "narrow"),
    ("dbt run --fail-fast", ["stg_orders"], "narrow"),
    ("dbt test -x", ["unique_customers_customer_id"], "narrow"),
    # --exclude could have dropped the unit tests dbt left unrecorded: no way to tell, rerun as it was
    ("dbt build --fail-fast --exclude greeting", ["stg_customers"], "rerun"),
    ("dbt build --fail-fast --indirect-selection empty --select stg_customers+", ["stg_customers"], "rerun"),
]


@pytest.mark.parametrize(
    ("engine", "command", "faults", "action"), on_engines(FAIL_FAST, [f"{c} [{f[0]}]" for c, f, _ in FAIL_FAST], (0, 5))
)
def test_fail_fast_loses_nothing_that_never_ran(shop: DbtProject, command: str, faults: list[str], action: str) -> None:
    """Under --fail-fast the rerun is what failed or was skipped plus what dbt never recorded.

    dbt marks the rest of its graph queue `skipped` ("Skipping due to fail_fast"), but `dbt build`
    runs unit tests with their model, outside that queue: the unit tests of models it never
    started are not in run_results.json, and `dbt retry` never reruns them.
    """
    step = run_recorded(shop, command, faults)
    assert not step.success
    wanted = shop.ls(command)  # what the step was asked to run
    recorded = set(step.statuses)
    never_recorded = shop.executed(wanted - recorded, built=wanted if command.startswith("dbt build") else None)
    retried = shop.retry(step)
    planned = plan_step(step)
    assert planned.action == action, planned.warning
    if action == "rerun":
        assert planned.sent == command and "--fail-fast" in planned.warning
        assert never_recorded, "rerun as it was although nothing was left unrecorded"
        return
    assert sent_selection(shop, planned) == retried | never_recorded, planned.sent
    if command.startswith("dbt build") and "empty" not in command:
        assert never_recorded and not never_recorded <= retried, "dbt retry now reruns the unrecorded unit tests"


def test_parse_error_writes_no_results_and_the_step_reruns_as_written(shop: DbtProject) -> None:
    """A compile error while parsing stops dbt before any node: no run_results.json at all.

    In dbt Cloud the steps of a run share one target directory, so the file found there may be
    the previous step's; the planner must not take it for this step's.
    """
    broken = shop.root / "models" / "parse_fault.sql"
    broken.write_text("select * from {{ ref('no_such_model') }}\n", encoding="utf-8")
    try:
        alone = shop.run("dbt build --vars 'parse: 1'")  # --vars: parsed again, not the cached manifest
        assert not alone.success and alone.run_results is None
        planned = plan_step(alone)
        assert (planned.action, planned.sent) == ("rerun", alone.command)
        assert "run_results.json is missing" in planned.warning

        seeded = shop.run("dbt seed")
        assert seeded.success
        shared = shop.run_in(seeded.target, "dbt build --vars 'parse: 1'")
        assert not shared.success and shared.statuses == seeded.statuses  # the seed step's file, untouched
        planned = plan_step(shared)
        assert (planned.action, planned.sent) == ("rerun", shared.command)
        assert "another command" in planned.warning
    finally:
        broken.unlink()


def test_a_step_stopped_mid_way_reruns_as_written(shop: DbtProject) -> None:
    """Interrupted (cancelled, or stopped by the run's timeout), dbt may list only finished nodes.

    SIGINT reaching dbt's main thread makes it write run_results.json with the nodes that had
    finished and nothing about the others (seen with dbt 1.11: 43 of 44 nodes, the running one
    missing); when DuckDB takes the interrupt instead, the running node errors and dbt finishes.
    Either way, a run whose status message says it timed out reruns that step as it was.
    """
    command = "dbt build --threads 1"
    step = shop.interrupt(command, ["stg_orders", "slow"], when="START sql table model main.slow")
    assert step.run_results is not None, "dbt wrote no run_results.json when interrupted"
    planned = plan_step(step, message="This run timed out after running for longer than the timeout of 60 seconds.")
    assert (planned.action, planned.sent) == ("rerun", command)
    assert "timeout" in planned.warning
    never_recorded = shop.ls(command) - set(step.statuses)
    if never_recorded:  # partial: what narrowing the file alone would have lost
        assert not never_recorded <= set(plan_step(step).nodes)


@pytest.mark.parametrize(
    ("engine", "fault", "parents"),
    on_engines(
        [
            ("not_null_stg_orders_order_id", {"model.shop.stg_orders"}),
            (
                "relationships_orders_customer_id__customer_id__ref_customers_",
                {"model.shop.orders", "model.shop.customers"},
            ),
        ],
        ["staging", "mart"],
        (1,),
    ),
)
def test_with_test_parents_also_reruns_the_models_the_failed_test_tests(
    shop: DbtProject, fault: str, parents: set[str]
) -> None:
    """rebuild: with-test-parents = what dbt retry reruns, plus the tested models; checked with real dbt ls."""
    step = shop.run("dbt build", [fault])
    assert not step.success
    retried = shop.retry(step)
    planned = plan_step(step, rebuild="with-test-parents")
    assert set(planned.added) == parents - retried
    assert sent_selection(shop, planned) == retried | parents, planned.sent
    assert ("rebuilt because their data tests failed" in planned.reason) == bool(planned.added)


def test_with_test_parents_in_a_test_step_says_why_nothing_is_added(shop: DbtProject) -> None:
    step = shop.run("dbt test --select stg_orders", ["not_null_stg_orders_order_id"])
    planned = plan_step(step, rebuild="with-test-parents")
    assert planned.added == ()
    assert "does not build models" in planned.warning
    assert sent_selection(shop, planned) == shop.retry(step)


@pytest.mark.parametrize(
    ("engine", "command", "faults"),
    on_engines(
        [
            ("dbt run --select calendar+", ["shop.calendar"]),
            ("dbt seed", ["raw_orders"]),
            ("dbt run --select shop_utils.calendar+", ["shop_utils.calendar"]),
        ],
        ["models", "seed", "package-model"],
        (2,),
        on_track=(0, 1),
    ),
)
def test_without_the_manifest_models_and_seeds_are_selected_exactly_by_file(
    shop: DbtProject, command: str, faults: list[str]
) -> None:
    """When only models and seeds rerun, the manifest is not read: `file:` selectors are still exact."""
    step = shop.run(command, faults)
    assert not step.success
    assert manifest_needed(parse_run_results(step.run_results), commands.parse(command)) == ""
    planned = plan_step(step, manifest=False)
    assert planned.action == "narrow" and planned.warning == "", planned.warning
    assert "file:" in planned.new_command
    assert sent_selection(shop, planned) == shop.retry(step), planned.sent
