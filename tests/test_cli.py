"""The command line: help, sub-commands, env fallbacks, usage errors, text and JSON results, the console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from restart import __version__, cli
from tests.emulator import LocalDbtCloud
from tests.runner import ROOT, action_metadata

NO_ACTIONS: dict[str, str] = {}  # an environment outside GitHub Actions


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    code = cli.main(list(argv), env=NO_ACTIONS if env is None else env)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_option_with_its_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    flat = " ".join(out.split())  # argparse wraps long lines
    for name in action_metadata()["inputs"]:
        assert f"{cli.flag(name)} VALUE" in flat, name
        assert f"[{cli.env_name(name)}]" in flat, name
    assert "--json" in flat and "--debug" in flat and "restart|plan" in flat
    for number, _meaning in cli.EXIT_CODES:
        assert f"\n  {number} " in out


def test_every_option_has_its_own_environment_variable() -> None:
    names = [cli.env_name(name) for name in cli.INPUTS]
    assert len(set(names)) == len(names)
    assert cli.env_name("dbt-cloud-token") == "DBT_CLOUD_SERVICE_TOKEN"
    assert cli.env_name("poll-interval") == "DBT_CLOUD_RESTART_POLL_INTERVAL"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.startswith("dbt-cloud-restart ")


def test_no_sub_command_means_restart_and_the_sub_command_may_come_last() -> None:
    assert cli.parser().parse_args(["--job-id", "5"]).command == "restart"
    assert cli.parser().parse_args(["--job-id", "5", "plan"]).command == "plan"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--frobnicate"], {}, "unrecognized arguments: --frobnicate"),
        (["frob"], {}, "invalid choice: 'frob'"),
        (["plan", "restart"], {}, "unrecognized arguments: restart"),
        (["--job"], {}, "unrecognized arguments: --job"),  # no abbreviations: scripts stay stable
        (["--account-id", "1", "--job-id", "2"], {}, "--token (or DBT_CLOUD_SERVICE_TOKEN) is required"),
        (["--job-id", "abc"], {"DBT_CLOUD_SERVICE_TOKEN": "t", "DBT_CLOUD_ACCOUNT_ID": "1"}, "--job-id (or "),
        (["--job-id", "²"], {"DBT_CLOUD_SERVICE_TOKEN": "t", "DBT_CLOUD_ACCOUNT_ID": "1"}, "--job-id (or "),
        (["--job-id", "2"], {"DBT_CLOUD_SERVICE_TOKEN": "t", "DBT_CLOUD_ACCOUNT_ID": "\u0661"}, "--account-id (or "),
        (
            ["--wait", "maybe"],
            {"DBT_CLOUD_SERVICE_TOKEN": "t", "DBT_CLOUD_ACCOUNT_ID": "1", "DBT_CLOUD_JOB_ID": "2"},
            "--wait",
        ),
        (["plan", "--dry-run", "false"], {}, "`plan` never triggers a run"),
        (
            ["--host", "http://example.com", "--account-id", "1", "--job-id", "2"],
            {"DBT_CLOUD_SERVICE_TOKEN": "t"},
            "--dbt-cloud-host",
        ),
    ],
)
def test_usage_errors_exit_2_before_any_api_call(
    capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str], message: str
) -> None:
    code, out, err = run_cli(capsys, *argv, env=env)
    assert code == 2
    assert out == ""
    assert err.startswith("usage: dbt-cloud-restart")
    assert message in err


def test_flags_win_over_environment_variables() -> None:
    args = vars(cli.parser().parse_args(["--job-id", "9", "--timeout", "60"]))
    values = cli.collect(args, {"DBT_CLOUD_JOB_ID": "1", "DBT_CLOUD_ACCOUNT_ID": "3", "DBT_CLOUD_RESTART_TIMEOUT": "5"})
    assert values["job-id"] == "9" and values["timeout"] == "60" and values["account-id"] == "3"
    assert values["run-id"] == "" and list(values) == cli.INPUTS


def test_text_result_is_one_line_per_output() -> None:
    text = cli.as_text(
        {
            "run-id": "",
            "run-url": "",
            "status": "planned",
            "previous-run-id": "1001",
            "restarted": "false",
            "steps": json.dumps(["dbt run --select a", "dbt test"]),
            "rerun-nodes": json.dumps([f"model.p.m{i}" for i in range(25)]),
            "issue-url": "",
        }
    )
    lines = text.splitlines()
    assert lines[:3] == ["status        planned", "previous run  1001", "restarted     false"]
    assert "steps         2" in lines and "  dbt run --select a" in lines and "  dbt test" in lines
    assert "rerun-nodes   25" in lines and "  ... and 5 more" in lines
    assert not any(line.startswith(("new run", "issue-url")) for line in lines), "empty outputs are left out"


# One real failed run for the module: `plan` reads it through the API of the local dbt Cloud.
@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalDbtCloud, int, int]]:
    with LocalDbtCloud(root=tmp_path_factory.mktemp("cloud")) as cloud:
        job_id = cloud.add_job(["dbt seed", "dbt run", "dbt test"], environment_id=1)
        cloud.set_faults(["stg_orders"])
        run_id = cloud.trigger(job_id)
        assert cloud.wait(run_id)["status"] == 20
        cloud.set_faults([])
        yield cloud, job_id, run_id


def plan_args(cloud: LocalDbtCloud, job_id: int) -> list[str]:
    return ["plan", "--account-id", str(cloud.account_id), "--job-id", str(job_id), "--host", cloud.base_url]


def test_plan_prints_text_and_triggers_nothing(
    failed: tuple[LocalDbtCloud, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    cloud, job_id, run_id = failed
    code, out, err = run_cli(capsys, *plan_args(cloud, job_id), env={"DBT_CLOUD_SERVICE_TOKEN": cloud.token})
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "status        planned"
    assert f"previous run  {run_id}" in lines
    assert any(line.startswith("  dbt run --select ") and "stg_orders" in line for line in lines)
    assert "  dbt test" in lines
    assert "== Plan" in err and "::" not in err, "outside Actions the log is plain, on stderr"
    assert cloud.token not in out + err
    assert not [r for r in cloud.requests if r.method == "POST"]


def test_plan_json_is_the_action_outputs(
    failed: tuple[LocalDbtCloud, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    cloud, job_id, run_id = failed
    env = {"DBT_CLOUD_SERVICE_TOKEN": cloud.token, "DBT_CLOUD_RESTART_POLL_INTERVAL": "1"}
    code, out, err = run_cli(capsys, *plan_args(cloud, job_id), "--json", "--run-id", str(run_id), env=env)
    assert code == 0, err
    outputs = json.loads(out)
    assert set(action_metadata()["outputs"]) <= set(outputs)
    assert outputs["status"] == "planned" and outputs["restarted"] is False
    assert outputs["previous-run-id"] == str(run_id)
    assert "model.shop.stg_orders" in outputs["rerun-nodes"], "lists are JSON arrays, not strings"
    assert isinstance(outputs["steps"], list)
    assert outputs["verified"] is None and outputs["missing-nodes"] == [], "a plan verifies nothing"
    assert isinstance(outputs["avoided-nodes"], int) and outputs["avoided-nodes"] > 0
    assert "debug:" not in err


def test_debug_details_only_when_asked(
    failed: tuple[LocalDbtCloud, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    cloud, job_id, _ = failed
    env = {"DBT_CLOUD_SERVICE_TOKEN": cloud.token, "RUNNER_DEBUG": "1"}
    code, _, err = run_cli(capsys, *plan_args(cloud, job_id), env=env)
    assert code == 0
    assert "debug: " in err and cloud.token not in err


def test_api_failure_exits_1(failed: tuple[LocalDbtCloud, int, int], capsys: pytest.CaptureFixture[str]) -> None:
    cloud, job_id, _ = failed
    code, out, err = run_cli(
        capsys, *plan_args(cloud, job_id), "--run-id", "987654", env={"DBT_CLOUD_SERVICE_TOKEN": cloud.token}
    )
    assert code == 1
    assert "error: " in err and "987654" in err
    assert out.splitlines()[0].split() == ["status", "error"]


def test_restart_triggers_waits_and_exits_by_the_new_run(
    failed: tuple[LocalDbtCloud, int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = failed[0]
    job_id, run_id = cloud.failing_run(["dbt build"], ["stg_payments"], environment_id=2, keep_faults=True)
    env = {"DBT_CLOUD_SERVICE_TOKEN": cloud.token, "DBT_CLOUD_RESTART_POLL_INTERVAL": "0.3"}
    argv = ["restart", "--account-id", str(cloud.account_id), "--job-id", str(job_id), "--host", cloud.base_url]

    code, out, err = run_cli(capsys, *argv, "--json", env=env)  # not fixed yet: the new run fails too
    assert code == 1, err
    first = json.loads(out)
    assert first["status"] == "error" and first["restarted"] is True and first["previous-run-id"] == str(run_id)
    assert f"error: dbt Cloud run failed: run {first['run-id']} ended error" in err
    assert first["verified"] is True, "every planned node ran (and failed again): verified says they ran"

    cloud.set_faults([])  # the fix
    code, out, err = run_cli(capsys, *argv, "--json", env=env)
    assert code == 0, err
    second = json.loads(out)
    assert second["status"] == "success" and second["previous-run-id"] == first["run-id"]
    executed = cloud.executed_nodes(int(second["run-id"]))[4]
    assert set(executed) == set(second["rerun-nodes"]) and "model.shop.stg_payments" in executed
    assert set(executed.values()) <= {"success", "pass"}
    assert second["verified"] is True and second["missing-nodes"] == []
    assert isinstance(second["avoided-nodes"], int) and isinstance(second["avoided-seconds"], float)
    assert "== Trigger" in err and f"run {second['run-id']}: success" in err and cloud.token not in out + err


def test_python_dash_m_restart_help() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "restart", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0 and "usage: dbt-cloud-restart" in completed.stdout


def test_pip_installs_the_console_script(tmp_path: Path) -> None:
    """`pip install .` builds the package; its `dbt-cloud-restart` script runs outside the source tree."""
    source, target = tmp_path / "source", tmp_path / "site"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "restart", source / "restart", ignore=shutil.ignore_patterns("__pycache__"))
    install = subprocess.run(  # from a copy: a build in the work tree would leave build/ and *.egg-info behind
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    script = target / "bin" / "dbt-cloud-restart"
    assert script.exists()
    assert (target / "restart" / "cli.py").exists() and not (target / "tests").exists()
    # The one version: pyproject.toml takes it from restart/__init__.py, so the metadata cannot disagree.
    assert (target / f"dbt_cloud_restart-{__version__}.dist-info").is_dir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    completed = subprocess.run(
        [sys.executable, str(script), "--version"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"dbt-cloud-restart {__version__}"


def test_a_mistyped_option_is_named_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--jobid", "5", env={})
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1] == "dbt-cloud-restart: error: unrecognized arguments: --jobid"
