"""The warm dbt worker (tests/emulator/warm.py): each forked step is its own dbt process, with its own
working directory, environment, log and exit code. (Cancelling a step through its process group is
tested through the emulator: tests/test_emulator.py, cancel and timeout.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.emulator import LocalDbtCloud, warm
from tests.emulator.engine import PROJECT_DIR, step_name
from tests.emulator.model import CANCELLED, SUCCESS
from tests.engines import DBT_1_11, ENGINES

pytestmark = pytest.mark.skipif(not warm.enabled(), reason="no fork on this platform")


@pytest.fixture(scope="module")
def worker() -> warm.WarmWorker:
    """The run's worker for dbt 1.11, rehearsed on the project as the emulator starts it (started here if
    no emulated run has started it yet)."""
    started = warm.worker(ENGINES[DBT_1_11].python, PROJECT_DIR)
    started.wait_ready()
    return started


def env(**extra: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("DBT_")}
    return {**base, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **extra}


def test_each_step_has_its_own_cwd_env_log_and_exit_code(worker: warm.WarmWorker, tmp_path: Path) -> None:
    logs = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        logs.append(folder / "stdout.log")
        process = worker.start(["debug", "--config-dir"], folder, env(DBT_PROFILES_DIR=str(folder)), logs[-1])
        assert process.wait(timeout=120) == 0
    assert str(tmp_path / "one") in logs[0].read_text() and str(tmp_path / "two") not in logs[0].read_text()
    assert str(tmp_path / "two") in logs[1].read_text(), "no environment leaks from one step to the next"
    usage = worker.start(["no-such-command"], tmp_path, env(), tmp_path / "usage.log")
    assert usage.wait(timeout=120) == 2 and "No such command" in (tmp_path / "usage.log").read_text()


def test_a_rehearsed_worker_forks_steps_that_parse_build_and_fail_as_dbt_does(
    worker: warm.WarmWorker, tmp_path: Path
) -> None:
    """The rehearsal leaves no thread behind: a child's full parse (dbt's static parser, whose Rust
    thread pool would hang a child forked from a process that had used it) and build finish, and a
    child sees its own project, database and faults, nothing of the rehearsal's."""
    assert worker.parse is not None, "the worker did not rehearse"
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, project, ignore=warm.COPY_IGNORE)
    database = tmp_path / "own.duckdb"
    (tmp_path / "profiles.yml").write_text(warm.yaml_profile(project, database), encoding="utf-8")
    dirs = env(DBT_PROFILES_DIR=str(tmp_path), DBT_EMULATOR_FAULTS="stg_payments")
    codes = []
    for command in (["deps"], ["parse"], ["build", "--select", "+stg_orders", "+stg_payments"]):
        process = worker.start(command, project, dirs, tmp_path / f"{command[0]}.log")
        codes.append(process.wait(timeout=120))
    assert codes == [0, 0, 1], (tmp_path / "build.log").read_text()
    results = json.loads((project / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"].split(".")[-1]: r["status"] for r in results["results"]}
    assert statuses["stg_orders"] == "success" and statuses["stg_payments"] == "error"
    assert "Starting full parse" in (project / "logs" / "dbt.log").read_text()
    assert database.is_file()


def test_a_run_waits_queued_for_a_cold_worker_and_its_timeout_counts_from_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run to need a worker waits, queued, until its engine's worker has imported dbt and
    rehearsed (10 s and more): a 6-second job timeout then stops the command step it is meant to stop,
    never the setup's `dbt deps` behind a worker still starting."""
    monkeypatch.setattr(warm, "_WORKERS", {})  # a process whose emulator has not started dbt yet,
    monkeypatch.delenv(warm.SHARED_ENV, raising=False)  # nor any other process of the run
    try:
        with LocalDbtCloud(root=tmp_path / "cloud") as cloud:
            job = cloud.add_job(["dbt seed"], timeout_seconds=6)
            cloud.set_step_delay(30)
            run = cloud.wait(cloud.trigger(job), timeout=120)
        assert run["status"] == CANCELLED and "timed out" in run["status_message"]
        assert [step["name"] for step in run["run_steps"]][-2:] == [step_name("dbt deps"), step_name("dbt seed")]
        assert run["run_steps"][-2]["status"] == SUCCESS
    finally:
        for started in warm._WORKERS.values():
            started.close()


def test_a_new_environment_starts_from_the_rehearsal_s_parse_and_parses_again_what_differs(
    cloud: LocalDbtCloud,
) -> None:
    """An environment's first run reuses the parse its worker made of the project (dbt Cloud's partial
    parsing between deployment runs): dbt finds nothing to parse again in an environment on the project
    as committed, and parses again the files an environment changes, whose new content is what runs."""
    customers = (PROJECT_DIR / "seeds" / "raw_customers.csv").read_text(encoding="utf-8")
    changed = {"models/marts/greeting.sql": "select 'bonjour' as greeting\n"}
    cloud.set_environment(32, project_files=changed)
    logs = {}
    for environment in (31, 32):
        job = cloud.add_job(
            ["dbt seed --select raw_customers", "dbt run --select greeting"], environment_id=environment
        )
        run = cloud.wait(cloud.trigger(job))
        assert run["status"] == SUCCESS, run["status_message"]
        seed = cloud.engine.runs[run["id"]].steps[3]
        assert seed.name == step_name("dbt seed --select raw_customers") and seed.debug_log_path is not None
        logs[environment] = seed.debug_log_path.read_text(encoding="utf-8")
        rows = cloud.query("select count(*) from raw_customers", environment)
        assert rows == [(len(customers.splitlines()) - 1,)]
    assert "Starting full parse" not in logs[31] and "0 files changed" in logs[31], logs[31][-2000:]
    assert "Starting full parse" not in logs[32] and "1 files changed" in logs[32], logs[32][-2000:]
    assert cloud.query("select greeting from greeting", 31) == [("hello, world",)]
    assert cloud.query("select greeting from greeting", 32) == [("bonjour",)]


def test_the_processes_of_a_run_share_one_worker_each_told_of_its_own_steps(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Under `share` (a pytest run's first process), each process of the run connects to the worker the
    first one started, which imports dbt (and rehearses) once; each connection hears of its own steps
    only, and the worker ends when the run's first process lets go of its lifeline."""
    monkeypatch.delenv(warm.SHARED_ENV, raising=False)
    end = warm.share()
    folder = Path(os.environ[warm.SHARED_ENV])
    python = ENGINES[DBT_1_11].python
    spawned = len(warm._SPAWNED)
    first, second = warm.WarmWorker(python, None, folder), warm.WarmWorker(python, None, folder)
    try:
        assert len(warm._SPAWNED) == spawned + 1 and first.own is None and second.own is None
        worker = warm._SPAWNED[-1]
        first.wait_ready()
        second.wait_ready()
        ok = first.start(["debug", "--config-dir"], tmp_path, env(), tmp_path / "ok.log")
        usage = second.start(["no-such-command"], tmp_path, env(), tmp_path / "usage.log")
        assert (ok.wait(timeout=120), usage.wait(timeout=120)) == (0, 2)
        assert set(first.codes) == {ok.pid} and set(second.codes) == {usage.pid}
    finally:
        end()
    assert worker.wait(timeout=30) == 0
    assert hung_up(first) and hung_up(second)


def hung_up(client: warm.WarmWorker) -> bool:
    """Whether the worker `client` talks to hangs up within seconds."""
    with client.changed:
        gone = client.changed.wait_for(lambda: not client.alive, timeout=10)
    client.close()
    return gone


def test_a_shared_worker_started_after_its_run_ended_does_not_serve(tmp_path: Path) -> None:
    """A shared worker holds its run's lifeline before anything else (Linux tells a FIFO's reader of the
    hang-up only if a writer was there when it opened): started once the run has let go, it exits."""
    fifo = tmp_path / warm.LIFELINE
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)
    held = warm._hold(str(fifo))
    assert held is not None
    os.close(writer)
    assert os.read(held, 1) == b""  # the hang-up reaches it
    os.close(held)
    address = tmp_path / "late.sock"
    late = warm._spawn(ENGINES[DBT_1_11].python, address, str(fifo), None)
    assert late.wait(timeout=30) == 0 and not address.exists()  # it never listened
