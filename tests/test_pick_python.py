"""The interpreter `make` builds the venvs from (scripts/pick_python.py): the fastest usable Python here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.scripts import load

picker = load("pick_python")


def with_candidates(monkeypatch: pytest.MonkeyPatch, found: dict[str, object]) -> None:
    """Candidates in this order, each probing as given (None: it does not run)."""
    monkeypatch.setattr(picker, "candidates", lambda: list(found))
    monkeypatch.setattr(picker, "probe", found.__getitem__)


def probe(seconds: float, executable: str, version: tuple[int, int] = (3, 11), venv: bool = True) -> object:
    return picker.Probe(version, executable, venv, seconds)


def test_the_fastest_usable_interpreter_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    with_candidates(
        monkeypatch,
        {
            "/pyenv/shims/python3": probe(0.033, "/pyenv/3.11.7/bin/python3.11"),
            "/pyenv/shims/python3.12": None,  # a shim whose version is not installed
            "/usr/bin/python3": probe(0.010, "/usr/bin/python3.9", version=(3, 9)),  # too old
            "/usr/local/bin/python3": probe(0.010, "/usr/local/bin/python3.13", version=(3, 13)),  # no wheels
            "/opt/python3": probe(0.010, "/opt/python3.11", venv=False),  # cannot make a venv
            "/usr/bin/python3.11": probe(0.025, "/usr/bin/python3.11"),
        },
    )
    assert picker.pick() == "/usr/bin/python3.11"


def test_a_near_tie_keeps_the_one_listed_first(monkeypatch: pytest.MonkeyPatch) -> None:
    with_candidates(
        monkeypatch,
        {
            "python3-on-path": probe(0.030, "/usr/bin/python3.11"),
            "/usr/bin/python3.12": probe(0.029, "/usr/bin/python3.12", version=(3, 12)),  # under 5% faster
        },
    )
    assert picker.pick() == "python3-on-path"


def test_an_interpreter_of_several_names_keeps_its_best_time_under_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    with_candidates(
        monkeypatch,
        {
            "python3-on-path": probe(0.040, "/usr/bin/python3.11"),  # probed in a busy spell
            "pyenv-python3.11": probe(0.033, "/pyenv/3.11.7/bin/python3.11"),
            "/usr/bin/python3.11": probe(0.025, "/usr/bin/python3.11"),
        },
    )
    assert picker.pick() == "python3-on-path"


def test_each_candidate_takes_its_turn_round_after_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy spell during one candidate's first turn does not decide: its best time over the rounds does."""
    times = {"/pyenv/python3": iter([0.033, 0.034, 0.033]), "/usr/bin/python3": iter([0.060, 0.026, 0.025])}
    asked: list[str] = []

    def timed(name: str) -> object:
        asked.append(name)
        return probe(next(times[name]), name) if name in times else None

    monkeypatch.setattr(picker, "candidates", lambda: ["/pyenv/python3", "/missing/python3", "/usr/bin/python3"])
    monkeypatch.setattr(picker, "probe", timed)
    assert picker.pick() == "/usr/bin/python3"
    assert asked == ["/pyenv/python3", "/missing/python3", "/usr/bin/python3"] + [
        "/pyenv/python3",
        "/usr/bin/python3",
    ] * (picker.ROUNDS - 1)


def test_nothing_usable_falls_back_to_python3(monkeypatch: pytest.MonkeyPatch) -> None:
    with_candidates(monkeypatch, {"/usr/bin/python3": None})
    assert picker.pick() == "python3"


def test_the_running_interpreter_probes_as_itself() -> None:
    found = picker.probe(sys.executable)
    assert found is not None
    assert found.version == sys.version_info[:2] and found.venv
    assert found.executable == str(Path(sys.executable).resolve()) and 0 < found.seconds < 5
