"""Every flag survives narrowing byte for byte, and dbt's own CLI parser agrees.

Each command is narrowed to two nodes; the result must be the expected text, and dbt-core's click
parser must read the narrowed command into exactly the parameters of the original one, apart from
the selection (which becomes the two nodes) and `--indirect-selection` when the planner sets it.
A command that cannot be parsed safely is rerun exactly as written, with a warning.
"""

from __future__ import annotations

import shlex
import warnings
from pathlib import Path
from typing import Any

import pytest

from restart import commands
from restart.artifacts import NodeResult, RunResults
from restart.plan import StepArtifacts, make_plan
from tests.exactness.harness import single_step_run

NODES = ["n1", "n2"]
SELECTION = {"select", "exclude", "selector", "models", "indirect_selection"}

# (command, narrowed to NODES, indirect_empty)
CASES: list[tuple[str, str, bool]] = [
    ("dbt build", "dbt build --select n1 n2", False),
    ("dbt build", "dbt build --select n1 n2 --indirect-selection empty", True),
    ("dbt run --select a+ --target prod", "dbt run --target prod --select n1 n2", False),
    ("dbt run -t prod -s a", "dbt run -t prod --select n1 n2", False),
    ("dbt run --profile other --target ci", "dbt run --profile other --target ci --select n1 n2", False),
    ("dbt run --threads 8 --models a b", "dbt run --threads 8 --select n1 n2", False),
    ("dbt run -m a --exclude b c --full-refresh", "dbt run --full-refresh --select n1 n2", False),
    ("dbt run -f -s a", "dbt run -f --select n1 n2", False),
    ("dbt run --select=a b --exclude=c", "dbt run --select n1 n2", False),
    ("dbt run -sa b", "dbt run --select n1 n2", False),
    ("dbt run --select a --select b --threads 2", "dbt run --threads 2 --select n1 n2", False),
    ("dbt build --selector nightly --fail-fast", "dbt build --fail-fast --select n1 n2", False),
    ("dbt build --selector=nightly -x", "dbt build -x --select n1 n2", False),
    ("dbt build --warn-error -s a", "dbt build --warn-error --select n1 n2", False),
    (
        'dbt build --warn-error-options \'{"error": "all"}\' -s a',
        'dbt build --warn-error-options \'{"error": "all"}\' --select n1 n2',
        False,
    ),
    (
        "dbt build --defer --state /tmp --favor-state",
        "dbt build --defer --state /tmp --favor-state --select n1 n2",
        False,
    ),
    (
        "dbt build --select state:modified+ --defer --state /tmp",
        "dbt build --defer --state /tmp --select n1 n2",
        False,
    ),
    ("dbt build --empty --select a", "dbt build --empty --select n1 n2", False),
    ("dbt run --empty", "dbt run --empty --select n1 n2", False),
    (
        "dbt build --indirect-selection cautious -s a",
        "dbt build --indirect-selection cautious --select n1 n2",
        False,
    ),
    ("dbt build --indirect-selection=buildable -s a", "dbt build --select n1 n2 --indirect-selection empty", True),
    (
        "dbt build --resource-type model --resource-type seed",
        "dbt build --resource-type model --resource-type seed --select n1 n2",
        False,
    ),
    (
        "dbt build --exclude-resource-type unit_test -s a",
        "dbt build --exclude-resource-type unit_test --select n1 n2",
        False,
    ),
    ("dbt test --select a --store-failures", "dbt test --store-failures --select n1 n2", False),
    ("dbt seed --full-refresh --show", "dbt seed --full-refresh --show --select n1 n2", False),
    ("dbt snapshot --select s --vars 'x: 1'", "dbt snapshot --vars 'x: 1' --select n1 n2", False),
    # --vars in every quoting style; the quotes and the whitespace inside them are kept as written
    ('dbt run --vars \'{"who": "a b"}\' --select a', 'dbt run --vars \'{"who": "a b"}\' --select n1 n2', False),
    ("dbt run --vars \"{who: 'it''s'}\" -s a", "dbt run --vars \"{who: 'it''s'}\" --select n1 n2", False),
    ('dbt run --vars "{\\"a\\": \\"x y\\"}" -s a', 'dbt run --vars "{\\"a\\": \\"x y\\"}" --select n1 n2', False),
    ("dbt run --vars 'a: it'\"'\"'s'", "dbt run --vars 'a: it'\"'\"'s' --select n1 n2", False),
    ("dbt run --vars '{a: 1, b: [x, y]}'", "dbt run --vars '{a: 1, b: [x, y]}' --select n1 n2", False),
    ("dbt run --vars 'who: a  b' -s a", "dbt run --vars 'who: a  b' --select n1 n2", False),
    (
        "dbt run --vars '{\n  \"a\": 1,\n  b: two\n}' -s a",
        "dbt run --vars '{\n  \"a\": 1,\n  b: two\n}' --select n1 n2",
        False,
    ),
    ("dbt run --vars {a:\\ 1}", "dbt run --vars {a:\\ 1} --select n1 n2", False),
    ("dbt run --vars='{a: 1}' -s a", "dbt run --vars='{a: 1}' --select n1 n2", False),
    ("dbt run  -s a   --threads  4 ", "dbt run   --threads  4 --select n1 n2", False),
    ("dbt run\n  --select a\n  --target prod", "dbt run\n  --target prod --select n1 n2", False),
    # global flags before the sub-command
    ("dbt --debug build -s a", "dbt --debug build --select n1 n2", False),
    (
        "dbt --log-format json --no-partial-parse run",
        "dbt --log-format json --no-partial-parse run --select n1 n2",
        False,
    ),
    ("dbt --warn-error seed", "dbt --warn-error seed --select n1 n2", False),
    (
        "dbt --no-use-colors --log-level debug snapshot -s s",
        "dbt --no-use-colors --log-level debug snapshot --select n1 n2",
        False,
    ),
]


def dbt_params(line: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What dbt-core's own CLI parser makes of a command: (global params, sub-command params)."""
    from dbt.cli.main import cli

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        group = cli.make_context("dbt", shlex.split(line)[1:])
        rest = [*group.protected_args, *group.args]
        command = cli.get_command(group, rest[0])
        assert command is not None
        sub = command.make_context(rest[0], rest[1:], parent=group)
    return dict(group.params), dict(sub.params)


@pytest.mark.parametrize(("command", "narrowed", "indirect_empty"), CASES)
def test_narrowing_keeps_every_other_flag_byte_for_byte(
    command: str, narrowed: str, indirect_empty: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parsed = commands.parse(command)
    assert parsed.narrowed(NODES, indirect_empty=indirect_empty) == narrowed

    monkeypatch.setenv("DBT_PROFILES_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    before_global, before = dbt_params(command)
    after_global, after = dbt_params(narrowed)
    assert after_global == before_global
    assert {k: v for k, v in after.items() if k not in SELECTION} == {
        k: v for k, v in before.items() if k not in SELECTION
    }
    assert after["select"] == tuple(NODES)
    assert not after.get("exclude") and not after.get("selector") and not after.get("models")
    if not indirect_empty:
        assert after["indirect_selection"] == before["indirect_selection"]
    else:
        assert after["indirect_selection"] == "empty"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("dbt run --vars '{a: 1}", "unterminated single quote"),
        ('dbt run --vars "{a: 1}', "unterminated double quote"),
        ("dbt run --vars a\\", "trailing backslash"),
        ("dbt frobnicate --select a", "unknown dbt sub-command"),
        ("dbt --no-such-global value run", "unknown dbt sub-command"),
        ("dbt build -xs a", "selection inside the option group"),
        ("dbt build -fm a", "selection inside the option group"),
        ("python -m dbt build", "start with `dbt`"),
        ("DBT_TARGET=prod dbt build", "start with `dbt`"),
    ],
)
def test_a_command_that_cannot_be_parsed_is_rerun_as_written(command: str, problem: str) -> None:
    with pytest.raises(commands.CommandParseError, match=problem):
        commands.parse(command)
    failed = RunResults((NodeResult("model.shop.a", "error"),), {"which": "build"})
    step = make_plan(single_step_run(command), {4: StepArtifacts(failed)}).steps[0]
    assert step.action == "rerun"
    assert step.sent == command  # the exact bytes, not re-quoted
    assert "cannot parse" in step.warning


@pytest.mark.parametrize(
    ("command", "fail_fast"),
    [
        ("dbt build", False),
        ("dbt build --fail-fast", True),
        ("dbt build -x", True),
        ("dbt build -fx", True),
        ("dbt build --fail-fast --no-fail-fast", False),
        ("dbt build --vars 'x: --fail-fast'", False),
    ],
)
def test_fail_fast_is_recognised_in_every_spelling(command: str, fail_fast: bool) -> None:
    assert commands.parse(command).fail_fast is fail_fast


@pytest.mark.parametrize(
    ("command", "flag", "present"),
    [
        ("dbt --warn-error build", "--warn-error", True),
        ("dbt build --warn-error", "--warn-error", True),
        ("dbt build --warn-error-options '{}'", "--warn-error", False),
        ("dbt build -x", "--fail-fast", True),
    ],
)
def test_flags_are_found_before_and_after_the_sub_command(command: str, flag: str, present: bool) -> None:
    assert commands.parse(command).has_flag(flag) is present
