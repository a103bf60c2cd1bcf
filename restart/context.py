"""The workflow run's context: what the runner tells the action about itself and what triggered it.

Data only: read from the runner's `GITHUB_*` variables and the event payload file, no API call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from restart.records import as_id

STATUS_CONTEXT = "dbt-cloud-restart"
WORKFLOW_DISPATCH: Final = "workflow_dispatch"
REPOSITORY_DISPATCH: Final = "repository_dispatch"
# Inputs a `workflow_dispatch` event may carry when the step leaves them empty.
DISPATCHABLE = ("run-id", "job-id")
# The `client_payload` keys the relay sends (teams contract), by the input each fills, and what it names.
PAYLOAD_KEYS: Final = {
    "account-id": ("account_id", "account"),
    "job-id": ("job_id", "job"),
    "run-id": ("run_id", "run"),
}
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # dbt Cloud's `eventId`, such as wev_2abc...
EVENT_TYPE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")  # dbt Cloud's `eventType`, such as job.run.completed


class EventError(ValueError):
    """A value the triggering event carries is malformed, or contradicts an input (one line, actionable)."""


@dataclass(frozen=True)
class EventValues:
    """The step's inputs with what the event names filled in, and why the event is not for this step ('')."""

    values: dict[str, str]
    skip: str = ""


@dataclass(frozen=True)
class Context:
    """What the workflow run tells the action about itself and what triggered it."""

    event_name: str = ""
    repository: str = ""
    sha: str = ""
    api_url: str = "https://api.github.com"
    run_url: str = ""
    dispatch_inputs: Mapping[str, str] = field(default_factory=dict)
    triggering_run: Mapping[str, Any] = field(default_factory=dict)  # event.workflow_run
    client_payload: Mapping[str, Any] = field(default_factory=dict)  # event.client_payload (repository_dispatch)

    @property
    def dbt_event_id(self) -> str:
        """The dbt Cloud webhook event (`eventId`) the relay's `repository_dispatch` names; '' otherwise."""
        value = self.client_payload.get("event_id") if self.event_name == REPOSITORY_DISPATCH else None
        return value if isinstance(value, str) and EVENT_ID.fullmatch(value) else ""

    @property
    def dbt_event_label(self) -> str:
        """`dbt Cloud event wev_... (job.run.completed)` for the cause and the summary; '' without one."""
        if not self.dbt_event_id:
            return ""
        kind = self.client_payload.get("event_type")
        shown = f" ({kind})" if isinstance(kind, str) and len(kind) <= 64 and EVENT_TYPE.fullmatch(kind) else ""
        return f"dbt Cloud event {self.dbt_event_id}{shown}"

    @property
    def triggering_conclusion(self) -> str:
        return str(self.triggering_run.get("conclusion") or "")

    @property
    def triggering_url(self) -> str:
        return str(self.triggering_run.get("html_url") or "")

    @property
    def triggering_label(self) -> str:
        name = self.triggering_run.get("name") or "workflow"
        number = self.triggering_run.get("run_number")
        return f"{name} #{number}" if number else str(name)


def read_context(env: Mapping[str, str]) -> Context:
    """The context from the runner's `GITHUB_*` variables and the event payload file."""
    event: dict[str, Any] = {}
    path = env.get("GITHUB_EVENT_PATH")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = json.load(handle)
            event = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            event = {}
    server, repo, run_id = (env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    inputs = event.get("inputs") if isinstance(event.get("inputs"), dict) else {}
    triggering = event.get("workflow_run") if isinstance(event.get("workflow_run"), dict) else {}
    payload = event.get("client_payload") if isinstance(event.get("client_payload"), dict) else {}
    return Context(
        event_name=env.get("GITHUB_EVENT_NAME", ""),
        repository=repo,
        sha=env.get("GITHUB_SHA", ""),
        api_url=env.get("GITHUB_API_URL") or "https://api.github.com",
        run_url=f"{server}/{repo}/actions/runs/{run_id}" if server and repo and run_id else "",
        dispatch_inputs={str(k): "" if v is None else str(v) for k, v in (inputs or {}).items()},
        triggering_run=triggering or {},
        client_payload=payload or {},
    )


def dispatch_value(context: Context, name: str) -> str:
    """A `workflow_dispatch` input named like an action input (`run-id` or `run_id`)."""
    if context.event_name != WORKFLOW_DISPATCH:
        return ""
    for key in (name, name.replace("-", "_")):
        value = context.dispatch_inputs.get(key, "").strip()
        if value:
            return value
    return ""


def payload_id(context: Context, input_name: str) -> str:
    """The id the `client_payload` key for `input_name` holds ('' when absent); `EventError` when malformed."""
    key, what = PAYLOAD_KEYS[input_name]
    raw = context.client_payload.get(key)
    if raw is None or raw == "":
        return ""
    number = as_id(raw.strip() if isinstance(raw, str) else raw)
    if number is None or number <= 0:
        raise EventError(
            f"client_payload key `{key}` of the repository_dispatch event must be a positive integer"
            f" (a dbt Cloud {what} id), got {str(raw)[:40]!r}"
        )
    return str(number)


def with_event_values(context: Context, values: Mapping[str, str]) -> EventValues:
    """The inputs, with the job, run (and account) the triggering event names where the step leaves them empty.

    `workflow_dispatch`: its inputs `job-id`/`job_id` and `run-id`/`run_id`. `repository_dispatch`:
    the `client_payload` the relay sends (`account_id`, `job_id`, `run_id`), checked as inputs are; an
    account that differs from a given `account-id` is an error, a job outside a given `job-id` a skip.
    """
    filled = dict(values)
    if context.event_name == WORKFLOW_DISPATCH:
        for name in DISPATCHABLE:
            if not filled.get(name, "").strip():
                filled[name] = dispatch_value(context, name)
        return EventValues(filled)
    if context.event_name != REPOSITORY_DISPATCH:
        return EventValues(filled)
    given = {name: (values.get(name) or "").strip() for name in PAYLOAD_KEYS}
    account, job, run = (payload_id(context, name) for name in PAYLOAD_KEYS)
    event_id = context.client_payload.get("event_id")
    if event_id not in (None, "") and not (isinstance(event_id, str) and EVENT_ID.fullmatch(event_id)):
        raise EventError(
            "client_payload key `event_id` of the repository_dispatch event must be a dbt Cloud event id"
            f" (letters, digits, _ and -), got {str(event_id)[:40]!r}"
        )
    if account:
        if not given["account-id"]:
            filled["account-id"] = account
        elif (given_account := as_id(given["account-id"])) is not None and given_account != int(account):
            raise EventError(
                f"client_payload key `account_id` is {account} but input account-id is {given['account-id']}:"
                " the event comes from another dbt Cloud account; check the webhook the relay serves"
            )
    if given["run-id"]:  # runs named by the step itself: the event only starts it
        return EventValues(filled)
    if not job:
        if not given["job-id"]:
            raise EventError(
                "client_payload of the repository_dispatch event has no `job_id` and input job-id is empty:"
                " name the job in the event (the relay sends job_id) or in job-id"
            )
        filled["run-id"] = run
        return EventValues(filled)
    jobs = [part.strip() for part in re.split(r"[,\n]", given["job-id"]) if part.strip()]
    numbers = {as_id(part) for part in jobs}
    if jobs and None not in numbers and int(job) not in numbers:
        skip = f"the repository_dispatch event names job {job}, which is not in job-id ({', '.join(jobs)})"
        return EventValues(filled, skip)
    filled["job-id"], filled["run-id"] = job, run
    return EventValues(filled)
