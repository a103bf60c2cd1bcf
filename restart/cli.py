"""Entry points: the GitHub Action (`INPUT_*` variables) and the command line (flags and env)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence

from restart import __version__, actions, github, report, settings
from restart.main import Stop, execute

# Every input of action.yml, in its order; a test keeps the two in sync.
INPUTS = [
    "dbt-cloud-token",
    "account-id",
    "job-id",
    "run-id",
    "dbt-cloud-host",
    "cause",
    "payload",
    "strategy",
    "if-previous-succeeded",
    "if-job-running",
    "wait",
    "poll-interval",
    "timeout",
    "cancel-on-timeout",
    "fail-on-run-failure",
    "dry-run",
    "max-attempts",
    "report",
    "github-token",
]
# Inputs a `workflow_dispatch` event may carry when the step leaves them empty.
DISPATCHABLE = ("run-id", "job-id")
# Environment variables the CLI reads when a flag is not given.
ENV_FALLBACKS = {
    "dbt-cloud-token": "DBT_CLOUD_SERVICE_TOKEN",
    "account-id": "DBT_CLOUD_ACCOUNT_ID",
    "job-id": "DBT_CLOUD_JOB_ID",
    "run-id": "DBT_CLOUD_RUN_ID",
    "dbt-cloud-host": "DBT_CLOUD_HOST",
    "github-token": "GITHUB_TOKEN",
}
HELP = {
    "dbt-cloud-token": "dbt Cloud service token (prefer the environment variable)",
    "account-id": "dbt Cloud account id",
    "job-id": "job to restart",
    "run-id": "run to restart (default: the job's latest finished run)",
    "dbt-cloud-host": "host or base URL, e.g. emea.dbt.com (default cloud.getdbt.com)",
    "cause": "cause recorded on the new run",
    "payload": "JSON object of extra trigger fields, e.g. '{\"threads_override\": 8}'",
    "strategy": "select (node-exact steps_override, default) or native (dbt Cloud's rerun)",
    "if-previous-succeeded": "skip (default), run or fail",
    "if-job-running": "when a run of the job is queued or running: skip (default), wait or fail",
    "wait": "wait for the new run to finish: true (default) or false",
    "poll-interval": "seconds between status checks (default 10)",
    "timeout": "seconds to wait before giving up (default 3600)",
    "cancel-on-timeout": "cancel the run when the timeout passes (default true)",
    "fail-on-run-failure": "exit 1 when the new run fails (default true)",
    "dry-run": "plan only, trigger nothing (default false)",
    "max-attempts": "restarts of the same failure allowed before refusing (default 3, 0 = no limit)",
    "report": "GitHub reporting: none (default), status, issue or both",
    "github-token": "GitHub token (for GitHub features)",
}


def run_with(values: Mapping[str, str], env: Mapping[str, str], log: actions.Log) -> tuple[int, dict[str, str]]:
    """Validate inputs, restart, and return (exit code, outputs); masks the token first.

    SIGTERM and SIGINT (a cancelled workflow) are caught: the run being waited for is cancelled
    and the outputs known so far are still written.
    """
    stop = Stop()
    stop.install()
    log.mask(values.get("dbt-cloud-token", "").strip())
    context = github.read_context(env)
    values = {**values, **{k: github.dispatch_value(context, k) for k in DISPATCHABLE if not values.get(k, "").strip()}}
    try:
        config = settings.parse(values)
    except settings.InputError as exc:
        log.error(str(exc), title="Invalid input")
        return 1, report.outputs(report.Outcome("error", str(exc), 1))
    outcome = execute(config, log, env, stop)
    actions.append_summary(report.summary(outcome), env)
    outputs, warning = report.fit_outputs(report.outputs(outcome))
    if warning:
        log.warning(warning)
    return outcome.exit_code, outputs


def main_action(env: Mapping[str, str] | None = None) -> int:
    """The Docker action: inputs from `INPUT_*`, outputs to `GITHUB_OUTPUT`."""
    env = os.environ if env is None else env
    log = actions.Log(actions=True)
    code, outputs = run_with(actions.read_inputs(INPUTS, env), env, log)
    actions.write_outputs(outputs, env)
    return code


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="dbt-cloud-restart",
        description="Restart a failed dbt Cloud job from its point of failure.",
        epilog="Exit codes: 0 done (or nothing to do), 1 failed (bad input, API error, run failed or timed out), "
        "2 usage error, 130/143 interrupted by SIGINT/SIGTERM.",
    )
    cli.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for name in INPUTS:
        env_name = ENV_FALLBACKS.get(name)
        flag = "--token" if name == "dbt-cloud-token" else f"--{name}"
        aliases = [flag, "--host"] if name == "dbt-cloud-host" else [flag]
        suffix = f" [env {env_name}]" if env_name else ""
        cli.add_argument(*aliases, dest=name, metavar="VALUE", help=HELP[name] + suffix)
    cli.add_argument("--debug", action="store_true", help="print debug details")
    return cli


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """The command line: flags, else environment variables; outputs as JSON on stdout."""
    env = os.environ if env is None else env
    args = vars(parser().parse_args(argv))
    values = {
        name: args[name] if args[name] is not None else env.get(ENV_FALLBACKS.get(name, ""), "") for name in INPUTS
    }
    in_actions = actions.in_actions(env)
    log = actions.Log(actions=in_actions, stream=sys.stdout if in_actions else sys.stderr, debug_enabled=args["debug"])
    code, outputs = run_with(values, env, log)
    if in_actions:
        actions.write_outputs(outputs, env)
    else:
        json.dump(outputs, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return code
