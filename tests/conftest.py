"""Shared fixtures: one local dbt Cloud per test module (each module's runs stay independent).

Every end-to-end test gets the `e2e` marker here (tests/markers.py says which), so that
`pytest -m "not e2e"` (`make test-unit`) is the fast loop and `-m e2e` the rest.
"""

from __future__ import annotations

import compileall
from collections.abc import Iterator

import pytest

from tests.emulator import LocalDbtCloud, warm
from tests.image import ROOT
from tests.markers import MARK, is_e2e


def pytest_configure(config: pytest.Config) -> None:
    """The run's first process (xdist's controller, or the only one) lets every process of the run share
    one warm dbt worker per dbt venv, which imports dbt and rehearses once (tests/emulator/warm.py), and
    compiles the package for the run's processes that import it from the checkout (the CLI's and the
    relay's, dozens): under PYTHONDONTWRITEBYTECODE each would compile it again (the image's own is
    compiled when it is built: tests/image.py)."""
    if not hasattr(config, "workerinput"):
        config.add_cleanup(warm.share())
        compileall.compile_dir(ROOT / "restart", quiet=1)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDbtCloud]:
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud")) as emulator:
        yield emulator


# The slowest test files, slowest first (seconds on one of three workers, measured 2026-12-04), scheduled
# before all others: `make test` hands each worker a whole file at a time (`--dist loadfile`, in this order:
# `--no-loadscope-reorder`), so a long file taken last would leave the other workers idle for its length.
# The rest (a few seconds each, most under one) fill the end.
SLOWEST_FIRST = (
    "test_exactness.py",  # 186
    "test_exactness_generated.py",  # 129
    "test_restart_end_to_end.py",  # 85
    "test_faults.py",  # 66
    "test_relay.py",  # 35
    "test_dbt_1_12.py",  # 34
    "test_exactness_microbatch.py",  # 26
    "test_warm.py",  # 25
    "test_field_notes.py",  # 22
    "test_emulator.py",  # 21
    "test_microbatch.py",  # 20
    "test_emulator_webhooks.py",  # 19
    "test_github.py",  # 13
    "test_context_end_to_end.py",  # 13
    "test_summary.py",  # 12
    "test_verified_restart.py",  # 11
    "test_heal.py",  # 11
    "test_emulator_context.py",  # 11
    "test_artifacts.py",  # 11
    "test_cli.py",  # 10
    "test_selection_index.py",  # 9
    "test_fusion.py",  # 9
    "test_reporting.py",  # 8
    "test_relay_end_to_end.py",  # 6
    "test_image.py",  # 6
    "test_versions.py",  # 5
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    for item in items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker(MARK):
            continue
        definitions = item._fixtureinfo.name2fixturedefs.values()
        fixtures = [definition.func for chain in definitions for definition in chain]
        if is_e2e(item.obj, fixtures):
            item.add_marker(MARK)
