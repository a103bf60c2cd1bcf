"""The action end to end: entrypoint.py run as the runner runs it, against the local dbt Cloud.

Each scenario makes a real dbt run fail in the emulator, clears the fault (the "fix"), runs the
action, and checks what the new run really executed, node for node, from its run_results.json.
Most shapes run on a dbt platform release track (`TRACK`: the emulator's release-track mode,
tests/emulator/tracks.py, dbt 1.11 underneath): artifacts stamped `2026.4.7+4533730`, the run on
`latest`. These are the multi-step job, the failing data test, the shared-name node, dbt Cloud's own rerun
and the timeout, and each one checks that the failed run's artifacts carry the stamp. The single build
runs on both plain dbt 1.11 and the track. The dry run and the other cases stay on plain dbt 1.11, as do
the other end-to-end modules (test_faults, test_cli, ...). A build after 1.12's rules reached Latest is
covered by tests/test_dbt_1_12.py.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.emulator import LocalDbtCloud
from tests.emulator.runtimes import DEFAULT
from tests.emulator.tracks import LATEST_BEFORE_1_12, TRACKS, assert_on_track
from tests.runner import ROOT, ActionResult, inputs, run_action

RETRY = {"error", "fail", "skipped", "runtime error", "partial success"}
TRACK = LATEST_BEFORE_1_12  # the release-track build most scenarios run on: dbt 1.11 underneath, restamped


def environment(cloud: LocalDbtCloud, environment_id: int, engine: str) -> int:
    """The environment a scenario runs in: its own on dbt 1.11, else its twin (id + 100) switched to `engine`."""
    if engine == DEFAULT:
        return environment_id
    cloud.set_environment(environment_id + 100, engine=engine)
    return environment_id + 100


def assert_engine_named(cloud: LocalDbtCloud, result: ActionResult, run_id: int, engine: str) -> None:
    """The failed run's engine, as the local dbt Cloud recorded it and as the summary names it."""
    run, build = cloud.run(run_id), TRACKS.get(engine)
    job = requests.get(
        f"{cloud.base_url}/api/v2/accounts/{cloud.account_id}/jobs/{run['job_definition_id']}/",
        headers={"Authorization": f"Token {cloud.token}"},
        timeout=30,
    ).json()["data"]
    if build is None:
        assert job["dbt_version"] is None  # the job inherits its environment's dbt version
        assert f"Engine of the failed run: dbt {run['dbt_version']}" in result.summary
        return
    assert (run["dbt_version"], run["job"]["dbt_version"], job["dbt_version"]) == (build.track,) * 3
    assert_on_track(cloud, run_id, engine)
    assert f"Engine of the failed run: dbt platform Latest track (build {build.stamp.split('+')[0]})" in result.summary


def to_rerun(cloud: LocalDbtCloud, run_id: int, step: int) -> set[str]:
    """What `dbt retry` would rerun for that step: its retryable nodes, hooks aside."""
    return {
        uid
        for uid, status in cloud.executed_nodes(run_id)[step].items()
        if status in RETRY and not uid.startswith("operation.")
    }


def new_run_steps(cloud: LocalDbtCloud, result: ActionResult) -> dict[int, dict[str, str]]:
    return cloud.executed_nodes(int(result.outputs["run-id"]))


def posts(cloud: LocalDbtCloud) -> list[str]:
    return [r.path for r in cloud.requests if r.method == "POST"]


def outline(summary: str) -> list[str]:
    """A summary's structure: headings, list items, table rules and collapsibles, numbers and times blanked."""
    keep = ("#", "- ", "|---", "<details", "<summary", "<pre", "```")
    lines = [line for line in summary.splitlines() if line.startswith(keep)]
    lines = [re.sub(r"^(- \*\*New run\*\* .*?) in .*$", r"\1", line) for line in lines]  # drop the duration
    lines = [re.sub(r"^(- Engine of the failed run:) .*$", r"\1 ENGINE", line) for line in lines]
    return [re.sub(r"\d+", "N", re.sub(r"\(http[^)]*\)", "(URL)", line)) for line in lines]


def assert_restarted_ok(result: ActionResult, previous_run: int) -> None:
    assert result.exit_code == 0, result.log
    assert result.outputs["status"] == "success", result.log
    assert result.outputs["restarted"] == "true"
    assert result.outputs["previous-run-id"] == str(previous_run)
    assert result.outputs["run-url"].startswith("http://127.0.0.1")
    assert result.errors() == []


@pytest.mark.parametrize("engine", [DEFAULT, LATEST_BEFORE_1_12])
def test_single_build_reruns_exactly_the_failed_and_skipped_nodes(
    cloud: LocalDbtCloud, tmp_path: Path, engine: str
) -> None:
    job_id, run_id = cloud.failing_run(["dbt build"], ["stg_orders"], environment_id=environment(cloud, 1, engine))
    expected = to_rerun(cloud, run_id, 4)
    assert "model.shop.stg_orders" in expected and len(expected) > 3

    result = run_action(tmp_path, inputs(cloud, job_id, payload='{"threads_override": 2, "git_branch": "main"}'))

    assert_restarted_ok(result, run_id)
    body = next(r.json for r in reversed(cloud.requests) if r.method == "POST" and r.path.endswith("/run/"))
    assert body["threads_override"] == 2 and body["git_branch"] == "main"
    assert body["steps_override"] == result.json_output("steps")
    assert f"#{run_id}" in body["cause"] and "https://github.com/acme/analytics/actions/runs/4242" in body["cause"]
    executed = new_run_steps(cloud, result)
    assert list(executed) == [4], "the restart should have exactly one command step"
    assert set(executed[4]) == expected
    assert set(executed[4].values()) <= {"success", "pass"}
    assert set(result.json_output("rerun-nodes")) == expected
    [command] = result.json_output("steps")
    assert command.startswith("dbt build --select ")
    assert "stg_orders" in result.summary and "narrowed to" in result.summary
    assert_engine_named(cloud, result, run_id, engine)
    # a build from before 1.12's rules reached Latest: nothing can have run on stg_orders' stale data
    [read] = [line for line in result.log.splitlines() if "step 4: reading manifest.json" in line]
    assert "on_error: continue" not in read, read


def test_multi_step_job_keeps_flags_and_reruns_unreached_steps(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    steps = ["dbt seed", 'dbt run --select staging+ --vars \'{"who": "a b"}\'', "dbt test", "dbt docs generate"]
    job_id, run_id = cloud.failing_run(steps, ["stg_payments"], environment_id=environment(cloud, 2, TRACK))
    expected = to_rerun(cloud, run_id, 5)

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert_restarted_ok(result, run_id)
    sent = result.json_output("steps")
    assert len(sent) == 3
    assert sent[0].startswith('dbt run --vars \'{"who": "a b"}\' --select ')
    assert sent[1:] == ["dbt test", "dbt docs generate"]
    executed = new_run_steps(cloud, result)
    assert set(executed[4]) == expected, "the narrowed run step ran other nodes than the failed and skipped ones"
    assert all(status == "pass" for status in executed[5].values())

    # The log a person reads: one group per phase, the new run's URL as a notice, a line per status change.
    new_id, lines = result.outputs["run-id"], result.log.splitlines()
    groups = [line for line in lines if line.startswith("::group::")]
    assert groups == [
        "::group::Find the run to restart",
        "::group::Plan",
        "::group::Trigger",
        f"::group::Wait for run {new_id}",
    ]
    assert lines.count("::endgroup::") == len(groups)
    assert f"::notice title=dbt Cloud run::Started run {new_id}: {result.outputs['run-url']}" in lines
    progress = [re.fullmatch(rf"\[(\d\d):(\d\d)\] run {new_id}: (\w+)", line) for line in lines]
    changes = [(int(m[1]) * 60 + int(m[2]), m[3]) for m in progress if m]
    statuses = [status for _, status in changes]
    assert statuses[-1] == "success" and "running" in statuses
    assert all(a != b for a, b in itertools.pairwise(statuses)), "one progress line per status change"
    assert [s for s, _ in changes] == sorted(s for s, _ in changes)
    assert not [line for line in lines if line.lower().startswith("debug")], "debug goes through ::debug:: only"

    # The summary: the failure region with its edges from the manifest, and what the new run did.
    region = result.summary.split("```mermaid", 1)[1].split("```", 1)[0]
    assert "stg_payments" in region and len(re.findall(r"n\d+ --> n\d+", region)) >= len(expected) - 1
    assert f"### Results of run #{new_id}" in result.summary
    assert f"{len(expected)} success" in result.summary
    # docs/sample-summary.md is this scenario (tests/demo.py --sample): it shows what the code writes today.
    sample = (ROOT / "docs" / "sample-summary.md").read_text(encoding="utf-8")
    assert outline(result.summary) == outline(sample), (
        "regenerate: python -m tests.demo --sample docs/sample-summary.md"
    )

    # Verified, and what it saved: the seeds of the dropped step (its time from run_steps) and the
    # models the failed step had built (their execution_time).
    assert result.outputs["verified"] == "true" and result.json_output("missing-nodes") == []
    assert f"Verified: {len(expected)} of {len(expected)} planned nodes ran" in result.summary
    failed = cloud.executed_nodes(run_id)
    seeds = [uid for uid in failed[4] if not uid.startswith("operation.")]
    built = [
        r
        for r in (cloud.artifact(run_id, 5) or {})["results"]
        if r["status"] == "success" and not r["unique_id"].startswith("operation.")
    ]
    assert seeds and built and result.outputs["avoided-nodes"] == str(len(seeds) + len(built))
    seed_step = next(s for s in cloud.run(run_id)["run_steps"] if s["index"] == 4)
    hours, minutes, seconds = (int(part) for part in seed_step["duration"].split(":"))
    saved = hours * 3600 + minutes * 60 + seconds + sum(r["execution_time"] for r in built)
    assert float(result.outputs["avoided-seconds"]) == pytest.approx(saved, abs=0.06)
    assert f"**Skipped {len(seeds) + len(built)} nodes that already succeeded: about " in result.summary
    assert_engine_named(cloud, result, run_id, TRACK)


def test_failing_test_reruns_the_test_and_what_it_skipped(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, run_id = cloud.failing_run(
        ["dbt build"], ["not_null_stg_orders_order_id"], environment_id=environment(cloud, 3, TRACK)
    )
    failed = cloud.executed_nodes(run_id)[4]
    tests_failed = {u for u, s in failed.items() if s == "fail"}
    assert len(tests_failed) == 1
    expected = to_rerun(cloud, run_id, 4)

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert_restarted_ok(result, run_id)
    assert set(new_run_steps(cloud, result)[4]) == expected
    assert_engine_named(cloud, result, run_id, TRACK)


@pytest.mark.parametrize(
    ("fault", "rerun", "not_rerun"),
    [
        ("shop_utils.calendar", "model.shop_utils.calendar", "model.shop.calendar"),
        ("dim_customers.v1", "model.shop.dim_customers.v1", "model.shop.dim_customers.v2"),
    ],
    ids=["ambiguous-name", "versioned-model"],
)
def test_a_node_sharing_its_name_selects_only_itself(
    cloud: LocalDbtCloud, tmp_path: Path, fault: str, rerun: str, not_rerun: str
) -> None:
    job_id, run_id = cloud.failing_run(["dbt build"], [fault], environment_id=environment(cloud, 4, TRACK))
    expected = to_rerun(cloud, run_id, 4)
    assert rerun in expected and not_rerun not in expected

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert_restarted_ok(result, run_id)
    executed = set(new_run_steps(cloud, result)[4])
    assert executed == expected
    assert_engine_named(cloud, result, run_id, TRACK)


def test_dry_run_plans_without_triggering(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, run_id = cloud.failing_run(
        ["dbt seed", "dbt build --exclude resource_type:snapshot"], ["raw_payments"], environment_id=5
    )
    before = len(posts(cloud))

    result = run_action(tmp_path, inputs(cloud, job_id, dry_run="true", run_id=str(run_id)))

    assert result.exit_code == 0, result.log
    assert result.outputs["status"] == "planned"
    assert result.outputs["restarted"] == "false"
    assert result.outputs["run-id"] == ""
    assert result.json_output("steps")[0] == "dbt seed --select file:raw_payments,resource_type:seed,package:shop"
    assert result.json_output("steps")[1] == "dbt build --exclude resource_type:snapshot"
    assert len(posts(cloud)) == before, "a dry run must not trigger anything"
    assert "planned" in result.summary

    # The same plan from the command line, outside Actions: JSON on stdout, log on stderr.
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "restart",
            "--account-id",
            str(cloud.account_id),
            "--job-id",
            str(job_id),
            "--host",
            cloud.base_url,
            "--dry-run",
            "true",
            "--json",
        ],
        env={"PATH": os.environ["PATH"], "DBT_CLOUD_SERVICE_TOKEN": cloud.token},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)
    assert printed["status"] == "planned"
    assert printed["steps"] == result.json_output("steps") and printed["restarted"] is False
    assert "::" not in cli.stderr


@pytest.mark.parametrize(
    ("mode", "code", "status"), [("skip", 0, "skipped"), ("fail", 1, "error"), ("run", 0, "success")]
)
def test_previous_run_succeeded(cloud: LocalDbtCloud, tmp_path: Path, mode: str, code: int, status: str) -> None:
    job_id = cloud.add_job(["dbt seed"], environment_id=6)
    run_id = cloud.trigger(job_id)
    assert cloud.wait(run_id)["status"] == 10
    before = len(posts(cloud))

    result = run_action(tmp_path, inputs(cloud, job_id, if_previous_succeeded=mode))

    assert result.exit_code == code, result.log
    assert result.outputs["status"] == status
    assert result.outputs["previous-run-id"] == str(run_id)
    triggered = posts(cloud)[before:]
    if mode == "run":
        assert triggered == [f"/api/v2/accounts/{cloud.account_id}/jobs/{job_id}/run/"]
        body = next(r.json for r in reversed(cloud.requests) if r.method == "POST")
        assert "steps_override" not in body
    else:
        assert triggered == []
        assert result.outputs["restarted"] == "false"
    if mode == "fail":
        assert len(result.errors()) == 1 and "succeeded" in result.errors()[0]


def test_native_strategy_uses_dbt_clouds_rerun(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, run_id = cloud.failing_run(
        ["dbt build"],
        ["orders"],
        environment_id=environment(cloud, 7, TRACK),
        category="api",
        schema_override="dbt_native",
    )
    assert_on_track(cloud, run_id, TRACK)

    result = run_action(tmp_path, inputs(cloud, job_id, strategy="native"))

    assert_restarted_ok(result, run_id)
    assert posts(cloud)[-1] == f"/api/v2/accounts/{cloud.account_id}/jobs/{job_id}/rerun/"
    # dbt Cloud's rerun keeps the failed run's context by itself: the action sends nothing, says so.
    assert [r.json for r in cloud.requests if r.path.endswith("/rerun/")] == [None]
    assert cloud.run(int(result.outputs["run-id"]))["trigger"]["schema_override"] == "dbt_native"
    assert result.json_output("context") == {}
    assert "- Context: the failed run's own, kept by dbt Cloud's rerun itself" in result.summary

    # The first run has been rerun from failure (the new run's retrying_run_id names it): not again.
    again = run_action(tmp_path, inputs(cloud, job_id, strategy="native", run_id=str(run_id)))
    assert (again.exit_code, again.outputs["status"]) == (0, "skipped")
    assert f"run {run_id} was already rerun from failure by run {result.outputs['run-id']}" in again.log

    # A failed run that is no longer the job's latest: dbt Cloud refuses, and the action says why.
    older = cloud.trigger(job_id, steps_override=["dbt run-operation no_such_macro"])
    cloud.wait(cloud.trigger(job_id, steps_override=["dbt run-operation no_such_macro"]))
    latest = run_action(tmp_path, inputs(cloud, job_id, strategy="native", run_id=str(older)))
    assert latest.exit_code == 1
    [error] = latest.errors()
    assert "RETRY_NOT_LATEST_RUN" in error


def test_timeout_cancels_the_new_run(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id, run_id = cloud.failing_run(["dbt seed"], ["raw_customers"], environment_id=environment(cloud, 8, TRACK))
    assert_on_track(cloud, run_id, TRACK)
    cloud.set_step_delay(60)
    try:
        result = run_action(tmp_path, inputs(cloud, job_id, timeout="3", poll_interval="0.5"))
    finally:
        cloud.set_step_delay(0)

    assert result.exit_code == 1
    assert result.outputs["status"] == "timeout"
    new_id = int(result.outputs["run-id"])
    assert cloud.wait(new_id, timeout=60)["status"] == 30, "the timed-out run should have been cancelled"
    assert posts(cloud)[-1] == f"/api/v2/accounts/{cloud.account_id}/runs/{new_id}/cancel/"
    assert any("did not finish within 3s" in e for e in result.errors())


BAD_INPUTS = [
    ("job-id", "abc", "`job-id` must be a positive integer"),
    ("account-id", "", "`account-id` is required"),
    ("run-id", "-1", "`run-id` must be a positive integer"),
    ("wait", "maybe", "`wait` must be `true` or `false`"),
    ("poll-interval", "fast", "`poll-interval` must be a number"),
    ("timeout", "0", "`timeout` must be a positive number"),
    ("payload", "{not json", "`payload` is not valid JSON"),
    ("payload", '{"threads_override": "many"}', "`threads_override` is invalid"),
    ("payload", '{"steps_override": ["dbt run"]}', "must not set `steps_override`"),
    ("strategy", "fastest", "`strategy` must be one of"),
    ("if-previous-succeeded", "shrug", "`if-previous-succeeded` must be one of"),
    ("dbt-cloud-host", "http://cloud.getdbt.com", "must use https://"),
    ("dbt-cloud-token", "", "`dbt-cloud-token` is required"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_INPUTS, ids=[f"{n}={v}" for n, v, _ in BAD_INPUTS])
def test_bad_input_is_one_error_line_and_no_request(
    cloud: LocalDbtCloud, tmp_path: Path, name: str, value: str, message: str
) -> None:
    before = len(cloud.requests)
    result = run_action(tmp_path, {**inputs(cloud, 1), name: value})
    assert result.exit_code == 1
    [error] = result.errors()
    assert message in error, error
    assert len(cloud.requests) == before, "no API call may happen before inputs are valid"
    assert result.outputs["restarted"] == "false"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"dbt-cloud-token": "wrong-token"},
            "rejected the token (HTTP 401: Invalid token.) for recent runs of job 1: check dbt-cloud-token, and",
        ),
        ({"job-id": "987654"}, "job 987654 was not found"),
        ({"run-id": "987654"}, "run 987654 was not found"),
    ],
)
def test_api_errors_are_one_actionable_line(
    cloud: LocalDbtCloud, tmp_path: Path, change: dict[str, str], message: str
) -> None:
    result = run_action(tmp_path, {**inputs(cloud, 1), **change})
    assert result.exit_code == 1
    [error] = result.errors()
    assert message in error
    unmasked = "\n".join(line for line in result.log.splitlines() if not line.startswith("::add-mask::"))
    assert cloud.token not in unmasked and "wrong-token" not in unmasked


def test_token_is_masked_before_anything_else(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    result = run_action(tmp_path, {**inputs(cloud, 1), "job-id": "x"})
    assert result.stdout.splitlines()[0] == f"::add-mask::{cloud.token}"
    assert json.dumps(result.outputs).count(cloud.token) == 0


def test_steps_dbt_cloud_adds_itself_are_not_copied(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    """The job's own source freshness and docs steps come back by themselves: never in steps_override."""
    job_id = cloud.add_job(["dbt build"], generate_docs=True, run_generate_sources=True, environment_id=9)
    cloud.set_faults(["customers"])
    run_id = cloud.trigger(job_id)
    run = cloud.wait(run_id)
    cloud.set_faults([])
    assert [s["name"] for s in run["run_steps"]][3:] == [
        "Invoke dbt with `dbt source freshness`",
        "Invoke dbt with `dbt build`",
    ]

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert_restarted_ok(result, run_id)
    [command] = result.json_output("steps")
    assert command.startswith("dbt build --select customers")
    names = [s["name"] for s in cloud.run(int(result.outputs["run-id"]))["run_steps"]]
    assert names.count("Invoke dbt with `dbt source freshness`") == 1
    assert names[-1] == "Invoke dbt with `dbt docs generate`"


def test_a_restart_that_fails_again_fails_the_step_unless_told_not_to(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id = cloud.add_job(["dbt seed"], environment_id=10)
    cloud.set_faults(["raw_orders"])
    try:
        run_id = cloud.trigger(job_id)
        assert cloud.wait(run_id)["status"] == 20
        strict = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id)))
        # The restart that failed is restarted through its own failure (run_id itself: already restarted).
        again = strict.outputs["run-id"]
        lenient = run_action(tmp_path, inputs(cloud, job_id, run_id=again, fail_on_run_failure="false"))
    finally:
        cloud.set_faults([])

    assert (strict.exit_code, strict.outputs["status"], strict.outputs["restarted"]) == (1, "error", "true")
    assert any("ended error" in e for e in strict.errors())
    assert (lenient.exit_code, lenient.outputs["status"], lenient.outputs["previous-run-id"]) == (0, "error", again)
    assert "❌" in strict.summary
    read = [r.path for r in cloud.requests if f"/runs/{run_id}/artifacts/" in r.path]
    assert read and not any(p.endswith("manifest.json") for p in read), "a seed selects exactly without the manifest"


def test_a_run_of_another_job_is_refused(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    job_id = cloud.add_job(["dbt seed"], environment_id=11)
    other_job = cloud.add_job(["dbt seed"], environment_id=11)
    run_id = cloud.trigger(job_id)
    cloud.wait(run_id)

    result = run_action(tmp_path, inputs(cloud, other_job, run_id=str(run_id)))

    assert result.exit_code == 1
    [error] = result.errors()
    assert f"run {run_id} belongs to job {job_id}, not to job-id {other_job}" in error


def test_the_prebuilt_image_runs_with_only_the_inputs_the_step_gives(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    # `uses: docker://ghcr.io/...` reads no action.yml: no defaults, only the `with:` keys
    # (README, "Versions, pinning and the prebuilt image").
    job_id, run_id = cloud.failing_run(["dbt seed", "dbt build"], ["stg_orders"], environment_id=12)
    expected = to_rerun(cloud, run_id, 5)

    result = run_action(tmp_path, inputs(cloud, job_id), prebuilt=True)

    assert_restarted_ok(result, run_id)
    # A scheduled run's restart carries no override it never had, and the new run's trigger shows none.
    body = next(r.json for r in reversed(cloud.requests) if r.method == "POST" and r.path.endswith("/run/"))
    assert set(body) == {"cause", "steps_override"} and result.json_output("context") == {}
    assert result.outputs["verified"] == "true" and "- Context: the job's defaults (run #" in result.summary
    assert result.json_output("steps")[0].startswith("dbt build --select ")
    assert set(new_run_steps(cloud, result)[4]) == expected
