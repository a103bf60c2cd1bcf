"""The oracle's in-process dbt session (tests/exactness/session.py)."""

from __future__ import annotations

import sys

import coverage

from tests.exactness.session import untraced


def test_dbt_in_process_runs_under_no_measurement_and_every_one_resumes_after() -> None:
    """A pytest-xdist worker runs two coverage measurements, and stopping one resumes the one beneath it:
    traced, dbt takes twice as long."""
    outer = coverage.Coverage(data_file=None, config_file=False, source=["restart"])
    inner = coverage.Coverage(data_file=None, config_file=False, source=["restart"])
    outer.start()
    inner.start()
    try:
        with untraced():
            inside = sys.gettrace(), coverage.Coverage.current()
        after = sys.gettrace(), coverage.Coverage.current()
    finally:
        inner.stop()
        outer.stop()
    assert inside == (None, None)
    assert after[0] is not None and after[1] is inner
