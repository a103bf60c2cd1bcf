"""The `e2e` marker (tests/markers.py): what reaches the local dbt Cloud, real dbt or a subprocess is
end to end, through helpers and fixtures; the rest is the fast loop."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests import test_cli, test_plan, test_restart_end_to_end
from tests.emulator import LocalDbtCloud
from tests.markers import is_e2e


def starts_a_cloud(root: Path) -> str:
    with LocalDbtCloud(root=root) as cloud:
        return cloud.base_url


def calls_a_helper_that_does(root: Path) -> str:
    return starts_a_cloud(root).upper()


def runs_a_process() -> None:
    subprocess.run(["true"], check=True)


def pure(text: str) -> str:
    return text.upper()


def test_a_test_is_end_to_end_when_it_or_a_helper_reaches_dbt_or_a_process() -> None:
    assert is_e2e(starts_a_cloud, [])
    assert is_e2e(calls_a_helper_that_does, [])
    assert is_e2e(runs_a_process, [])
    assert is_e2e(pure, [starts_a_cloud])  # through a fixture
    assert not is_e2e(pure, [])
    assert not is_e2e(test_plan.test_setup_steps_are_never_commands, [])


def test_real_test_files_are_split_as_expected() -> None:
    assert is_e2e(test_restart_end_to_end.test_single_build_reruns_exactly_the_failed_and_skipped_nodes, [])
    assert is_e2e(test_cli.test_python_dash_m_restart_help, [])  # `python -m restart` as a subprocess
    assert not is_e2e(test_cli.test_version, [])
