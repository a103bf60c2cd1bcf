"""One source for each fact, action.yml: each input's default (what `settings.parse` picks for an empty
input, the `Settings` field defaults and the CLI's help agree with it) and the `status` output's values. Pure.

The `docker://` route and the CLI read no action.yml, so they rely on the code's defaults being these.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from restart import cli, settings, summary
from restart.outcome import OUTCOME_STATUSES
from tests.runner import action_metadata

REQUIRED = {"dbt-cloud-token": "t", "account-id": "1", "job-id": "7"}
DEFAULTS = {
    name: str(spec["default"])
    for name, spec in action_metadata()["inputs"].items()
    if str(spec.get("default", "")) and "${{" not in str(spec["default"])  # expressions the runner evaluates
}


def field_of(name: str) -> str:
    return {"dbt-cloud-host": "base_url"}.get(name, name.replace("-", "_"))


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_an_empty_input_means_action_yml_s_default(name: str) -> None:
    empty = settings.parse(REQUIRED)
    given = settings.parse({**REQUIRED, name: DEFAULTS[name]})
    assert getattr(empty, field_of(name)) == getattr(given, field_of(name))


def test_every_default_together_changes_nothing() -> None:
    assert settings.parse(REQUIRED) == settings.parse({**REQUIRED, **DEFAULTS})


def test_the_settings_field_defaults_are_the_parsed_defaults() -> None:
    parsed = settings.parse(REQUIRED)
    for item in dataclasses.fields(settings.Settings):
        if item.default is not dataclasses.MISSING and item.name not in ("job_ids", "run_ids"):
            assert getattr(parsed, item.name) == item.default, item.name


def stated_default(help_text: str) -> str | None:
    """The default a CLI help line states: `(default 10)`, `skip (default)`, `select (..., default)`."""
    found = re.search(r"\(default ([^\s,)]+)", help_text) or re.search(
        r"(\S+) \((?:[^()]*, )?default(?:\)|:)", help_text
    )
    return found.group(1) if found else None


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_the_cli_help_states_action_yml_s_default(name: str) -> None:
    assert stated_default(cli.HELP[name]) == DEFAULTS[name]


def test_the_help_reader_reads_each_way_of_stating_a_default() -> None:
    assert [stated_default(t) for t in ("x (default 10)", "skip (default), run", "a (b, default) or c", "none")] == [
        "10",
        "skip",
        "a",
        None,
    ]


def test_the_outcome_statuses_are_the_status_output_action_yml_lists() -> None:
    described = action_metadata()["outputs"]["status"]["description"]
    listed = re.sub(r"\bor\b", ",", described.split(":", 1)[1]).replace(".", "").split(",")
    assert sorted(OUTCOME_STATUSES) == sorted(word.strip() for word in listed if word.strip())
    assert set(OUTCOME_STATUSES) == set(summary.ICONS)  # each has its icon, and no icon is for nothing
