"""Side by side with the seed's algorithm: dbtc's `trigger_job_from_failure` vs this action.

Both restart the same failed runs of the local dbt Cloud (real dbt-core on DuckDB, served over HTTPS
because dbtc only speaks https://). For each scenario: the job fails on an injected fault, the fault is
cleared, dbtc restarts the run (and its run is waited for), then the action restarts the same run
(`run-id`, `wait: false`) as a subprocess exactly as the runner would. Ground truth for the failed
step is what `dbt retry` would rerun: the retryable statuses in its run_results.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import environment

RETRY = frozenset({"error", "fail", "skipped", "runtime error", "partial success"})
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: list[str]
    faults: list[str]


SCENARIOS = [
    Scenario("single build", ["dbt build"], ["stg_orders"]),
    Scenario(
        "multi-step with --vars",
        ["dbt seed", 'dbt run --select staging+ --vars \'{"who": "a b"}\'', "dbt test", "dbt docs generate"],
        ["stg_payments"],
    ),
    Scenario("failing test", ["dbt build"], ["not_null_stg_orders_order_id"]),
    Scenario("versioned model", ["dbt build"], ["dim_customers.v1"]),
    Scenario("ambiguous name", ["dbt build"], ["shop_utils.calendar"]),
    Scenario("unit test", ["dbt build"], ["stg_orders.test_basic"]),
]


@dataclass
class Attempt:
    """One tool's restart of one failed run."""

    tool: str
    calls: int = 0
    seconds_to_trigger: float | None = None
    steps: list[str] = field(default_factory=list)
    rerun: set[str] = field(default_factory=set)  # nodes of the failed step's rerun
    later: int = 0  # nodes run by the steps after it
    error: str = ""


class PostWatcher:
    """Notes when the trigger POST reaches the emulator (polling its request log every millisecond)."""

    def __init__(self, cloud: Any, job_id: int) -> None:
        self.cloud, self.start_index = cloud, len(cloud.requests)
        self.suffix = f"/jobs/{job_id}/run/"
        self.seen: float | None = None
        self.index: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self.started = time.perf_counter()
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            requests = self.cloud.requests
            for i in range(self.start_index, len(requests)):
                if requests[i].method == "POST" and requests[i].path.endswith(self.suffix):
                    self.seen, self.index = time.perf_counter(), i
                    return
            time.sleep(0.001)

    def finish(self) -> tuple[int, float | None, dict[str, Any] | None]:
        """(API calls up to and including the trigger, seconds from start to trigger, trigger body)."""
        self._stop.set()
        self._thread.join()
        if self.index is None:
            return len(self.cloud.requests) - self.start_index, None, None
        body = self.cloud.requests[self.index].json
        return self.index - self.start_index + 1, self.seen - self.started if self.seen else None, body


def _new_run_id(cloud: Any, job_id: int, before: set[int]) -> int | None:
    found = [r for r in cloud.engine.runs if r not in before and cloud.engine.runs[r].job.id == job_id]
    return max(found) if found else None


def _collect(cloud: Any, attempt: Attempt, run_id: int) -> None:
    from tests.emulator import step_name

    cloud.wait(run_id, timeout=600)
    executed = cloud.executed_nodes(run_id)
    by_name = {s["name"]: s["index"] for s in cloud.run(run_id)["run_steps"]}
    first = by_name.get(step_name(attempt.steps[0])) if attempt.steps else None
    for index, nodes in executed.items():
        if index == first:
            attempt.rerun = set(nodes)
        elif first is not None and index > first:
            attempt.later += len(nodes)


def run_dbtc(cloud: Any, job_id: int, ca_bundle: Path, python: Path) -> Attempt:
    attempt = Attempt("dbtc 0.7.0 trigger_job_from_failure")
    before = set(cloud.engine.runs)
    host = cloud.base_url.removeprefix("https://")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DBT_CLOUD_SERVICE_TOKEN": cloud.token,
        "REQUESTS_CA_BUNDLE": str(ca_bundle),
        "HOME": tempfile.gettempdir(),
    }
    watcher = PostWatcher(cloud, job_id)
    done = subprocess.run(
        [str(python), str(ROOT / "benchmarks" / "dbtc_driver.py"), host, str(cloud.account_id), str(job_id)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    attempt.calls, attempt.seconds_to_trigger, body = watcher.finish()
    if done.returncode != 0:
        attempt.error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1][:200]
    attempt.steps = list((body or {}).get("steps_override") or [])
    new = _new_run_id(cloud, job_id, before)
    if new is not None:
        _collect(cloud, attempt, new)
    return attempt


def run_ours(cloud: Any, job_id: int, run_id: int, ca_bundle: Path, scratch: Path) -> Attempt:
    from tests.runner import run_action

    attempt = Attempt("dbt-cloud-restart (this action)")
    with_ = {
        "dbt-cloud-token": cloud.token,
        "account-id": str(cloud.account_id),
        "job-id": str(job_id),
        "run-id": str(run_id),
        "dbt-cloud-host": cloud.base_url,
        "wait": "false",
    }
    watcher = PostWatcher(cloud, job_id)
    result = run_action(scratch, with_, env={"REQUESTS_CA_BUNDLE": str(ca_bundle)})
    attempt.calls, attempt.seconds_to_trigger, body = watcher.finish()
    if result.exit_code != 0 or not result.outputs.get("run-id"):
        attempt.error = (result.errors() or [f"exit {result.exit_code}"])[-1][:200]
        return attempt
    attempt.steps = list((body or {}).get("steps_override") or [])
    _collect(cloud, attempt, int(result.outputs["run-id"]))
    return attempt


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def compare(scenarios: list[Scenario] = SCENARIOS) -> tuple[list[str], list[dict[str, Any]]]:
    """Run every scenario with both tools; (markdown table lines, raw records)."""
    from tests.emulator import LocalDbtCloud

    python = environment.bench_python()
    records: list[dict[str, Any]] = []
    lines = [
        "| scenario | tool | nodes rerun | missed | needless | later steps' nodes | API calls to trigger "
        "| time to trigger | steps sent |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch_dir:
        scratch = Path(scratch_dir)
        cert, key = make_certificate(scratch)
        with LocalDbtCloud(root=scratch / "cloud", tls=(cert, key)) as cloud:
            for number, scenario in enumerate(scenarios, start=1):
                job_id = cloud.add_job(scenario.steps, environment_id=number)
                cloud.set_faults(scenario.faults)
                run_id = cloud.trigger(job_id)
                run = cloud.wait(run_id, timeout=600)
                cloud.set_faults([])
                failed = [s["index"] for s in run["run_steps"] if s["status"] == 20 and s["index"] > 3]
                if run["status"] != 20 or not failed:
                    lines.append(f"| {scenario.name} | the fault did not fail the run | | | | | | | |")
                    continue
                expected = {
                    uid
                    for uid, status in cloud.executed_nodes(run_id)[failed[0]].items()
                    if status in RETRY and not uid.startswith("operation.")
                }
                attempts = []
                if python is not None:
                    attempts.append(run_dbtc(cloud, job_id, cert, python))
                work = scratch / f"action_{number}"
                work.mkdir()
                attempts.append(run_ours(cloud, job_id, run_id, cert, work))
                for attempt in attempts:
                    missed, needless = expected - attempt.rerun, attempt.rerun - expected
                    timing = f"{attempt.seconds_to_trigger:.2f} s" if attempt.seconds_to_trigger else "—"
                    steps = "<br>".join(f"`{s[:90]}{'…' if len(s) > 90 else ''}`" for s in attempt.steps)
                    if attempt.error:
                        steps = f"error: {attempt.error}" + (f"<br>{steps}" if steps else "")
                    lines.append(
                        f"| {scenario.name} | {attempt.tool} | {len(attempt.rerun)} | {len(missed)} "
                        f"| {len(needless)} | {attempt.later} | {attempt.calls} | {timing} | {steps} |"
                    )
                    print(lines[-1], file=sys.stderr, flush=True)
                    records.append(
                        {
                            "scenario": scenario.name,
                            "tool": attempt.tool,
                            "expected": sorted(expected),
                            "missed": sorted(missed),
                            "needless": sorted(needless),
                            "steps": attempt.steps,
                            "calls": attempt.calls,
                            "seconds_to_trigger": attempt.seconds_to_trigger,
                            "error": attempt.error,
                        }
                    )
    return lines, records


if __name__ == "__main__":
    table, raw = compare()
    print("\n".join(table))
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(raw, indent=1))
