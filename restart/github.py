"""GitHub: the workflow's context (event, run URL) and optional reporting (commit status, incident issue).

PyGithub is imported only when reporting is switched on, so a plain restart starts fast. Reporting
never fails a restart: a missing permission or an API error becomes a warning.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from github.Repository import Repository

STATUS_CONTEXT = "dbt-cloud-restart"
ISSUE_LABEL = "dbt-cloud-restart"


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


class Reporter:
    """Commit status and incident issue for one restart; every failure is a warning."""

    def __init__(
        self,
        token: str,
        context: Context,
        job_id: int,
        *,
        status: bool,
        issue: bool,
        warn: Callable[[str], None],
        status_context: str = STATUS_CONTEXT,
    ) -> None:
        self.context = context
        self.job_id = job_id
        self.status_context = status_context
        self.status = status and bool(context.sha)
        self.issue = issue
        self._token = token
        self._warn = warn
        self._repo: Repository | None = None

    def _repository(self) -> Repository:
        if self._repo is None:
            from github import Auth, Github  # imported here: only reporting needs PyGithub

            client = Github(auth=Auth.Token(self._token), base_url=self.context.api_url, timeout=15, retry=None)
            self._repo = client.get_repo(self.context.repository, lazy=True)
        return self._repo

    def _guard(self, what: str, action: Callable[[], Any]) -> Any:
        from github import GithubException

        try:
            return action()
        except GithubException as exc:
            hint = " (the workflow needs `permissions:` for it)" if exc.status in (401, 403, 404) else ""
            message = exc.data.get("message") if isinstance(exc.data, dict) else ""
            self._warn(f"could not {what}: GitHub answered {exc.status} {message or ''}{hint}".strip())
        except Exception as exc:  # network errors and the like: reporting must never fail a restart
            self._warn(f"could not {what}: {type(exc).__name__}")
        return None

    def set_status(self, state: str, target_url: str, description: str) -> None:
        if not self.status:
            return
        self._guard(
            "set the commit status",
            lambda: (
                self._repository()
                .get_commit(self.context.sha)
                .create_status(state, target_url=target_url, description=description[:140], context=self.status_context)
            ),
        )

    def track_issue(self, failed: bool, title_run: str, body: str) -> str:
        """Open or update the job's incident issue on failure, close it on success; its URL or ''."""
        if not self.issue:
            return ""
        title = f"dbt Cloud job {self.job_id}: restart failed"

        def work() -> str:
            repo = self._repository()
            existing = next(
                (i for i in repo.get_issues(state="open", labels=[ISSUE_LABEL]) if i.title == title),
                None,
            )
            if failed:
                if existing is not None:
                    existing.create_comment(body)
                    return str(existing.html_url)
                created = repo.create_issue(title=title, body=body, labels=[ISSUE_LABEL])
                return str(created.html_url)
            if existing is not None:
                existing.create_comment(f"Resolved: {title_run} succeeded.\n\n{body}")
                existing.edit(state="closed")
                return str(existing.html_url)
            return ""

        url = self._guard("update the incident issue", work)
        return url if isinstance(url, str) else ""
