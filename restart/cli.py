"""Entry points: the GitHub Action (`INPUT_*` variables) and the command line (flags and env)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from restart import __version__, actions, settings, summary
from restart.context import EventError, read_context, with_event_values
from restart.jobs import execute_all
from restart.outcome import Outcome
from restart.outputs import fit_outputs, outputs_by_job, outputs_of
from restart.redaction import redact
from restart.signals import Stop

# Every input of action.yml, in its order; a test keeps the two in sync.
INPUTS = [
    "dbt-cloud-token",
    "account-id",
    "job-id",
    "run-id",
    "dbt-cloud-host",
    "cause",
    "payload",
    "context",
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
    "restart-on",
    "transient-patterns",
    "delay",
    "rebuild",
    "verify",
    "github-token",
]
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
    "job-id": "job to restart (several: comma-separated)",
    "run-id": "run to restart (default: the job's latest finished run)",
    "dbt-cloud-host": "host or base URL, e.g. emea.dbt.com (default cloud.getdbt.com)",
    "cause": "cause recorded on the new run",
    "payload": "JSON object of trigger fields, e.g. '{\"threads_override\": 8}'; they win over the failed run's"
    " context, null drops a field of it",
    "context": "keep (default: the failed run's own overrides, payload winning) or job-defaults (payload only)",
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
    "restart-on": "any (default) or transient: restart only when every failure looks transient",
    "transient-patterns": "newline-separated regular expressions replacing the built-in transient patterns",
    "delay": "seconds to wait before triggering (default 0); doubled per earlier restart of the failure, up to 30 min",
    "rebuild": "failed (default: what dbt retry reruns) or with-test-parents (also the models failed tests test, "
    "and what ran on a failed model's stale data)",
    "verify": "when the new run succeeded but left planned nodes unrun: fail (default), warn or off",
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
    try:
        event = with_event_values(read_context(env), values)
        config = settings.parse(event.values)
    except (settings.InputError, EventError) as exc:
        log.error(str(exc), title="Invalid input")
        return 1, outputs_of(Outcome(status="error", headline=str(exc), strategy="", exit_code=1))
    if event.skip:
        log.notice(f"{event.skip}: nothing to restart")
        outcomes = [(config.job_id, Outcome(status="skipped", headline=event.skip, strategy=config.strategy))]
    else:
        outcomes = execute_all(config, log, env, stop)
    if len(outcomes) > 1:
        actions.append_summary(summary.summary_by_job(outcomes), env)
        code = max(outcome.exit_code for _, outcome in outcomes)
        outputs, warning = outputs_by_job(outcomes)
    else:
        [(_, outcome)] = outcomes
        actions.append_summary(summary.summary(outcome), env)
        code = outcome.exit_code
        outputs, warning = fit_outputs(outputs_of(outcome))
    if warning:
        log.warning(warning)
    return code, outputs


def main_action(env: Mapping[str, str] | None = None) -> int:
    """The Docker action: inputs from `INPUT_*`, outputs to `GITHUB_OUTPUT`."""
    env = os.environ if env is None else env
    log = actions.Log(actions=True)
    values = actions.read_inputs(INPUTS, env)
    try:
        code, outputs = run_with(values, env, log)
    except Exception as exc:  # a bug of ours: still one error line, never the token, outputs written
        token = values.get("dbt-cloud-token", "").strip()
        message = f"unexpected {type(exc).__name__}: {exc}"
        log.error(redact(message, token), title="dbt-cloud-restart internal error")
        code, outputs = 1, outputs_of(Outcome(status="error", headline="internal error", strategy="", exit_code=1))
    actions.write_outputs(outputs, env)
    return code


COMMANDS = {
    "restart": "plan, trigger the new run and (with --wait true, the default) follow it to the end",
    "plan": "plan only: read the failed run and print what a restart would send; trigger nothing",
}
EXIT_CODES = (
    ("0", "done: restarted (and the new run succeeded, or was not waited for), planned, or nothing to do"),
    (
        "1",
        "failed: an API error, the run to restart not found, a restart refused (if-previous-succeeded or"
        " if-job-running set to fail), the new run timed out, or it failed or was cancelled"
        " (unless --fail-on-run-failure false), or it succeeded without running every planned node"
        " or in another context than it was sent (unless --verify warn or off)",
    ),
    ("2", "usage: an unknown option or sub-command, or an option value that is missing or malformed"),
    ("130", "interrupted by SIGINT (Ctrl-C); a run being waited for is cancelled (--cancel-on-timeout)"),
    ("143", "interrupted by SIGTERM; likewise"),
)
# How the human-readable result names each output (in this order); other outputs follow by name.
TEXT_LABELS = {
    "status": "status",
    "previous-run-id": "previous run",
    "run-id": "new run",
    "run-url": "new run URL",
    "restarted": "restarted",
    "verified": "verified",
    "missing-nodes": "missing",
    "avoided-nodes": "nodes saved",
    "avoided-seconds": "time saved",
}


# Outputs `--json` gives as numbers.
NUMBERS: dict[str, Callable[[str], Any]] = {"avoided-nodes": int, "avoided-seconds": float}


def decoded(outputs: Mapping[str, str]) -> dict[str, Any]:
    """The outputs for `--json`: lists and objects as JSON values, `restarted` and `verified` as booleans
    (`verified` null when not checked), the avoided work as numbers (null when nothing was planned)."""
    result: dict[str, Any] = {}
    for name, value in outputs.items():
        if name in ("restarted", "verified") and value in ("true", "false"):
            result[name] = value == "true"
        elif name == "verified" and not value:
            result[name] = None
        elif name in NUMBERS:
            result[name] = NUMBERS[name](value) if value else None
        elif value.startswith(("[", "{")):
            try:
                result[name] = json.loads(value)
            except ValueError:
                result[name] = value
        else:
            result[name] = value
    return result


def env_name(name: str) -> str:
    """The environment variable an option falls back to: `timeout` -> `DBT_CLOUD_RESTART_TIMEOUT`."""
    return ENV_FALLBACKS.get(name) or "DBT_CLOUD_RESTART_" + name.upper().replace("-", "_")


def flag(name: str) -> str:
    """The command-line flag of an input: the token is `--token`, every other input keeps its name."""
    return "--token" if name == "dbt-cloud-token" else f"--{name}"


def _epilog() -> str:
    codes = "\n".join(f"  {number:<4} {meaning}" for number, meaning in EXIT_CODES)
    return (
        "Without a sub-command, `restart` is run. Every option falls back to the environment variable shown\n"
        "with it; pass the token through DBT_CLOUD_SERVICE_TOKEN rather than on the command line.\n"
        "The log goes to stderr; the result to stdout (text, or one JSON object with --json).\n"
        "`%(prog)s relay` serves dbt Cloud's webhooks and dispatches restarts to GitHub instead\n"
        "(a service; its settings come from the environment: `%(prog)s relay --help`).\n\n"
        f"exit codes:\n{codes}"
    )


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="dbt-cloud-restart",
        usage="%(prog)s [restart|plan] [options]",
        description="Restart a failed dbt Cloud job from its point of failure.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    commands = "; ".join(f"{name}: {what}" for name, what in COMMANDS.items())
    cli.add_argument(
        "command", nargs="?", choices=list(COMMANDS), default="restart", metavar="restart|plan", help=commands
    )
    group = cli.add_argument_group("options (each falls back to the environment variable in brackets)")
    for name in INPUTS:
        aliases = [flag(name), "--host"] if name == "dbt-cloud-host" else [flag(name)]
        description = HELP.get(name, name).replace("%", "%%")
        group.add_argument(*aliases, dest=name, metavar="VALUE", help=f"{description} [{env_name(name)}]")
    output = cli.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print the outputs as one JSON object on stdout")
    output.add_argument("--debug", action="store_true", help="print debug details to stderr [RUNNER_DEBUG=1]")
    output.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return cli


def collect(args: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Input values: each flag, else its environment variable, else '' (the input's default)."""
    return {name: args[name] if args.get(name) is not None else env.get(env_name(name), "") for name in INPUTS}


def usage_problem(command: str, values: Mapping[str, str]) -> str:
    """What makes these values unusable, in the CLI's words ('' when they are fine); calls nothing remote."""
    if command == "plan" and values["dry-run"].strip().lower() not in ("", "true"):
        return "`plan` never triggers a run: drop --dry-run or use `restart`"
    try:
        settings.parse(values)
    except settings.InputError as exc:
        detail = str(exc).removeprefix(f"Input `{exc.name}` ")
        return f"{flag(exc.name)} (or {env_name(exc.name)}) {detail}"
    return ""


def as_text(outputs: Mapping[str, str]) -> str:
    """The result for a person: one `label: value` line per output set, lists one item a line."""
    lines = []
    names = [*(n for n in TEXT_LABELS if n in outputs), *(n for n in outputs if n not in TEXT_LABELS)]
    width = max(len(TEXT_LABELS.get(n, n)) for n in names) if names else 0
    for name in names:
        value, label = outputs[name], TEXT_LABELS.get(name, name)
        if name in ("steps", "rerun-nodes", "missing-nodes"):
            items: list[str] = json.loads(value or "[]")
            if name == "missing-nodes" and not items:
                continue
            lines.append(f"{label:<{width}}  {len(items)}")
            lines += [f"  {item}" for item in (items if name == "steps" else items[:20])]
            if len(items) > 20 and name != "steps":
                lines.append(f"  ... and {len(items) - 20} more")
        elif value:
            lines.append(f"{label:<{width}}  {value}{' s' if name == 'avoided-seconds' else ''}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """The command line: flags, else environment variables; the result as text or JSON on stdout."""
    env = os.environ if env is None else env
    cli = parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["relay"]:  # the webhook relay: a service, its settings from the environment only
        from restart import relay

        return relay.main(words[1:], env)
    known = {o for action in cli._actions for o in action.option_strings}
    unknown = [w for w in words if w.startswith("--") and w.split("=", 1)[0] not in known]
    if unknown:  # said first: argparse would take the unknown option's value for a sub-command
        cli.print_usage(sys.stderr)
        sys.stderr.write(f"{cli.prog}: error: unrecognized arguments: {' '.join(unknown)}\n")
        return 2
    try:
        args = vars(cli.parse_args(words))
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else 2
    values = collect(args, env)
    if args["command"] == "plan":
        values["dry-run"] = values["dry-run"] or "true"
    in_actions = actions.in_actions(env)
    problem = usage_problem(args["command"], values)
    if problem and not in_actions:  # in Actions, run_with reports it as the action does (::error::, exit 1)
        cli.print_usage(sys.stderr)
        sys.stderr.write(f"{cli.prog}: error: {problem}\n")
        return 2
    debug = args["debug"] or env.get("RUNNER_DEBUG") == "1"
    stream = sys.stderr if args["json"] or not in_actions else sys.stdout
    log = actions.Log(actions=in_actions, stream=stream, debug_enabled=debug)
    try:
        code, outputs = run_with(values, env, log)
    except KeyboardInterrupt:  # before the signal handlers were installed
        return 130
    if in_actions:
        actions.write_outputs(outputs, env)
    if args["json"]:
        json.dump(decoded(outputs), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not in_actions:
        sys.stdout.write(as_text(outputs))
    return code
