"""Inputs -> one validated, frozen `Settings`; every check runs before any API call."""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

from restart.context import STATUS_CONTEXT
from restart.dbt_vocabulary import REBUILD_FAILED, WITH_TEST_PARENTS, Rebuild
from restart.overrides import CONTEXT_MODES, KEEP, ContextMode
from restart.records import as_id

MAX_CAUSE_INPUT = 167  # dbt Cloud keeps 255 characters: a space and a marker of up to 87 follow the input
TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)

# The trigger body's optional fields (dbt Cloud v2 `TriggerRunRequest`), minus the two the action
# sets itself: `cause` (its own input) and `steps_override` (the plan). Null drops a field the failed
# run's context would carry (`restart.overrides`): it is never sent.
PAYLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "git_sha": {"type": ["string", "null"], "minLength": 1},
        "git_branch": {"type": ["string", "null"], "minLength": 1},
        "azure_pull_request_id": {"type": ["integer", "null"]},
        "github_pull_request_id": {"type": ["integer", "null"]},
        "gitlab_merge_request_id": {"type": ["integer", "null"]},
        "non_native_pull_request_id": {"type": ["integer", "null"]},
        "schema_override": {"type": ["string", "null"], "minLength": 1},
        "dbt_version_override": {"type": ["string", "null"], "minLength": 1},
        "threads_override": {"type": ["integer", "null"], "minimum": 1},
        "target_name_override": {"type": ["string", "null"], "minLength": 1},
        "generate_docs_override": {"type": ["boolean", "null"]},
        "timeout_seconds_override": {"type": ["integer", "null"], "minimum": 0},
    },
}
# The inputs that take one of a few words: each type, and its words (the first is the default).
Strategy = Literal["select", "native"]
STRATEGIES: Final[tuple[Strategy, ...]] = ("select", "native")
NATIVE: Final[Strategy] = "native"  # dbt Cloud's own rerun endpoint, instead of a narrowed trigger
IfPreviousSucceeded = Literal["skip", "run", "fail"]
IF_PREVIOUS_SUCCEEDED: Final[tuple[IfPreviousSucceeded, ...]] = ("skip", "run", "fail")
IfJobRunning = Literal["skip", "wait", "fail"]
IF_JOB_RUNNING: Final[tuple[IfJobRunning, ...]] = ("skip", "wait", "fail")
Report = Literal["none", "status", "issue", "both"]  # GitHub commit status and/or issue
REPORTS: Final[tuple[Report, ...]] = ("none", "status", "issue", "both")
RestartOn = Literal["any", "transient"]
RESTART_ON: Final[tuple[RestartOn, ...]] = ("any", "transient")
REBUILDS: Final[tuple[Rebuild, ...]] = (REBUILD_FAILED, WITH_TEST_PARENTS)
Verify = Literal["fail", "warn", "off"]  # what a new run that succeeded but left planned nodes unrun does
VERIFY_MODES: Final[tuple[Verify, ...]] = ("fail", "warn", "off")
Choice = TypeVar("Choice", bound=str)

OWN_FIELDS = {
    "cause": "use the `cause` input",
    "steps_override": "the action computes steps_override from the failed run",
}


class InputError(ValueError):
    """One input is missing or malformed; `name` is the input as the user wrote it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"Input `{name}` {message}")
        self.name = name


@dataclass(frozen=True)
class Settings:
    """Everything one restart needs, already validated."""

    token: str = field(repr=False)
    account_id: int
    job_id: int
    run_id: int | None
    base_url: str
    cause: str
    payload: dict[str, Any]
    strategy: Strategy
    if_previous_succeeded: IfPreviousSucceeded
    if_job_running: IfJobRunning
    wait: bool
    poll_interval: float
    timeout: float
    cancel_on_timeout: bool
    fail_on_run_failure: bool
    dry_run: bool
    job_ids: tuple[int, ...] = ()  # several jobs restarted in one step (job_id is the first)
    run_ids: tuple[int | None, ...] = ()
    max_attempts: int = 3
    report: Report = "none"
    restart_on: RestartOn = "any"
    rebuild: Rebuild = REBUILD_FAILED
    transient_patterns: tuple[str, ...] = ()
    delay: float = 0.0
    verify: Verify = "fail"  # a new run that succeeded but left planned nodes unrun: fail, warn or off
    context: ContextMode = KEEP  # the new run's context: the failed run's overrides, or the job's defaults
    github_token: str = field(repr=False, default="")
    status_context: str = STATUS_CONTEXT  # the commit status this restart reports under


def _text(values: Mapping[str, str], name: str) -> str:
    return (values.get(name) or "").strip()


def _positive_int(values: Mapping[str, str], name: str, *, required: bool = True) -> int | None:
    raw = _text(values, name)
    if not raw:
        if required:
            raise InputError(name, "is required (a dbt Cloud numeric id)")
        return None
    number = as_id(raw)
    if number is None or number <= 0:
        raise InputError(name, f"must be a positive integer, got {raw[:40]!r}")
    return number


def _id_list(values: Mapping[str, str], name: str, *, required: bool) -> list[int]:
    """One id, or several separated by commas or newlines."""
    raw = _text(values, name)
    if not raw:
        if required:
            raise InputError(name, "is required (a dbt Cloud numeric id)")
        return []
    ids = []
    for part in re.split(r"[,\n]", raw):
        part = part.strip()
        number = as_id(part)
        if number is None or number <= 0:
            raise InputError(name, f"must be a positive integer (or a comma-separated list), got {part[:40]!r}")
        ids.append(number)
    return ids


def for_job(settings: Settings, job_id: int, run_id: int | None) -> Settings:
    """The settings for one job of a multi-job step (its commit status named after the job)."""
    context = f"{settings.status_context}/{job_id}"
    return replace(settings, job_id=job_id, run_id=run_id, job_ids=(job_id,), run_ids=(run_id,), status_context=context)


def _count(values: Mapping[str, str], name: str, default: int) -> int:
    raw = _text(values, name)
    if not raw:
        return default
    number = as_id(raw)
    if number is None:
        raise InputError(name, f"must be a whole number (0 for no limit), got {raw[:40]!r}")
    return number


def _boolean(values: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _text(values, name).lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise InputError(name, f"must be `true` or `false`, got {raw[:40]!r}")


def _seconds(values: Mapping[str, str], name: str, default: float, *, allow_zero: bool = False) -> float:
    raw = _text(values, name)
    if not raw:
        return default
    try:
        if not raw.isascii() or "_" in raw:
            raise ValueError(raw)  # float() reads other scripts' digits and `1_0`; an input is ASCII digits
        number = float(raw)
    except ValueError:
        raise InputError(name, f"must be a number of seconds, got {raw[:40]!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        kind = "a number of seconds, 0 or more" if allow_zero else "a positive number of seconds"
        raise InputError(name, f"must be {kind}, got {raw[:40]!r}")
    return number


def _patterns(values: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Newline-separated regular expressions, each checked to compile."""
    lines = tuple(line.strip() for line in (values.get(name) or "").splitlines() if line.strip())
    for number, line in enumerate(lines, 1):
        try:
            re.compile(line)
        except re.error as exc:
            raise InputError(name, f"line {number} is not a valid regular expression ({exc})") from None
    return lines


def _choice(values: Mapping[str, str], name: str, choices: tuple[Choice, ...]) -> Choice:
    """One of `choices` (case-insensitive), the first when the input is empty."""
    raw = _text(values, name).lower() or choices[0]
    for choice in choices:
        if raw == choice:
            return choice
    raise InputError(name, f"must be one of {', '.join(choices)}; got {raw[:40]!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(raw: str, name: str = "dbt-cloud-host") -> str:
    """`https://host[:port]` from a host name or a base URL; `http://` only for loopback."""
    raw = raw.strip() or "cloud.getdbt.com"
    parts = urlsplit(raw if "://" in raw else f"https://{raw}")
    if parts.scheme not in ("https", "http"):
        raise InputError(name, f"must be a host or an https:// URL, got scheme {parts.scheme!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise InputError(name, "must be a host or a base URL such as https://emea.dbt.com (no path)")
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        raise InputError(name, "has an invalid port") from None
    if not (HOSTNAME.match(host) or _is_loopback(host)):
        raise InputError(name, f"is not a valid host name: {host[:60]!r}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise InputError(name, "must use https:// (plain http is only allowed for loopback addresses)")
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}{f':{port}' if port else ''}"


def parse_payload(raw: str, name: str = "payload") -> dict[str, Any]:
    """The `payload` input: a JSON object of extra trigger fields, checked against the API's types."""
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(name, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(document, dict):
        raise InputError(name, f"must be a JSON object, got {type(document).__name__}")
    for key, why in OWN_FIELDS.items():
        if key in document:
            raise InputError(name, f"must not set `{key}`: {why}")
    import jsonschema  # only when a payload is given: keeps the action's start-up light

    try:
        jsonschema.validate(document, PAYLOAD_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        if exc.validator == "additionalProperties":
            allowed = ", ".join(sorted(PAYLOAD_SCHEMA["properties"]))
            raise InputError(name, f"has an unknown field ({exc.message}); allowed: {allowed}") from None
        raise InputError(name, f"field `{where}` is invalid: {exc.message}") from None
    return document


def parse(values: Mapping[str, str]) -> Settings:
    """Validate raw input values keyed by action input name (`job-id`, ...)."""
    token = _text(values, "dbt-cloud-token")
    if not token:
        raise InputError("dbt-cloud-token", "is required (a dbt Cloud service token)")
    if any(ch.isspace() for ch in token):
        raise InputError("dbt-cloud-token", "must not contain whitespace")
    cause = _text(values, "cause")
    if len(cause) > MAX_CAUSE_INPUT:
        raise InputError("cause", f"must be at most {MAX_CAUSE_INPUT} characters, got {len(cause)}")
    account_id = _positive_int(values, "account-id")
    job_ids = _id_list(values, "job-id", required=True)
    run_ids = _id_list(values, "run-id", required=False)
    if run_ids and len(run_ids) != len(job_ids):
        raise InputError("run-id", f"lists {len(run_ids)} run(s) for {len(job_ids)} job(s): give one per job, or none")
    if len(set(job_ids)) != len(job_ids):
        raise InputError("job-id", "lists a job twice")
    assert account_id is not None
    settings = Settings(
        token=token,
        account_id=account_id,
        job_id=job_ids[0],
        run_id=run_ids[0] if run_ids else None,
        job_ids=tuple(job_ids),
        run_ids=tuple(run_ids) if run_ids else (None,) * len(job_ids),
        base_url=base_url(values.get("dbt-cloud-host") or ""),
        cause=cause,
        payload=parse_payload(values.get("payload") or ""),
        strategy=_choice(values, "strategy", STRATEGIES),
        if_previous_succeeded=_choice(values, "if-previous-succeeded", IF_PREVIOUS_SUCCEEDED),
        if_job_running=_choice(values, "if-job-running", IF_JOB_RUNNING),
        wait=_boolean(values, "wait", True),
        poll_interval=_seconds(values, "poll-interval", 10.0),
        timeout=_seconds(values, "timeout", 3600.0),
        cancel_on_timeout=_boolean(values, "cancel-on-timeout", True),
        fail_on_run_failure=_boolean(values, "fail-on-run-failure", True),
        dry_run=_boolean(values, "dry-run", False),
        max_attempts=_count(values, "max-attempts", 3),
        report=_choice(values, "report", REPORTS),
        restart_on=_choice(values, "restart-on", RESTART_ON),
        rebuild=_choice(values, "rebuild", REBUILDS),
        transient_patterns=_patterns(values, "transient-patterns"),
        delay=_seconds(values, "delay", 0.0, allow_zero=True),
        verify=_choice(values, "verify", VERIFY_MODES),
        context=_choice(values, "context", CONTEXT_MODES),
        github_token=_text(values, "github-token"),
    )
    if settings.strategy == NATIVE:
        _check_native(settings)
    return settings


def _check_native(settings: Settings) -> None:
    """dbt Cloud's rerun endpoint takes no body and no node selection: refuse inputs it would ignore."""
    ignored = {
        "cause": bool(settings.cause),
        "payload": bool(settings.payload),
        "restart-on": settings.restart_on != "any",
        "transient-patterns": bool(settings.transient_patterns),
        "rebuild": settings.rebuild != REBUILD_FAILED,
        "context": settings.context != KEEP,  # dbt Cloud's rerun keeps the failed run's context itself
    }
    for name, given in ignored.items():
        if given:
            why = "does not apply to strategy `native` (dbt Cloud's rerun takes no options)"
            raise InputError(name, f"{why}: use strategy `select`, or leave it out")
