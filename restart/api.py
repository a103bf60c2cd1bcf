"""The dbt Cloud Administrative API v2 endpoints this action uses, for one account.

The HTTP underneath (session, timeouts, retries, error wording) is `restart.transport`; the
never-twice trigger protocol is `restart.trigger`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from restart.records import RecordError, RetryDetails, Run, as_id, retry_details_from_json, run_from_json, run_id_of
from restart.transport import (
    ApiError,
    NotFound,
    RetryPolicy,
    Session,
    Transport,
)


def _retried(run: dict[str, Any]) -> int | None:
    """The run `run` reruns from failure (its `retrying_run_id`), as a number."""
    return as_id(run.get("retrying_run_id"))


class DbtCloud:
    """The endpoints this action uses, for one account."""

    def __init__(
        self,
        base_url: str,
        token: str,
        account_id: int,
        *,
        timeout: tuple[float, float] = (10.0, 30.0),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: Session | None = None,
    ) -> None:
        self.transport = Transport(
            base_url, token, account_id, timeout=timeout, retry=retry, session=session, sleep=sleep, clock=clock
        )
        self.base_url = self.transport.base_url
        self.account_id = account_id

    @property
    def calls(self) -> int:
        return self.transport.calls

    @property
    def retry(self) -> RetryPolicy:
        return self.transport.retry

    def sleep(self, seconds: float) -> None:
        self.transport.sleep(seconds)

    def close(self) -> None:
        self.transport.close()

    # -- endpoints ---------------------------------------------------------------------------

    def get_run(self, run_id: int, include: Iterable[str] = ("trigger", "job", "run_steps")) -> Run:
        """The run, with its trigger, job and steps unless `include` says otherwise (raises `RecordError`)."""
        params = {"include_related": ",".join(include)} if include else None
        return run_from_json(self._object("GET", f"runs/{run_id}/", f"run {run_id}", params=params))

    def latest_finished_run_id(self, job_id: int) -> int | None:
        """The newest run of the job that succeeded, errored or was cancelled."""
        params = {
            "job_definition_id": str(job_id),
            "status__in": "[10,20,30]",
            "order_by": "-id",
            "limit": "1",
        }
        runs = self._data("GET", "runs/", f"runs of job {job_id}", params=params)
        if not isinstance(runs, list):
            raise ApiError(f"dbt Cloud answered the runs of job {job_id} with something other than a list")
        return int(runs[0]["id"]) if runs else None

    def get_job(self, job_id: int) -> dict[str, Any]:
        return self._object("GET", f"jobs/{job_id}/", f"job {job_id}")

    def get_artifact(self, run_id: int, path: str, step: int | None = None) -> Any:
        """An artifact's parsed JSON, or None when the run has no such artifact."""
        params = {"step": str(step)} if step is not None else None
        what = f"{path} of run {run_id}" + (f" step {step}" if step is not None else "")
        try:
            response = self.transport.request("GET", f"runs/{run_id}/artifacts/{path}", what, params=params)
        except NotFound:
            return None
        return self._json(response, what, artifact=True)

    def recent_runs(self, job_id: int, limit: int = 25) -> list[Run]:
        """The job's newest runs, newest first, with their triggers (for the cause markers).

        A listed run this tool cannot read (no id, job or status) is left out.
        """
        found = []
        for data in self._recent(job_id, limit):
            try:
                found.append(run_from_json(data))
            except RecordError:
                continue
        return found

    def _recent(self, job_id: int, limit: int) -> list[dict[str, Any]]:
        params = {
            "job_definition_id": str(job_id),
            "order_by": "-id",
            "limit": str(limit),
            "include_related": "trigger",
        }
        runs = self._data("GET", "runs/", f"recent runs of job {job_id}", params=params)
        if not isinstance(runs, list):
            raise ApiError(f"dbt Cloud answered the runs of job {job_id} with something other than a list")
        return [r for r in runs if isinstance(r, dict)]

    def runs_with_cause(self, job_id: int, text: str) -> list[dict[str, Any]]:
        """The job's recent runs whose cause contains `text`, oldest first."""
        found = []
        for run in self._recent(job_id, limit=10):
            trigger = run.get("trigger") or {}
            if isinstance(trigger, dict) and text in str(trigger.get("cause") or ""):
                found.append(run)
        return sorted(found, key=lambda run: run_id_of(run) or 0)

    def runs_retrying(self, job_id: int, run_id: int) -> list[dict[str, Any]]:
        """The job's recent runs that rerun run `run_id` from failure (`retrying_run_id`), oldest first."""
        found = [run for run in self._recent(job_id, limit=10) if _retried(run) == run_id]
        return sorted(found, key=lambda run: run_id_of(run) or 0)

    def get_artifact_bytes(self, run_id: int, path: str, step: int | None = None) -> bytes | None:
        """An artifact's raw bytes (for a large file parsed as it is read), or None when absent."""
        params = {"step": str(step)} if step is not None else None
        what = f"{path} of run {run_id}" + (f" step {step}" if step is not None else "")
        try:
            response = self.transport.request("GET", f"runs/{run_id}/artifacts/{path}", what, params=params)
        except NotFound:
            return None
        return bytes(response.content)

    def trigger(self, job_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """POST a new run of the job, once (see `restart.trigger` for sending it safely)."""
        return self._object("POST", f"jobs/{job_id}/run/", f"a new run of job {job_id}", json=body, idempotent=False)

    def rerun(self, job_id: int) -> dict[str, Any]:
        """dbt Cloud's own rerun-from-failure. Sent once."""
        return self._object("POST", f"jobs/{job_id}/rerun/", f"a rerun of job {job_id}", idempotent=False)

    def retry_details(self, run_id: int) -> RetryDetails:
        """What dbt Cloud's rerun from failure would run (its failed step, the steps it skipped); starts nothing."""
        data = self._object("GET", f"runs/{run_id}/retry/", f"the failure details of run {run_id}")
        return retry_details_from_json(data)

    def cancel_run(self, run_id: int) -> dict[str, Any]:
        return self._object("POST", f"runs/{run_id}/cancel/", f"cancelling run {run_id}")

    # -- plumbing ----------------------------------------------------------------------------

    def _data(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        document = self._json(self.transport.request(method, path, what, **kwargs), what)
        if not isinstance(document, dict) or "data" not in document:
            raise ApiError(f"dbt Cloud answered {what} without the usual `data` envelope")
        return document["data"]

    def _object(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        data = self._data(method, path, what, **kwargs)
        if not isinstance(data, dict):
            raise ApiError(f"dbt Cloud answered {what} with {type(data).__name__} data, not an object")
        return data

    def _json(self, response: requests.Response, what: str, artifact: bool = False) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            if artifact and kind == "application/json":
                raise ApiError(f"{what} is not valid JSON (truncated?)", response.status_code) from None
            raise ApiError(
                f"dbt Cloud answered {what} with a non-JSON body (HTTP {response.status_code}, {kind}): "
                "check dbt-cloud-host",
                response.status_code,
            ) from None
