"""The restart's branches, decided and carried out against an in-memory dbt Cloud: no dbt, no HTTP."""

from __future__ import annotations

import io
from typing import cast

from restart import actions, settings, summary
from restart.api import DbtCloud
from restart.github import Context
from restart.orchestrate import Stop, restart
from restart.outcome import Outcome
from restart.records import SUCCESS
from tests.fake_cloud import FakeCloud, run_json

BASE = {"dbt-cloud-token": "tok", "account-id": "1", "job-id": "7", "poll-interval": "1"}


def run_restart(cloud: FakeCloud, **inputs: str) -> Outcome:
    config = settings.parse({**BASE, **{k.replace("_", "-"): v for k, v in inputs.items()}})
    log = actions.Log(actions=False, stream=io.StringIO())
    return restart(config, cast(DbtCloud, cloud), log, Context(), Stop())


def test_an_outcome_before_the_trigger_names_the_native_strategy() -> None:
    cloud = FakeCloud(runs=[run_json(100, SUCCESS)])
    outcome = run_restart(cloud, strategy="native")
    assert (outcome.status, outcome.strategy) == ("skipped", "native")
    assert "Strategy: `native`" in summary.summary(outcome)
