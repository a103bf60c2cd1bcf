"""The workflow run's context: what the runner tells the action about itself and what triggered it.

Data only: read from the runner's `GITHUB_*` variables and the event payload file, no API call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STATUS_CONTEXT = "dbt-cloud-restart"


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
    return Context(
        event_name=env.get("GITHUB_EVENT_NAME", ""),
        repository=repo,
        sha=env.get("GITHUB_SHA", ""),
        api_url=env.get("GITHUB_API_URL") or "https://api.github.com",
        run_url=f"{server}/{repo}/actions/runs/{run_id}" if server and repo and run_id else "",
        dispatch_inputs={str(k): "" if v is None else str(v) for k, v in (inputs or {}).items()},
        triggering_run=triggering or {},
    )


def dispatch_value(context: Context, name: str) -> str:
    """A `workflow_dispatch` input named like an action input (`run-id` or `run_id`)."""
    if context.event_name != "workflow_dispatch":
        return ""
    for key in (name, name.replace("-", "_")):
        value = context.dispatch_inputs.get(key, "").strip()
        if value:
            return value
    return ""
