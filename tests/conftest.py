"""Shared fixtures: one local dbt Cloud per test module (each module's runs stay independent)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator import LocalDbtCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDbtCloud]:
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud")) as emulator:
        yield emulator
