"""Plain records of a dbt Cloud run, its steps and its job, built from the API's JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Literal, TypeVar


class RunStatus(IntEnum):
    """A run's (or a run step's) `status` code in dbt Cloud's API."""

    QUEUED = 1
    STARTING = 2
    RUNNING = 3
    SUCCESS = 10
    ERROR = 20
    CANCELLED = 30


QUEUED, STARTING, RUNNING, SUCCESS, ERROR, CANCELLED = RunStatus
FINISHED = frozenset({SUCCESS, ERROR, CANCELLED})
ACTIVE = frozenset({QUEUED, STARTING, RUNNING})
# A status as this tool names it (the `status` output): dbt Cloud's, lower case.
StatusName = Literal["queued", "starting", "running", "success", "error", "cancelled"]
STATUS_NAMES: dict[int, StatusName] = {
    QUEUED: "queued",
    STARTING: "starting",
    RUNNING: "running",
    SUCCESS: "success",
    ERROR: "error",
    CANCELLED: "cancelled",
}
SKIPPED_STEP = "skipped"  # a step's `status_humanized` when a failure stopped the run before it (code unknown)
TIMED_OUT = re.compile(r"\btimed out\b", re.IGNORECASE)  # dbt Cloud: "This run timed out after ..."


def says_timed_out(status_message: str) -> bool:
    """Whether a run's status message says its job's timeout stopped it (the API's and the webhook's)."""
    return TIMED_OUT.search(status_message) is not None


T = TypeVar("T")


class RecordError(ValueError):
    """The API answered with JSON that lacks a field this tool needs."""


# A run's own context, as its `trigger` records it (OpenAPI `RunTrigger`): the fields a trigger request
# may set beyond `cause` and `steps_override`, in the API's order, with the type the API gives each.
# Scheduled runs leave them null.
CONTEXT_TYPES: dict[str, type] = {
    "git_branch": str,
    "git_sha": str,
    "github_pull_request_id": int,
    "gitlab_merge_request_id": int,
    "azure_pull_request_id": int,
    "non_native_pull_request_id": int,
    "schema_override": str,
    "target_name_override": str,
    "threads_override": int,
    "dbt_version_override": str,
    "generate_docs_override": bool,
    "timeout_seconds_override": int,
}
CONTEXT_KEYS = tuple(CONTEXT_TYPES)
PULL_REQUEST_KEYS = (
    "github_pull_request_id",
    "gitlab_merge_request_id",
    "azure_pull_request_id",
    "non_native_pull_request_id",
)
ContextValue = str | int | bool


@dataclass(frozen=True)
class RunContext:
    """What a run was started with beyond its job's settings: the overrides its `trigger` recorded.

    `values` holds only the fields the trigger set (never null), in `CONTEXT_KEYS` order; `unread` names
    the fields it set to a value of the wrong type (left out of `values`); `recorded` is False when the
    run came without its trigger (nothing can be said about its context).
    """

    values: tuple[tuple[str, ContextValue], ...] = ()
    cause_category: str = ""  # api, ci, scheduled, ui, rerun, job completion, merge, ... ('' when not said)
    unread: tuple[str, ...] = ()
    recorded: bool = True

    def get(self, key: str) -> ContextValue | None:
        return dict(self.values).get(key)

    @property
    def overrides(self) -> dict[str, ContextValue]:
        return dict(self.values)

    @property
    def pull_request(self) -> tuple[str, int] | None:
        """(the field, the id) of the pull or merge request the run built, if any."""
        for key in PULL_REQUEST_KEYS:
            value = self.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return key, value
        return None


def _context_value(key: str, value: Any) -> ContextValue | None:
    """One trigger field read leniently: an id in ASCII digits, blank text as unset; else `RecordError`."""
    kind = CONTEXT_TYPES[key]
    if kind is str and isinstance(value, str):
        return value if value.strip() else None
    if kind is int and (number := as_id(value.strip() if isinstance(value, str) else value)) is not None:
        return number
    if kind is bool and isinstance(value, bool):
        return value
    raise RecordError(f"the run's trigger has {key} {str(value)[:40]!r} of type {type(value).__name__}")


def context_from_json(trigger: Any) -> RunContext:
    """A `RunContext` from the API's `trigger` object (None or not an object: not recorded)."""
    if not isinstance(trigger, dict):
        return RunContext(recorded=False)
    values: list[tuple[str, ContextValue]] = []
    unread: list[str] = []
    for key in CONTEXT_KEYS:
        if trigger.get(key) is None:
            continue
        try:
            value = _context_value(key, trigger[key])
        except RecordError:
            unread.append(key)
            continue
        if value is not None:
            values.append((key, value))
    category = trigger.get("cause_category")
    return RunContext(tuple(values), category if isinstance(category, str) else "", tuple(unread))


@dataclass(frozen=True)
class Step:
    """One run step as dbt Cloud lists it (setup steps included)."""

    index: int
    name: str
    status: int
    logs: str = ""  # the end of the step's log, for classifying a failure without node results
    seconds: float | None = None  # how long the step took (None when dbt Cloud does not say)
    humanized: str = ""  # `status_humanized`: "Skipped" marks a step a failure never let start

    @property
    def skipped(self) -> bool:
        """Whether dbt Cloud listed the step without running it (a failure stopped the run before it)."""
        return self.humanized.strip().lower() == SKIPPED_STEP


@dataclass(frozen=True)
class Job:
    """The job settings that decide which steps a run has."""

    id: int
    name: str
    execute_steps: tuple[str, ...]
    run_generate_sources: bool
    run_lint: bool = False
    run_compare_changes: bool = False


@dataclass(frozen=True)
class Run:
    """A run with what planning and reporting need."""

    id: int
    job_id: int
    status: int
    href: str
    status_message: str
    duration: str
    finished_at: str
    cause: str
    steps_override: tuple[str, ...] | None
    steps: tuple[Step, ...]
    job: Job | None
    can_retry: bool | None
    retry_not_supported_reason: str | None
    retrying_run_id: int | None = None  # the run this one retries (dbt Cloud's rerun from failure)
    dbt_version: str = ""  # the run's dbt version (or release track) as dbt Cloud reports it
    context: RunContext = RunContext(recorded=False)  # the overrides its trigger recorded

    @property
    def timed_out(self) -> bool:
        """Whether the job's timeout stopped the run (dbt Cloud cancels it, saying so)."""
        return self.status in (CANCELLED, ERROR) and says_timed_out(self.status_message)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, str(self.status))

    @property
    def status_known(self) -> StatusName:
        """The status by name; a code this tool does not know is not finished, so `running`."""
        return STATUS_NAMES.get(self.status, "running")

    @property
    def is_complete(self) -> bool:
        return self.status in FINISHED

    @property
    def commands(self) -> tuple[str, ...]:
        """The commands this run was asked to execute: its override, else its job's steps."""
        if self.steps_override:
            return self.steps_override
        return self.job.execute_steps if self.job else ()


def as_id(value: Any) -> int | None:
    """A whole number given as a number or in ASCII digits; else None (`str.isdigit` also takes `²`, which
    `int()` then refuses, and Arabic-Indic digits, which it reads): ids, counts and codes, wherever read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None


def run_id_of(run: dict[str, Any]) -> int | None:
    """A run's id as a number, from the API's JSON (None when it has none)."""
    return as_id(run.get("id"))


def _int(data: dict[str, Any], key: str, what: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RecordError(f"{what} has no integer {key!r}")
    number = as_id(value)
    if number is None:
        raise RecordError(f"{what} has a non-integer {key!r}: {value!r}")
    return number


def _object(value: Any, what: str) -> dict[str, Any]:
    """`value` when it is a JSON object, {} when absent; anything else is a `RecordError`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{what} is not a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    """`value` when it is a JSON list, [] when absent; anything else is a `RecordError`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{what} is not a JSON list")
    return value


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError("a list of commands holds something other than strings")
    return tuple(value)


def job_from_json(data: dict[str, Any]) -> Job:
    """A `Job` from the API's job object."""
    return Job(
        id=_int(data, "id", "job"),
        name=str(data.get("name") or ""),
        execute_steps=_strings(data.get("execute_steps")) or (),
        run_generate_sources=bool(data.get("run_generate_sources") or data.get("generate_sources")),
        run_lint=bool(data.get("run_lint")),
        run_compare_changes=bool(data.get("run_compare_changes")),
    )


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def step_seconds(data: dict[str, Any]) -> float | None:
    """A run step's duration in seconds: from `duration` (`HH:MM:SS`), else its start and end; None if unknown."""
    match = re.fullmatch(r"(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)", str(data.get("duration") or "").strip())
    if match:
        return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])
    start, end = _moment(data.get("started_at")), _moment(data.get("finished_at"))
    if start is None or end is None or (start.tzinfo is None) != (end.tzinfo is None):
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds >= 0 else None


def run_from_json(data: dict[str, Any]) -> Run:
    """A `Run` from the API's run object (with `trigger`, `job` and `run_steps` when included)."""
    if not isinstance(data, dict):
        raise RecordError("the run is not a JSON object")
    found = data.get("trigger")  # read leniently (the context's rule): a trigger that is no object records nothing
    trigger: dict[str, Any] = found if isinstance(found, dict) else {}
    job = data.get("job")
    steps = tuple(
        sorted(
            (
                Step(
                    _int(s, "index", "run step"),
                    str(s.get("name") or ""),
                    _int(s, "status", "run step"),
                    str(s.get("logs") or "")[-4000:],
                    seconds=step_seconds(s),
                    humanized=str(s.get("status_humanized") or ""),
                )
                for s in (_object(step, "a run step") for step in _list(data.get("run_steps"), "the run's steps"))
            ),
            key=lambda s: s.index,
        )
    )
    job_id = data.get("job_definition_id", data.get("job_id"))
    return Run(
        id=_int(data, "id", "run"),
        job_id=_int({"job": job_id}, "job", "run"),
        status=_int(data, "status", "run"),
        href=str(data.get("href") or ""),
        status_message=str(data.get("status_message") or ""),
        duration=str(data.get("duration_humanized") or data.get("duration") or ""),
        finished_at=str(data.get("finished_at") or ""),
        cause=str(trigger.get("cause") or ""),
        steps_override=_strings(trigger.get("steps_override")),
        steps=steps,
        job=job_from_json(job) if isinstance(job, dict) else None,
        can_retry=_optional(data.get("can_retry"), bool),
        retry_not_supported_reason=_optional(data.get("retry_not_supported_reason"), str),
        retrying_run_id=as_id(data.get("retrying_run_id")),
        dbt_version=str(data.get("dbt_version") or ""),
        context=context_from_json(found),
    )


def _optional(value: Any, kind: type[T]) -> T | None:
    """An optional field of type `kind`; a value of another type is unknown (None), never stored as it is."""
    return value if isinstance(value, kind) else None


@dataclass(frozen=True)
class RetryDetails:
    """What dbt Cloud's rerun from failure would run: `GET .../runs/{id}/retry/` (starts nothing)."""

    failed_step: str
    skipped_steps: tuple[str, ...]


def retry_details_from_json(data: dict[str, Any]) -> RetryDetails:
    """`RetryDetails` from the API's RunFailureDetailsResponse."""
    failed = data.get("failed_step")
    return RetryDetails(
        failed_step=failed if isinstance(failed, str) else "",
        skipped_steps=_strings(data.get("skipped_steps")) or (),
    )
