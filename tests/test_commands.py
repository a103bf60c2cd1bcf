"""Parsing dbt step commands and narrowing them without touching any other flag."""

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from restart import commands

NODES = ["model.shop.a", "model.shop.b"]


@pytest.mark.parametrize(
    ("command", "name", "narrowed"),
    [
        ("dbt build", "build", "dbt build --select x y"),
        ("dbt run --select staging+ --target prod", "run", "dbt run --target prod --select x y"),
        ("dbt run -s a b c --full-refresh", "run", "dbt run --full-refresh --select x y"),
        ("dbt run -m a --exclude b c --threads 8", "run", "dbt run --threads 8 --select x y"),
        ("dbt run --select=a+ --exclude=b", "run", "dbt run --select x y"),
        ("dbt build --selector nightly --fail-fast", "build", "dbt build --fail-fast --select x y"),
        (
            'dbt run --vars \'{"who": "a b"}\' --select a',
            "run",
            'dbt run --vars \'{"who": "a b"}\' --select x y',
        ),
        ('dbt run --vars "{who: \\"x y\\"}" -s a', "run", 'dbt run --vars "{who: \\"x y\\"}" --select x y'),
        ("dbt --debug --log-format json seed", "seed", "dbt --debug --log-format json seed --select x y"),
        ("dbt test --defer --state prod-artifacts --favor-state", "test", None),
        ("dbt docs generate --no-compile", "docs generate", None),
        ("dbt source freshness", "source freshness", None),
        ("dbt run-operation grant --args '{a: 1}'", "run-operation", None),
    ],
)
def test_parse_and_narrow_keeps_every_other_flag(command: str, name: str, narrowed: str | None) -> None:
    parsed = commands.parse(command)
    assert parsed.name == name
    if narrowed is not None:
        assert parsed.narrowed(["x", "y"], indirect_empty=False) == narrowed


def test_narrowing_replaces_indirect_selection_when_asked() -> None:
    parsed = commands.parse("dbt build --indirect-selection cautious --select a")
    assert parsed.narrowed(["x"], indirect_empty=True) == "dbt build --select x --indirect-selection empty"


def test_vars_with_newlines_survive_byte_for_byte() -> None:
    raw = "dbt run --vars '{\n  \"a\": \"it''s\",\n  b: [1, 2]\n}' --select old"
    parsed = commands.parse(raw)
    assert parsed.narrowed(["x"], indirect_empty=False) == raw.replace(" --select old", "") + " --select x"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("", "start with `dbt`"),
        ("python run.py", "start with `dbt`"),
        ("dbt frobnicate", "unknown dbt sub-command"),
        ("dbt run --vars '{a: 1}", "unterminated single quote"),
        ('dbt run --vars "{a: 1}', "unterminated double quote"),
        ("dbt --debug", "no dbt sub-command"),
    ],
)
def test_unparseable_commands_are_refused(command: str, problem: str) -> None:
    with pytest.raises(commands.CommandParseError, match=problem):
        commands.parse(command)


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12)


@given(st.lists(words, min_size=1, max_size=6))
def test_tokenizer_agrees_with_shlex(values: list[str]) -> None:
    line = shlex.join(["dbt", "run", *values])
    assert [t.value for t in commands.tokenize(line)] == shlex.split(line)


@given(st.lists(words, max_size=4), st.lists(words.filter(lambda w: not w.startswith("-")), max_size=3))
def test_narrowing_only_removes_the_selection(flags: list[str], selected: list[str]) -> None:
    """Whatever the other words are, they come back unchanged and in order."""
    others = [
        w
        for w in flags
        if w not in commands.SELECTION_FLAGS
        and not w.startswith(("--select", "-s", "-m"))
        and not (w.startswith("-") and not w.startswith("--") and ("s" in w or "m" in w))  # `-xs a` selects
    ]
    line = shlex.join(["dbt", "build", *(["--select", *selected] if selected else []), "--threads", "4", *others])
    parsed = commands.parse(line)
    result = shlex.split(parsed.narrowed(["n1", "n2"], indirect_empty=False))
    assert result == ["dbt", "build", "--threads", "4", *others, "--select", "n1", "n2"]


@pytest.mark.parametrize(
    ("command", "selected", "full_refresh", "fail_fast"),
    [
        ("dbt run -sstaff", ["staff"], False, False),
        ("dbt build -sxyz_model", ["xyz_model"], False, False),
        ("dbt build -mfx", ["fx"], False, False),
        ("dbt run -ttarget_fx -s a", ["a"], False, False),
        ("dbt build -fx -sa", ["a"], True, True),
        ("dbt build -xf", [], True, True),
        ("dbt build -s a -x", ["a"], False, True),
    ],
)
def test_one_reading_of_a_short_option_group_answers_every_question(
    command: str, selected: list[str], full_refresh: bool, fail_fast: bool
) -> None:
    """A short group ends at its first letter that takes a value: the rest is that value, for every
    question (`-sstaff` selects `staff`; it has no `-f` and no `-x`)."""
    parsed = commands.parse(command)
    assert parsed.option_values(commands.INCLUDE_FLAGS) == selected
    assert parsed.has_flag("--full-refresh") is full_refresh
    assert parsed.fail_fast is fail_fast
    assert parsed.has_flag("--fail-fast") is fail_fast
