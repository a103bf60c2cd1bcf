"""Shared fixtures: one local dbt Cloud per test module (each module's runs stay independent).

Every end-to-end test gets the `e2e` marker here (tests/markers.py says which), so that
`pytest -m "not e2e"` (`make test-unit`) is the fast loop and `-m e2e` the rest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator import LocalDbtCloud
from tests.markers import MARK, is_e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDbtCloud]:
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud")) as emulator:
        yield emulator


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function) or item.get_closest_marker(MARK):
            continue
        definitions = item._fixtureinfo.name2fixturedefs.values()
        fixtures = [definition.func for chain in definitions for definition in chain]
        if is_e2e(item.obj, fixtures):
            item.add_marker(MARK)
