"""Several jobs in one step (`restart.jobs`), each against its own in-memory dbt Cloud: no HTTP, no dbt."""

from __future__ import annotations

import io

from restart import actions, settings
from restart.jobs import execute_all
from tests.factories import FakeStop
from tests.fake_cloud import FakeCloud
from tests.test_orchestrate import BASE, failed_build


def test_each_job_is_restarted_on_its_own_and_logged_whole() -> None:
    clouds = {7: failed_build(), 8: failed_build()}
    clouds[8].runs[0]["job_definition_id"] = 8

    def broken(job_id: int, limit: int = 25) -> list[object]:
        raise RuntimeError("a bug of ours")

    clouds[8].recent_runs = broken  # type: ignore[assignment,method-assign]
    stream = io.StringIO()
    config = settings.parse({**BASE, "job-id": "7, 8"})

    def connect(job: settings.Settings) -> FakeCloud:
        return clouds[job.job_id]

    outcomes = execute_all(config, actions.Log(actions=False, stream=stream), {}, FakeStop(), connect)

    assert [(job, outcome.status, outcome.exit_code) for job, outcome in outcomes] == [
        (7, "success", 0),
        (8, "error", 1),
    ]
    assert outcomes[1][1].headline == "job 8: unexpected RuntimeError: a bug of ours"
    log = stream.getvalue()
    assert "==== job 7: success ====" in log and "==== job 8: error ====" in log
    assert clouds[7].triggered and not clouds[8].triggered
