"""The emulator's records (jobs, triggers, runs, steps) and their dbt Cloud v2 JSON shapes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .warm import DbtProcess

QUEUED, STARTING, RUNNING, SUCCESS, ERROR, CANCELLED = 1, 2, 3, 10, 20, 30
COMPLETE = (SUCCESS, ERROR, CANCELLED)
HUMANIZED = {
    QUEUED: "Queued",
    STARTING: "Starting",
    RUNNING: "Running",
    SUCCESS: "Success",
    ERROR: "Error",
    CANCELLED: "Cancelled",
}
STEP_COLORS = {
    QUEUED: "#9E9E9E",
    STARTING: "#009CDD",
    RUNNING: "#009CDD",
    SUCCESS: "#4BB543",
    ERROR: "#E55440",
    CANCELLED: "#9E9E9E",
}
RETRY_NOT_FAILED_RUN = "RETRY_NOT_FAILED_RUN"
RETRY_NOT_LATEST_RUN = "RETRY_NOT_LATEST_RUN"
RETRY_NO_RUN_RESULTS = "RETRY_NO_RUN_RESULTS"
ARTIFACT_NAMES = ("manifest.json", "run_results.json", "catalog.json", "sources.json")
LOG_LINES = 200
DEBUG_LOG_LINES = 1000


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def stamp(moment: datetime | None) -> str | None:
    """A timestamp as dbt Cloud writes it: `2026-11-24 21:18:03.123456+00:00`."""
    return None if moment is None else moment.isoformat(sep=" ", timespec="microseconds")


def clock(start: datetime | None, end: datetime | None) -> str | None:
    """An `HH:MM:SS` duration between two moments (up to now when `end` is None)."""
    if start is None:
        return None
    seconds = int(((end or now()) - start).total_seconds())
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def humanize(start: datetime | None, end: datetime | None) -> str | None:
    """A duration in words, e.g. `1 minute, 5 seconds`."""
    if start is None:
        return None
    seconds = int(((end or now()) - start).total_seconds())
    parts = [(seconds // 3600, "hour"), (seconds // 60 % 60, "minute"), (seconds % 60, "second")]
    words = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts if n]
    return ", ".join(words) or "0 seconds"


def tail(text: str, lines: int) -> str:
    """The last `lines` lines of `text`."""
    kept = text.splitlines(keepends=True)
    return "".join(kept[-lines:])


def read_text(path: Path | None) -> str:
    """A file's text, or '' when it does not exist."""
    if path is None or not path.is_file():
        return ""
    return path.read_text(encoding="utf-8", errors="replace")


@dataclass
class Job:
    """A job definition."""

    id: int
    account_id: int
    project_id: int
    environment_id: int
    name: str
    execute_steps: list[str]
    generate_docs: bool
    run_generate_sources: bool
    timeout_seconds: int
    threads: int = 4
    target_name: str = "default"
    run_lint: bool = False
    run_compare_changes: bool = False
    job_type: str = "scheduled"  # `ci` jobs build a pull request's runs in its own schema
    dbt_version: str | None = None  # the release track of its environment (tracks.py), else None: inherited
    created_at: datetime = field(default_factory=now)

    def to_api(self) -> dict[str, Any]:
        """The job as HumanReadableJobDefinitionResponse."""
        return {
            "id": self.id,
            "account_id": self.account_id,
            "project_id": self.project_id,
            "environment_id": self.environment_id,
            "name": self.name,
            "description": "",
            "dbt_version": self.dbt_version,
            "raw_dbt_version": self.dbt_version,
            "deferring_environment_id": None,
            "deferring_job_definition_id": None,
            "execute_steps": list(self.execute_steps),
            "execution": {"timeout_seconds": self.timeout_seconds},
            "generate_docs": self.generate_docs,
            "run_generate_sources": self.run_generate_sources,
            "generate_sources": self.run_generate_sources,
            "is_deferrable": False,
            "job_type": self.job_type,
            "lifecycle_webhooks": False,
            "lifecycle_webhooks_url": None,
            "run_compare_changes": self.run_compare_changes,
            "compare_changes_flags": "--select state:modified",
            "run_failure_count": 0,
            "run_lint": self.run_lint,
            "errors_on_lint_failure": True,
            "cost_optimization_features": [],
            "settings": {"threads": self.threads, "target_name": self.target_name},
            "state": 1,
            "triggers_on_draft_pr": False,
            "triggers": {
                "github_webhook": False,
                "schedule": False,
                "git_provider_webhook": False,
                "on_merge": False,
                "custom_branch_only": False,
            },
            "schedule": {
                "cron": "0 * * * *",
                "date": {"type": "every_day"},
                "time": {"type": "every_hour", "interval": 1},
            },
            "job_completion_trigger_condition": None,
            "created_at": stamp(self.created_at),
            "updated_at": stamp(self.created_at),
        }


@dataclass
class Trigger:
    """Why and how a run was started."""

    id: int
    job_definition_id: int
    cause: str
    cause_category: str
    steps_override: list[str] | None = None
    git_branch: str | None = None
    git_sha: str | None = None
    schema_override: str | None = None
    dbt_version_override: str | None = None
    threads_override: int | None = None
    target_name_override: str | None = None
    generate_docs_override: bool | None = None
    timeout_seconds_override: int | None = None
    azure_pull_request_id: int | None = None
    github_pull_request_id: int | None = None
    gitlab_merge_request_id: int | None = None
    non_native_pull_request_id: int | None = None
    created_at: datetime = field(default_factory=now)

    def to_api(self) -> dict[str, Any]:
        """The trigger as RunTrigger."""
        return {
            "id": self.id,
            "cause": self.cause,
            "job_definition_id": self.job_definition_id,
            "git_branch": self.git_branch,
            "git_sha": self.git_sha,
            "azure_pull_request_id": self.azure_pull_request_id,
            "github_pull_request_id": self.github_pull_request_id,
            "gitlab_merge_request_id": self.gitlab_merge_request_id,
            "non_native_pull_request_id": self.non_native_pull_request_id,
            "schema_override": self.schema_override,
            "dbt_version_override": self.dbt_version_override,
            "threads_override": self.threads_override,
            "target_name_override": self.target_name_override,
            "generate_docs_override": self.generate_docs_override,
            "timeout_seconds_override": self.timeout_seconds_override,
            "steps_override": None if self.steps_override is None else list(self.steps_override),
            "cause_category": self.cause_category,
            "created_at": stamp(self.created_at),
            "updated_at": stamp(self.created_at),
        }


@dataclass
class Step:
    """One step of a run; it exists from the moment it starts."""

    id: int
    run_id: int
    account_id: int
    index: int
    name: str
    directory: Path
    command: str | None = None
    command_index: int | None = None
    status: int = RUNNING
    started_at: datetime = field(default_factory=now)
    finished_at: datetime | None = None
    logs: str | None = None
    stdout_path: Path | None = None
    debug_log_path: Path | None = None
    target_path: Path | None = None
    skipped: bool = False  # listed without running: a failure stopped the run before it

    @property
    def artifacts(self) -> dict[str, Path]:
        """The dbt artifacts this step wrote, by file name (only once it has finished)."""
        if self.target_path is None or self.finished_at is None:
            return {}
        found = {name: self.target_path / name for name in ARTIFACT_NAMES}
        return {name: path for name, path in found.items() if path.is_file()}

    def to_api(self, full_debug_logs: bool = False) -> dict[str, Any]:
        """The step as RunStepResponse."""
        logs = self.logs if self.logs is not None else tail(read_text(self.stdout_path), LOG_LINES)
        debug = read_text(self.debug_log_path)
        truncated = tail(debug, DEBUG_LOG_LINES)
        return {
            "id": self.id,
            "run_id": self.run_id,
            "account_id": self.account_id,
            "index": self.index,
            "status": self.status,
            "status_humanized": "Skipped" if self.skipped else HUMANIZED.get(self.status, str(self.status)),
            "status_color": STEP_COLORS.get(self.status, STEP_COLORS[QUEUED]),
            "name": self.name,
            "logs": logs,
            "debug_logs": debug if full_debug_logs else truncated,
            "truncated_debug_logs": truncated,
            "log_path": None if self.stdout_path is None else str(self.stdout_path),
            "debug_log_path": None if self.debug_log_path is None else str(self.debug_log_path),
            "started_at": stamp(self.started_at),
            "finished_at": stamp(self.finished_at),
            "duration": clock(self.started_at, self.finished_at),
            "duration_humanized": humanize(self.started_at, self.finished_at),
            "created_at": stamp(self.started_at),
            "updated_at": stamp(self.finished_at or self.started_at),
        }


@dataclass
class Run:
    """A run of a job, with the commands it executes and its live process."""

    id: int
    account_id: int
    project_id: int
    job: Job
    trigger: Trigger
    commands: list[str]
    generate_docs: bool
    timeout_seconds: int
    git_branch: str
    git_sha: str
    dbt_version: str
    href: str
    retry_of: int | None = None
    retry_state: Path | None = None
    status: int = QUEUED
    status_message: str | None = None
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    dequeued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[Step] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    process: DbtProcess | None = None
    has_docs_generated: bool = False
    has_sources_generated: bool = False

    @property
    def is_complete(self) -> bool:
        """Whether the run has finished, whatever its outcome."""
        return self.status in COMPLETE

    def failed_step(self) -> Step | None:
        """The step that made the run fail."""
        failed = [step for step in self.steps if step.status == ERROR and not step.skipped]
        return failed[-1] if failed and self.status == ERROR else None

    def skipped_commands(self) -> list[str]:
        """The commands of the run that never started."""
        started = [step.command_index for step in self.steps if step.command_index is not None]
        return self.commands[max(started) + 1 :] if started else list(self.commands)

    def retry_blocker(self, latest_run_id: int) -> str | None:
        """Why the run cannot be retried from the point of failure, or None when it can."""
        if self.status != ERROR:
            return RETRY_NOT_FAILED_RUN
        if self.id != latest_run_id:
            return RETRY_NOT_LATEST_RUN
        failed = self.failed_step()
        if failed is None or failed.command_index is None or "run_results.json" not in failed.artifacts:
            return RETRY_NO_RUN_RESULTS
        return None

    def to_api(self, latest_run_id: int, include: set[str]) -> dict[str, Any]:
        """The run as RunResponse; `include` names the related objects to embed."""
        blocker = self.retry_blocker(latest_run_id)
        complete = self.is_complete
        return {
            "id": self.id,
            "trigger_id": self.trigger.id,
            "account_id": self.account_id,
            "environment_id": self.job.environment_id,
            "project_id": self.project_id,
            "job_definition_id": self.job.id,
            "job_id": self.job.id,
            "status": self.status,
            "status_humanized": HUMANIZED[self.status],
            "status_message": self.status_message,
            "dbt_version": self.dbt_version,
            "git_branch": self.git_branch,
            "git_sha": self.git_sha,
            "owner_thread_id": None,
            "executed_by_thread_id": None,
            "deferring_run_id": None,
            "artifacts_saved": complete and any(step.artifacts for step in self.steps),
            "artifact_s3_path": None,
            "has_docs_generated": self.has_docs_generated,
            "has_sources_generated": self.has_sources_generated,
            "notifications_sent": complete,
            "blocked_by": [],
            "created_at": stamp(self.created_at),
            "updated_at": stamp(self.updated_at),
            "dequeued_at": stamp(self.dequeued_at),
            "started_at": stamp(self.started_at),
            "finished_at": stamp(self.finished_at),
            "last_checked_at": None,
            "last_heartbeat_at": None,
            "should_start_at": None,
            "trigger": self.trigger.to_api() if "trigger" in include else None,
            "job": self.job.to_api() if "job" in include else None,
            "environment": None,
            "run_steps": [step.to_api("debug_logs" in include) for step in self.steps]
            if "run_steps" in include
            else [],
            "status_humanized_reason": None,
            "in_progress": not complete,
            "is_complete": complete,
            "is_success": self.status == SUCCESS,
            "is_error": self.status == ERROR,
            "is_cancelled": self.status == CANCELLED,
            "is_running": self.status == RUNNING,
            "duration": clock(self.created_at, self.finished_at),
            "queued_duration": clock(self.created_at, self.dequeued_at),
            "run_duration": clock(self.started_at, self.finished_at),
            "duration_humanized": humanize(self.created_at, self.finished_at),
            "queued_duration_humanized": humanize(self.created_at, self.dequeued_at),
            "run_duration_humanized": humanize(self.started_at, self.finished_at),
            "created_at_humanized": f"{humanize(self.created_at, None)} ago",
            "finished_at_humanized": None if self.finished_at is None else f"{humanize(self.finished_at, None)} ago",
            "retrying_run_id": self.retry_of,
            "can_retry": blocker is None,
            "retry_not_supported_reason": blocker,
            "href": self.href,
            "used_repo_cache": False,
        }
