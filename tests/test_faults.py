"""Faults and bad input against the local dbt Cloud: nothing lost, nothing triggered twice, nothing leaked.

One real failed run is made once for the module; most scenarios plan it with `dry-run` under an
injected HTTP fault or a corrupted artifact, so they cost no dbt time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator import LocalDbtCloud
from tests.image import action_image
from tests.runner import ActionResult, action_metadata, inputs, parse_output_file, run_action

HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
SCHEMAS = b"https://schemas.getdbt.com/dbt/run-results/"
META6 = b'{"metadata": {"dbt_schema_version": "' + SCHEMAS + b'v6.json"}'


@pytest.fixture(scope="module")
def failed(cloud: LocalDbtCloud) -> tuple[int, int]:
    """(job id, run id) of a `dbt build` that failed on stg_orders; the fault is then fixed."""
    job_id = cloud.add_job(["dbt build --full-refresh", "dbt docs generate"], environment_id=1)
    cloud.set_faults(["stg_orders"])
    run_id = cloud.trigger(job_id)
    assert cloud.wait(run_id)["status"] == 20
    cloud.set_faults([])
    return job_id, run_id


@pytest.fixture(autouse=True)
def no_leftover_faults(cloud: LocalDbtCloud) -> Iterator[None]:
    yield
    cloud.clear_http_faults()
    cloud.api.artifact_overrides.clear()
    cloud.set_step_delay(0)


def assert_no_secret(result: ActionResult, token: str) -> None:
    log = "\n".join(line for line in result.log.splitlines() if not line.startswith("::add-mask::"))
    for place, text in (("log", log), ("summary", result.summary), ("outputs", json.dumps(result.outputs))):
        assert token not in text, f"the token leaked into the {place}"


def hits(cloud: LocalDbtCloud, method: str, suffix: str) -> int:
    return sum(1 for r in cloud.requests if r.method == method and r.path.endswith(suffix))


def test_transient_errors_on_reads_are_retried(cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path) -> None:
    job_id, run_id = failed
    cloud.add_http_fault("GET", rf"/runs/{run_id}/$", status=503, times=2, headers={"Retry-After": "0"})
    cloud.add_http_fault("GET", r"/artifacts/run_results.json", status=429, times=1, headers={"Retry-After": "1"})
    cloud.add_http_fault("GET", r"/runs/$", drop=True, times=1)
    before = hits(cloud, "GET", f"/runs/{run_id}/")

    result = run_action(tmp_path, inputs(cloud, job_id, dry_run="true"))

    assert result.exit_code == 0, result.log
    assert result.outputs["status"] == "planned"
    assert hits(cloud, "GET", f"/runs/{run_id}/") - before == 3
    sent = result.json_output("steps")[0]
    assert sent.startswith("dbt build --full-refresh --select ") and " stg_orders " in sent


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"status": 503, "times": 99, "headers": {"Retry-After": "0"}},
            "failed on run {run} (HTTP 503) (after 5 attempts)",
        ),
        (
            {"status": 502, "times": 99, "body": HTML, "content_type": "text/html", "headers": {"Retry-After": "0"}},
            "(HTTP 502)",
        ),
        ({"status": 200, "body": HTML, "content_type": "text/html"}, "non-JSON body (HTTP 200, text/html)"),
        (
            {"status": 403, "body": b'{"status": {"user_message": "Forbidden"}, "data": null}'},
            "may not access run {run} (HTTP 403): Forbidden",
        ),
        (
            {"status": 401, "body": b'{"status": {"user_message": "Invalid token."}, "data": null}'},
            "rejected the token (HTTP 401: Invalid token.) for run {run}: check dbt-cloud-token, and dbt-cloud-host",
        ),
    ],
    ids=["503-persistent", "502-html", "200-html", "403", "401"],
)
def test_http_errors_are_one_actionable_line(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path, fault: dict[str, object], message: str
) -> None:
    job_id, run_id = failed
    cloud.add_http_fault("GET", rf"/runs/{run_id}/$", **fault)

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id)))

    assert result.exit_code == 1
    [error] = result.errors()
    assert message.format(run=run_id) in error
    assert result.outputs["restarted"] == "false"
    assert_no_secret(result, cloud.token)


def test_unknown_host_is_one_line(tmp_path: Path) -> None:
    result = run_action(
        tmp_path,
        {"dbt-cloud-token": "t0ken-value", "account-id": "1", "job-id": "2", "dbt-cloud-host": "nonexistent.invalid"},
    )
    assert result.exit_code == 1
    [error] = result.errors()
    assert "nonexistent.invalid" in error and "check dbt-cloud-host" in error
    assert_no_secret(result, "t0ken-value")


def new_runs(cloud: LocalDbtCloud, job_id: int, after: int) -> list[int]:
    return sorted(r.id for r in cloud.engine.runs.values() if r.job.id == job_id and r.id > after)


@pytest.mark.parametrize(
    ("fault", "adopted"),
    [
        ({"when": "after", "drop": True}, True),
        ({"when": "after", "status": 502, "body": HTML, "content_type": "text/html"}, True),
        ({"when": "before", "status": 503}, False),
        ({"when": "before", "status": 429, "headers": {"Retry-After": "0"}}, False),
    ],
    ids=["dropped-after-create", "502-after-create", "503-before-create", "429-before-create"],
)
def test_a_lost_trigger_answer_never_starts_two_runs(
    cloud: LocalDbtCloud, tmp_path: Path, fault: dict[str, object], adopted: bool
) -> None:
    job_id, run_id = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=2)
    cloud.add_http_fault("POST", rf"/jobs/{job_id}/run/$", **fault)

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert result.exit_code == 0, result.log
    created = new_runs(cloud, job_id, run_id)
    assert len(created) == 1, f"expected exactly one new run, got {created}"
    assert result.outputs["run-id"] == str(created[0])
    assert result.outputs["status"] == "success"
    assert ("adopted run" in result.log) == adopted


def test_a_lost_native_rerun_answer_adopts_the_rerun_and_never_sends_it_twice(
    cloud: LocalDbtCloud, tmp_path: Path
) -> None:
    job_id, run_id = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=2)
    cloud.add_http_fault("POST", rf"/jobs/{job_id}/rerun/$", when="after", status=502, body=HTML)

    result = run_action(tmp_path, inputs(cloud, job_id, strategy="native"))

    assert result.exit_code == 0, result.log
    [created] = new_runs(cloud, job_id, run_id)
    assert cloud.run(created)["retrying_run_id"] == run_id
    assert result.outputs["run-id"] == str(created) and "adopted run" in result.log


def test_a_lost_trigger_answer_whose_search_fails_names_the_run_to_look_for(
    cloud: LocalDbtCloud, tmp_path: Path
) -> None:
    job_id, run_id = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=2)
    cloud.add_http_fault("POST", rf"/jobs/{job_id}/run/$", when="after", drop=True)
    cloud.add_http_fault("GET", r"/runs/$", query=r"(^|&)limit=10(&|$)", status=404, times=1)

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert result.exit_code == 1
    [created] = new_runs(cloud, job_id, run_id)  # started, never sent twice
    cloud.wait(created)  # the run nobody follows ends here, not during the next test
    [error] = result.errors()
    assert "was lost" in error and f"look in job {job_id} for a run whose cause carries [dbt-cloud-restart" in error
    assert (result.outputs["status"], result.outputs["previous-run-id"]) == ("error", str(run_id))
    assert f"may have started: look for a run whose cause carries &#91;dbt-cloud-restart run={run_id}" in result.summary
    assert "Nothing was sent twice" in result.summary


@pytest.mark.parametrize("cancel_refused", [False, True], ids=["cancelled", "cancel-refused"])
def test_a_run_hidden_at_first_is_kept_and_the_second_trigger_s_run_cancelled(
    cloud: LocalDbtCloud, tmp_path: Path, cancel_refused: bool
) -> None:
    # The first trigger's answer is lost and its run does not show in the list for a while (three
    # looks); the action triggers again, then sees both runs carry its marker: it keeps the first.
    job_id, run_id = cloud.failing_run(["dbt seed"], ["raw_orders"], environment_id=2)
    cloud.add_http_fault("POST", rf"/jobs/{job_id}/run/$", when="after", drop=True)
    empty = {"status": {"code": 200, "is_success": True}, "data": [], "extra": {"pagination": {"count": 0}}}
    hidden = {"status": 200, "body": json.dumps(empty).encode(), "times": 3}
    cloud.add_http_fault("GET", r"/runs/$", query=r"(^|&)limit=10(&|$)", **hidden)  # the marker searches only
    if cancel_refused:  # a token that may trigger but not cancel
        cloud.add_http_fault("POST", r"/runs/\d+/cancel/$", status=403, times=5)

    result = run_action(tmp_path, inputs(cloud, job_id))

    assert result.exit_code == 0, result.log
    first, second = new_runs(cloud, job_id, run_id)
    assert result.outputs["run-id"] == str(first) and result.outputs["status"] == "success"
    if cancel_refused:
        assert f"run {second} that the second trigger started could not be cancelled" in result.log
        assert "cancel it in dbt Cloud" in result.log
    else:
        assert cloud.run(second)["status"] == 30, "the second trigger's run is cancelled"
        assert f"kept it, cancelled run {second}" in result.log


def test_a_busy_job_is_not_restarted_again(cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path) -> None:
    job_id, run_id = failed
    cloud.set_step_delay(60)
    busy = cloud.trigger(job_id, steps_override=["dbt seed"])
    while cloud.run(busy)["status"] != 3:
        time.sleep(0.1)

    skipped = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id)))
    refused = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), if_job_running="fail"))
    cloud.api.cancel_run(None, str(busy))  # type: ignore[arg-type]

    assert (skipped.exit_code, skipped.outputs["status"], skipped.outputs["restarted"]) == (0, "skipped", "false")
    assert any(
        f"run {busy} of job {job_id} is running" in line for line in skipped.log.splitlines() if "::warning" in line
    )
    assert refused.exit_code == 1
    assert f"run {busy} of job {job_id} is running" in refused.errors()[0]
    assert hits(cloud, "POST", f"/jobs/{job_id}/run/") == 0


def test_waiting_for_a_busy_job_then_planning(cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path) -> None:
    job_id, run_id = failed
    cloud.set_step_delay(2)
    busy = cloud.trigger(job_id, steps_override=["dbt seed"])

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), if_job_running="wait", dry_run="true"))

    assert result.exit_code == 0, result.log
    assert result.outputs["status"] == "planned"
    assert cloud.run(busy)["is_complete"]
    assert "waiting for it to finish" in result.log


def test_sigterm_while_waiting_cancels_the_run_and_writes_outputs(cloud: LocalDbtCloud, tmp_path: Path) -> None:
    # A failure of its own: the module's is planned by dry runs, which a real restart of it would turn
    # into "already restarted" skips.
    job_id, run_id = cloud.failing_run(["dbt seed --select raw_orders"], ["raw_orders"], environment_id=1)
    cloud.set_step_delay(60)
    files = tmp_path / "files"
    files.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(files / "output"),
        "GITHUB_STEP_SUMMARY": str(files / "summary"),
    }
    for name, spec in action_metadata()["inputs"].items():
        env["INPUT_" + name.upper()] = str((spec or {}).get("default") or "")
    env.update({"INPUT_" + k.upper(): v for k, v in inputs(cloud, job_id, run_id=str(run_id)).items()})
    image = action_image()
    process = subprocess.Popen(
        image.entrypoint, env={**image.env, **env}, stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if ": running" in line:
            break
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    log = "".join(lines) + rest

    assert process.returncode == 128 + signal.SIGTERM, log
    outputs = parse_output_file((files / "output").read_text())
    assert outputs["status"] == "cancelled"
    new_id = int(outputs["run-id"])
    assert cloud.wait(new_id, timeout=30)["status"] == 30
    assert "Cancelled" in log


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "run_results.json is missing"),
        (
            META6 + b', "resu',
            "not valid JSON",
        ),
        (
            b'{"metadata": {"dbt_schema_version": "' + SCHEMAS + b'v99.json"}, "results": []}',
            "schema v99",
        ),
        (
            META6 + b', "results": [{"unique_id": "model.shop.x"}]}',
            "malformed at results/0",
        ),
        (b"[1, 2, 3]", "malformed at top level"),
    ],
    ids=["404", "truncated", "unknown-version", "missing-field", "not-an-object"],
)
def test_bad_artifacts_give_a_safe_plan_and_a_warning(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path, content: bytes | None, problem: str
) -> None:
    job_id, run_id = failed
    cloud.override_artifact(run_id, 4, "run_results.json", content)

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), dry_run="true"))

    assert result.exit_code == 0, result.log
    assert result.json_output("steps") == ["dbt build --full-refresh", "dbt docs generate"]
    warnings = [line for line in result.log.splitlines() if line.startswith("::warning")]
    assert any(problem in w and "rerun as it was" in w for w in warnings), warnings


def test_a_malformed_manifest_still_narrows_by_name_with_a_warning(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path
) -> None:
    job_id, run_id = failed
    cloud.override_artifact(run_id, 4, "manifest.json", b'{"nodes": "oops"}')

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), dry_run="true"))

    assert result.exit_code == 0, result.log
    assert "file:stg_orders,resource_type:model,package:shop" in result.json_output("steps")[0]
    assert any("without manifest.json" in line for line in result.log.splitlines() if line.startswith("::warning"))


def run_results(messages: dict[str, str]) -> bytes:
    return json.dumps(
        {
            "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json"},
            "args": {"which": "build"},
            "results": [{"unique_id": u, "status": "error", "message": m} for u, m in messages.items()],
        }
    ).encode()


def test_remote_text_cannot_inject_commands_or_html(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path
) -> None:
    job_id, run_id = failed
    evil = "boom\n::error::pwned\n<script>alert(1)</script> | col | `tick` ```fence"
    cloud.override_artifact(run_id, 4, "run_results.json", run_results({"model.shop.stg_orders": evil}))

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), dry_run="true"))

    assert result.exit_code == 0, result.log
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("::stop-commands::"))
    token = lines[start].split("::")[2]
    end = lines.index(f"::{token}::")
    assert start < next(i for i, line in enumerate(lines) if "::error::pwned" in line) < end
    assert not result.errors()
    assert "<script>" not in result.summary and "&lt;script&gt;" in result.summary
    table = [line for line in result.summary.splitlines() if line.startswith("| ")]
    assert all(line.count(" | ") == 2 for line in table), "a remote `|` broke the table"


def test_a_huge_failure_keeps_the_summary_and_outputs_within_limits(
    cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path
) -> None:
    job_id, run_id = failed
    messages = {f"model.shop.m{i:05d}": "x" * 2000 for i in range(20000)}
    cloud.override_artifact(run_id, 4, "run_results.json", run_results(messages))
    cloud.override_artifact(run_id, 4, "manifest.json", None)

    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), dry_run="true"))

    assert result.exit_code == 0, result.log
    assert len(result.summary.encode()) < 1024 * 1024
    assert sum(len(v.encode()) for v in result.outputs.values()) < 1000 * 1000
    assert len(result.json_output("steps")[0]) > 500_000, "the command sent is never shortened"
    assert "more failed nodes" in result.summary
    assert any("output rerun-nodes lists" in line for line in result.log.splitlines() if line.startswith("::warning"))


def test_debug_mode_leaks_no_token(cloud: LocalDbtCloud, failed: tuple[int, int], tmp_path: Path) -> None:
    job_id, run_id = failed
    result = run_action(tmp_path, inputs(cloud, job_id, run_id=str(run_id), dry_run="true"), env={"RUNNER_DEBUG": "1"})
    assert result.exit_code == 0
    assert_no_secret(result, cloud.token)
