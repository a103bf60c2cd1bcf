"""The action against a local dbt Cloud that behaves as the real one was recorded doing (field notes).

Timeouts end runs Cancelled, unreached steps are listed as Skipped, jobs add lint and compare-changes
steps, the account rate-limits with a five-minute cooldown, a token on the wrong host gets 401, an IP
allowlist answers 403 `account_access_denied`, run ids have 14 digits, and dbt Cloud's own reruns carry
`retrying_run_id`. Rate-limit tests run the action in-process with a client whose sleep only records the
pauses, so that waiting out a five-minute cooldown takes no time.

The timeouts run on a dbt platform release track (`TRACK`, tests/emulator/tracks.py: dbt 1.11 underneath,
artifacts stamped `2026.4.7+4533730`, the run on `latest`) and check that the failed run is on it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from restart import actions
from restart.api import DbtCloud
from restart.orchestrate import execute
from restart.settings import parse
from restart.signals import Stop
from tests.emulator import CANCELLED, ERROR, LocalDbtCloud
from tests.emulator.tracks import LATEST_BEFORE_1_12, TRACKS, assert_on_track
from tests.runner import inputs, run_action

FIRST_RUN_ID = 70403103922468  # 14 digits, as real run ids have had since mid-2024
TIMEOUT_MESSAGE = "This run timed out after"
TRACK = LATEST_BEFORE_1_12


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDbtCloud]:
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud"), first_run_id=FIRST_RUN_ID) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def reset(cloud: LocalDbtCloud) -> Iterator[None]:
    yield
    cloud.clear_http_faults()
    cloud.set_step_delay(0)
    cloud.api.cell_host = None
    cloud.api.allowed_ips = None


@pytest.fixture(scope="module")
def failed(cloud: LocalDbtCloud) -> tuple[int, int]:
    """(job, run): a job with SQL lint and compare changes whose seed failed; the later step is Skipped."""
    job_id = cloud.add_job(
        ["dbt seed --select raw_orders", "dbt run --select greeting"],
        environment_id=1,
        run_lint=True,
        run_compare_changes=True,
    )
    cloud.engine.skipped_step_status = ERROR  # the code is unknown: the nastiest guess, an error
    cloud.set_faults(["raw_orders"])
    try:
        run_id = cloud.trigger(job_id)
        assert cloud.wait(run_id)["status"] == ERROR
    finally:
        cloud.set_faults([])
        cloud.engine.skipped_step_status = None
    return job_id, run_id


def artifact_reads(cloud: LocalDbtCloud, run_id: int) -> list[str]:
    return [
        (r.query.get("step") or ["?"])[0]
        for r in cloud.requests
        if r.method == "GET" and f"/runs/{run_id}/artifacts/" in r.path
    ]


def test_a_native_dry_run_shows_what_dbt_cloud_s_rerun_would_run(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path
) -> None:
    job_id, run_id = failed
    result = run_action(tmp_path, inputs(cloud, job_id, strategy="native", dry_run="true"))

    assert result.exit_code == 0, result.log
    assert result.outputs["status"] == "planned"
    expected = "dbt Cloud's rerun: dbt retry (of the failed step: dbt seed --select raw_orders)"
    assert expected + ", then dbt run --select greeting" in result.summary
    assert any(r.path.endswith(f"/runs/{run_id}/retry/") for r in cloud.requests)
    assert not any(r.method == "POST" for r in cloud.requests)


def test_skipped_lint_and_compare_steps_plan_right(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path
) -> None:
    job_id, run_id = failed
    steps = [(s["name"], s["status_humanized"]) for s in cloud.run(run_id)["run_steps"][3:]]
    assert steps == [
        ("Invoke dbt with `dbt sqlfluff lint`", "Success"),
        ("Invoke dbt with `dbt seed --select raw_orders`", "Error"),
        ("Invoke dbt with `dbt run --select greeting`", "Skipped"),
    ]

    result = run_action(tmp_path, inputs(cloud, job_id, dry_run="true"))

    assert result.exit_code == 0, result.log
    sent = result.json_output("steps")
    assert sent[0].startswith("dbt seed --select ") and "raw_orders" in sent[0]
    assert sent[1:] == ["dbt run --select greeting"]
    assert "never ran: an earlier step failed" in result.summary
    assert set(artifact_reads(cloud, run_id)) == {"5"}, "only the failed step's artifacts are read"
    assert len(str(run_id)) == 14 and result.outputs["previous-run-id"] == str(run_id)


def test_a_token_on_the_wrong_host_names_the_host_too(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path
) -> None:
    job_id, _ = failed
    cloud.api.cell_host = "localhost"  # the account lives on its cell: 127.0.0.1 is "another host"

    wrong = run_action(tmp_path, inputs(cloud, job_id, dry_run="true"))
    right = run_action(
        tmp_path,
        {**inputs(cloud, job_id, dry_run="true"), "dbt-cloud-host": cloud.base_url.replace("127.0.0.1", "localhost")},
    )

    assert wrong.exit_code == 1
    [error] = wrong.errors()
    assert "HTTP 401: Invalid token." in error and "dbt-cloud-token" in error and "dbt-cloud-host" in error
    assert "Access URL" in error and cloud.token not in error
    assert right.exit_code == 0 and right.outputs["status"] == "planned", right.log


def test_an_ip_allowlist_refusal_says_so(cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path) -> None:
    job_id, _ = failed
    cloud.api.allowed_ips = ["203.0.113.7"]

    result = run_action(tmp_path, inputs(cloud, job_id, dry_run="true"))

    assert result.exit_code == 1
    [error] = result.errors()
    assert "account_access_denied" in error and "IP" in error and "self-hosted runner" in error
    assert "check its permissions" not in error


class Pauses:
    """A sleep that records how long it was asked to wait, and returns at once."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def restart_in_process(cloud: LocalDbtCloud, job_id: int, **values: str) -> tuple[object, list[float], str]:
    """Run the action's `execute` in-process with a client that does not really sleep; (outcome, pauses, log)."""
    settings = parse(inputs(cloud, job_id, **values))
    pauses = Pauses()
    client = DbtCloud(settings.base_url, settings.token, settings.account_id, sleep=pauses)
    stream = io.StringIO()
    outcome = execute(settings, actions.Log(actions=True, stream=stream), {}, Stop(), client=client)
    return outcome, pauses.seconds, stream.getvalue()


def test_rate_limits_are_waited_out_on_reads_the_trigger_and_polls(
    cloud: LocalDbtCloud, failed: tuple[int, int]
) -> None:
    job_id, run_id = failed
    cloud.rate_limit("GET", rf"/runs/{run_id}/$", retry_after=300)  # reading the failed run
    cloud.rate_limit("POST", rf"/jobs/{job_id}/run/$", retry_after=300)  # the trigger, refused before running
    # Polls (no query string): a cooldown longer than the client waits at once, 5xx and a dropped connection.
    cloud.rate_limit("GET", r"/runs/\d+/$", times=3, retry_after=300).query = "^$"
    cloud.add_http_fault("GET", r"/runs/\d+/$", query="^$", status=503, times=6, headers={"Retry-After": "0"})
    cloud.add_http_fault("GET", r"/runs/\d+/$", query="^$", drop=True, times=1)

    outcome, pauses, log = restart_in_process(cloud, job_id)

    assert outcome.status == "success", log  # type: ignore[attr-defined]
    created = [r.id for r in cloud.engine.runs.values() if r.job.id == job_id and r.id > run_id]
    assert len(created) == 1, "the trigger was sent once more only because the 429 refused it"
    assert pauses.count(300.0) == 4, pauses  # read, trigger, and two polls (the third would pass 420 s)
    assert "still waiting for it" in log and "lost track" not in log
    new = cloud.run(created[0])
    assert [s["name"] for s in new["run_steps"]][3] == "Invoke dbt with `dbt sqlfluff lint`"
    assert new["run_steps"][-1]["name"] == "Invoke dbt with `dbt compare --select state:modified`"
    assert new["trigger"]["steps_override"][1:] == ["dbt run --select greeting"]


def test_polls_that_keep_failing_wait_until_the_timeout_then_cancel(cloud: LocalDbtCloud) -> None:
    cloud.set_environment(2, engine=TRACK)
    job_id, run_id = cloud.failing_run(["dbt seed --select raw_customers"], ["raw_customers"], environment_id=2)
    assert_on_track(cloud, run_id, TRACK)
    cloud.set_step_delay(60)
    cloud.add_http_fault("GET", r"/runs/\d+/$", query="^$", status=503, times=10_000)

    outcome, _, log = restart_in_process(cloud, job_id, timeout="3", poll_interval="0.5")

    assert outcome.status == "timeout", log  # type: ignore[attr-defined]
    new_id = outcome.new_run.id  # type: ignore[attr-defined]
    assert cloud.wait(new_id, timeout=60)["status"] == CANCELLED
    assert "lost track" not in log


def test_a_timed_out_run_reruns_its_interrupted_step_as_written(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id = cloud.add_job(
        ["dbt seed", "dbt run --select greeting"], environment_id=3, timeout_seconds=10, engine=TRACK
    )
    cloud.set_step_delay(30)
    try:
        run_id = cloud.trigger(job_id)
        run = cloud.wait(run_id, timeout=60)
    finally:
        cloud.set_step_delay(0)
    assert run["status"] == CANCELLED and run["status_message"].startswith(TIMEOUT_MESSAGE)
    interrupted = run["run_steps"][-1]["index"]
    assert run["run_steps"][-1]["name"] == "Invoke dbt with `dbt seed`", "the timeout hit the first command"
    # dbt writes partial results for an interrupted step (stamped as the build stamps them): here, one
    # seed done and one failed.
    partial = (
        b'{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",'
        b' "dbt_version": "' + TRACKS[TRACK].stamp.encode() + b'"},'
        b' "args": {"which": "seed"}, "results": ['
        b'{"unique_id": "seed.shop.raw_orders", "status": "success", "message": ""},'
        b'{"unique_id": "seed.shop.raw_customers", "status": "error", "message": "interrupted"}]}'
    )
    cloud.override_artifact(run_id, interrupted, "run_results.json", partial)
    assert cloud.run(run_id)["dbt_version"] == TRACKS[TRACK].track  # dbt never got to write: the served stamp

    result = run_action(tmp_path, inputs(cloud, job_id, dry_run="true"))

    assert result.exit_code == 0, result.log
    assert result.json_output("steps") == ["dbt seed", "dbt run --select greeting"]
    assert "⏱️ timed out" in result.summary
    assert "seed.shop.raw_customers" in result.summary, "the failures it recorded are still shown"
    assert "never ran: the run timed out before it" in result.summary
    assert "Engine of the failed run: dbt platform Latest track (build 2026.4.7)" in result.summary
    warnings = [line for line in result.log.splitlines() if line.startswith("::warning")]
    assert any("stopped by the job's timeout" in line for line in warnings), result.log

    native = run_action(tmp_path, inputs(cloud, job_id, strategy="native", dry_run="true"))
    assert native.exit_code == 1
    [error] = native.errors()
    assert "RETRY_NOT_FAILED_RUN" in error and "cancelled by its job's timeout; strategy `select`" in error


def test_runs_dbt_cloud_already_reran_are_not_restarted_again(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, run_id = cloud.failing_run(["dbt seed --select raw_orders"], ["raw_orders"], environment_id=4)
    cloud.set_faults(["raw_orders"])
    try:
        rerun = cloud.engine.rerun(cloud.engine.jobs[job_id])
        assert cloud.wait(rerun.id)["status"] == ERROR
    finally:
        cloud.set_faults([])
    assert cloud.run(rerun.id)["retrying_run_id"] == run_id

    given = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), dry_run="true"))
    guarded = run_action(tmp_path, inputs(cloud, job_id, max_attempts="1", dry_run="true"))

    assert (given.exit_code, given.outputs["status"]) == (0, "skipped")
    assert f"run {run_id} was already rerun from failure by run {rerun.id}" in given.log
    assert (guarded.exit_code, guarded.outputs["status"]) == (0, "skipped")
    assert f"run {run_id} has already been restarted 1 time(s)" in guarded.log
