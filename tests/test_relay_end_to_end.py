"""The relay path end to end, with a real dbt run: the local dbt Cloud's webhooks, the relay as its own
process, the local GitHub, then the action on the dispatch event, restarting the run node for node.

Slow (one failing dbt run and one restart, about 20 s): the relay's other behaviour is in test_relay.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.emulator import LocalDbtCloud
from tests.emulator.webhooks import Attempt
from tests.fake_dispatches import FakeDispatches
from tests.relay_process import SECRET, running_relay
from tests.runner import run_action
from tests.test_restart_end_to_end import assert_restarted_ok, new_run_steps, to_rerun


def attempts_of(cloud: LocalDbtCloud, run_id: int, event_type: str, count: int, timeout: float) -> list[Attempt]:
    """The first `count` answered deliveries of one event of a run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [a for a in cloud.webhooks.attempts if a.run_id == run_id and a.event_type == event_type]
        if len(found) >= count:
            return found[:count]
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} {event_type} deliveries for run {run_id}: {cloud.webhooks.attempts}")


def test_a_dbt_cloud_scheduled_failure_is_restarted_through_the_relay(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    hooks = cloud.webhooks
    hooks.ingestion_gap = 2.0
    hooks.duplicates = "same-id"  # every event delivered twice: a redelivery must not restart twice
    job_id = cloud.add_job(["dbt build"], name="nightly")
    artifact = f"{cloud.base_url}/api/v2/accounts/{cloud.account_id}/runs/{{}}/artifacts/run_results.json"
    auth = {"Authorization": f"Token {cloud.token}"}
    with FakeDispatches() as github, running_relay(github) as relay:
        subscription = hooks.subscribe(relay.url + "/", SECRET, job_ids=(job_id,))
        cloud.set_faults(["stg_orders"])
        run_id = cloud.trigger(job_id)  # as dbt Cloud's scheduler would: no workflow, no input names it
        cloud.wait(run_id)
        cloud.set_faults([])
        errored = attempts_of(cloud, run_id, "job.run.errored", 1, timeout=10)
        assert requests.get(artifact.format(run_id), headers=auth, timeout=10).status_code == 404, "not ingested yet"
        assert github.attempts == [], "errored starts nothing: the artifacts are not readable yet"
        [dispatch] = github.wait_for(1, timeout=20)
        assert requests.get(artifact.format(run_id), headers=auth, timeout=10).status_code == 200
        completed = attempts_of(cloud, run_id, "job.run.completed", 2, timeout=20)  # the event and its duplicate
        errored = attempts_of(cloud, run_id, "job.run.errored", 2, timeout=20)
        subscription.active = False
    assert len(github.dispatches) == 1
    assert [a.status for a in errored] == [200, 200] and {a.status for a in completed} == {200, 202}
    assert dispatch.arrived - hooks.sent[(run_id, "job.run.completed")] < 5.0
    payload = dispatch.client_payload
    assert (payload["job_id"], payload["run_id"], payload["run_status_code"]) == (str(job_id), str(run_id), "20")
    assert payload["account_id"] == str(cloud.account_id)

    # The restart workflow, started at once on that event: no input names the account, the job or the run.
    event = {"action": dispatch.event_type, "client_payload": payload, "branch": "main"}
    expected = to_rerun(cloud, run_id, 4)
    with_ = {"dbt-cloud-token": cloud.token, "dbt-cloud-host": cloud.base_url, "poll-interval": "0.3"}
    result = run_action(tmp_path, with_, event=event, event_name="repository_dispatch")
    assert_restarted_ok(result, run_id)
    assert set(new_run_steps(cloud, result)[4]) == expected
