"""The `e2e` marker (tests/markers.py): what reaches the local dbt Cloud, real dbt or a subprocess is
end to end, through helpers and fixtures; the rest is the fast loop. (Functions are named here by
text: a reference in this file's code would make these tests end to end themselves.)"""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path
from typing import Any

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


def named(where: str) -> Any:
    module, _, name = where.rpartition(".")
    return getattr(importlib.import_module(module), name)


def e2e(test: str, *fixtures: str) -> bool:
    return is_e2e(named(test), [named(fixture) for fixture in fixtures])


def test_a_test_is_end_to_end_when_it_or_a_helper_reaches_dbt_or_a_process() -> None:
    here = __name__
    assert e2e(f"{here}.starts_a_cloud")
    assert e2e(f"{here}.calls_a_helper_that_does")
    assert e2e(f"{here}.runs_a_process")
    assert e2e(f"{here}.pure", f"{here}.starts_a_cloud")  # through a fixture
    assert not e2e(f"{here}.pure")


def test_real_test_files_are_split_as_expected() -> None:
    assert e2e("tests.test_restart_end_to_end.test_single_build_reruns_exactly_the_failed_and_skipped_nodes")
    assert e2e("tests.test_cli.test_python_dash_m_restart_help")  # `python -m restart` as a subprocess
    assert e2e("tests.test_summary.test_the_sample_in_docs_is_what_the_demo_writes")  # `demo.main`
    assert not e2e("tests.test_cli.test_version")
    assert not e2e("tests.test_plan.test_setup_steps_are_never_commands")


def test_the_slowest_files_scheduled_first_exist() -> None:
    from tests.conftest import SLOWEST_FIRST

    here = Path(__file__).parent
    assert [name for name in SLOWEST_FIRST if not (here / name).is_file()] == []
    assert len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST)
