"""GitHub reporting for a restart: commit status and incident issue, through PyGithub.

PyGithub is imported only when reporting is switched on, so a plain restart starts fast. Reporting
never fails a restart: a missing permission or an API error becomes a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from restart.context import STATUS_CONTEXT, Context

if TYPE_CHECKING:  # pragma: no cover
    from github.Repository import Repository

ISSUE_LABEL = "dbt-cloud-restart"


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

            client = Github(
                auth=Auth.Token(self._token), base_url=self.context.api_url, timeout=15, retry=None, lazy=True
            )
            self._repo = client.get_repo(self.context.repository)  # lazy: no request until a report needs one
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
