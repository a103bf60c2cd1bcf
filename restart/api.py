"""A small client for the dbt Cloud Administrative API v2.

One `requests.Session`, explicit timeouts, reads retried under a `RetryPolicy`, and the trigger
POST never retried blindly. Every failure becomes an `ApiError` with a one-line message that
names what was asked for and never contains the token.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests

from restart import __version__
from restart.actions import redact

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
RECONCILE_CHECKS = 3  # looks at the job's runs for a trigger whose answer was lost


class ApiError(Exception):
    """A dbt Cloud request failed; the message is one line, fit for `::error::`."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ApiError):
    """HTTP 404: the account, job, run or artifact does not exist (or is not visible)."""


class Unreachable(ApiError):
    """No HTTP answer at all; `sent` is False only when the request surely never left."""

    def __init__(self, message: str, status: int | None = None, *, sent: bool = True) -> None:
        super().__init__(message, status)
        self.sent = sent


def run_id_of(run: dict[str, Any]) -> int | None:
    """A run's id as a number, whether the API gave it as a number or a string (None when neither)."""
    value = run.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def maybe_processed(error: ApiError) -> bool:
    """Whether a failed POST may still have been carried out by dbt Cloud."""
    if isinstance(error, Unreachable):
        return error.sent
    return error.status is None or error.status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: exponential backoff with jitter, capped, within a deadline."""

    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    deadline: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff) * random.uniform(0.5, 1.0))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _sent(exc: requests.RequestException) -> bool:
    """Whether the request may have reached the server before `exc`."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.ConnectionError):
        text = repr(exc)
        return not any(
            marker in text for marker in ("NewConnectionError", "NameResolution", "Connection refused", "getaddrinfo")
        )
    return True


def _permanent(exc: requests.RequestException) -> bool:
    """Failures a retry cannot mend: a certificate that is not trusted, a host name that does not exist."""
    text = repr(exc)
    return isinstance(exc, requests.exceptions.SSLError) or "Name or service not known" in text


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.calls = 0
        self._token = token
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                "User-Agent": f"dbt-cloud-restart/{__version__}",
            }
        )

    def close(self) -> None:
        self._session.close()

    # -- endpoints ---------------------------------------------------------------------------

    def get_run(self, run_id: int, include: Iterable[str] = ("trigger", "job", "run_steps")) -> dict[str, Any]:
        params = {"include_related": ",".join(include)} if include else None
        return self._object("GET", f"runs/{run_id}/", f"run {run_id}", params=params)

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
            return self._request("GET", f"runs/{run_id}/artifacts/{path}", what, params=params, artifact=True)
        except NotFound:
            return None

    def recent_runs(self, job_id: int, limit: int = 25) -> list[dict[str, Any]]:
        """The job's newest runs with their triggers (for the cause markers)."""
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
        for run in self.recent_runs(job_id, limit=10):
            trigger = run.get("trigger") or {}
            if isinstance(trigger, dict) and text in str(trigger.get("cause") or ""):
                found.append(run)
        return sorted(found, key=lambda run: run_id_of(run) or 0)

    def get_artifact_bytes(self, run_id: int, path: str, step: int | None = None) -> bytes | None:
        """An artifact's raw bytes (for a large file parsed as it is read), or None when absent."""
        params = {"step": str(step)} if step is not None else None
        what = f"{path} of run {run_id}" + (f" step {step}" if step is not None else "")
        try:
            content = self._request("GET", f"runs/{run_id}/artifacts/{path}", what, params=params, raw=True)
        except NotFound:
            return None
        return bytes(content)

    def trigger_run(self, job_id: int, body: dict[str, Any], marker: str) -> tuple[dict[str, Any], str]:
        """POST a new run without ever sending it twice blindly; returns (run, what to warn about or '').

        The POST is repeated at once only when it surely never reached dbt Cloud. When its answer is
        lost (timeout, dropped connection, 5xx), the job's recent runs are searched for `marker`, which
        the body's cause carries, and a run found there is adopted. Only when none shows up is the
        POST sent once more; if the first run then shows up beside the second, the second is cancelled.
        """
        what = f"a new run of job {job_id}"
        path = f"jobs/{job_id}/run/"
        try:
            return self._object("POST", path, what, json=body, retry=False), ""
        except ApiError as error:
            if not maybe_processed(error):
                raise
            lost = error
        for check in range(RECONCILE_CHECKS):
            found = self.runs_with_cause(job_id, marker)
            if found:
                return found[0], f"the answer to the trigger was lost; adopted run {found[0].get('id')} that it created"
            self._sleep(min(self.retry.backoff * 2**check, self.retry.max_backoff))
        try:
            run = self._object("POST", path, what, json=body, retry=False)
        except ApiError as error:
            error.args = (f"{error} (the first attempt failed too: {lost})",)
            raise
        return self._drop_duplicate(job_id, marker, run)

    def _drop_duplicate(self, job_id: int, marker: str, run: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """After a second POST: keep the first trigger's run if it exists after all, cancelling `run`."""
        ours = run_id_of(run)
        try:
            earlier = [r for r in self.runs_with_cause(job_id, marker) if run_id_of(r) != ours]
        except ApiError as exc:
            return (
                run,
                f"could not check that the first trigger created no run ({exc}): look for two runs of job {job_id}",
            )
        if not earlier or ours is None:
            return run, ""
        kept = earlier[0]
        try:
            self.cancel_run(ours)
        except ApiError as exc:
            return kept, (
                f"the first trigger did create run {kept.get('id')} after all: kept it, but run {ours} that the"
                f" second trigger started could not be cancelled ({exc}): cancel it in dbt Cloud"
            )
        return kept, f"the first trigger did create run {kept.get('id')} after all: kept it, cancelled run {ours}"

    def rerun(self, job_id: int) -> dict[str, Any]:
        """dbt Cloud's own rerun-from-failure. Sent once."""
        return self._object("POST", f"jobs/{job_id}/rerun/", f"a rerun of job {job_id}", retry=False)

    def cancel_run(self, run_id: int) -> dict[str, Any]:
        return self._object("POST", f"runs/{run_id}/cancel/", f"cancelling run {run_id}")

    # -- plumbing ----------------------------------------------------------------------------

    def _data(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        document = self._request(method, path, what, **kwargs)
        if not isinstance(document, dict) or "data" not in document:
            raise ApiError(f"dbt Cloud answered {what} without the usual `data` envelope")
        return document["data"]

    def _object(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        data = self._data(method, path, what, **kwargs)
        if not isinstance(data, dict):
            raise ApiError(f"dbt Cloud answered {what} with {type(data).__name__} data, not an object")
        return data

    def _redact(self, text: str) -> str:
        return redact(text, self._token)

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        retry: bool = True,
        artifact: bool = False,
        raw: bool = False,
    ) -> Any:
        url = f"{self.base_url}/api/v2/accounts/{self.account_id}/{path}"
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.calls += 1
            response: requests.Response | None = None
            try:
                response = self._session.request(method, url, params=params, json=json, timeout=self.timeout)
            except requests.RequestException as exc:
                error: ApiError = Unreachable(self._redact(self._describe_exception(exc, what)), sent=_sent(exc))
                if _permanent(exc):
                    raise error from None
            if response is not None:
                if response.status_code < 400:
                    return response.content if raw else self._json(response, what, artifact)
                error = self._http_error(response, what)
            if retry:
                transient = response is None or response.status_code in TRANSIENT_STATUSES
            else:  # not idempotent: only what surely was not carried out may be sent again
                transient = not maybe_processed(error) and (response is None or response.status_code == 429)
            if not (transient and attempt < self.retry.attempts):
                if attempt > 1:
                    error.args = (f"{error} (after {attempt} attempts)",)
                raise error
            retry_after = retry_after_seconds(response.headers.get("Retry-After")) if response is not None else None
            pause = self.retry.delay(attempt, retry_after)
            if time.monotonic() - started + pause > self.retry.deadline:
                error.args = (f"{error} (gave up after {attempt} attempts within {self.retry.deadline:g}s)",)
                raise error
            self._sleep(pause)

    def _describe_exception(self, exc: requests.RequestException, what: str) -> str:
        host = self.base_url
        text = str(exc)
        if isinstance(exc, requests.Timeout):
            return f"dbt Cloud at {host} did not answer {what} within {self.timeout[1]:g}s"
        if isinstance(exc, requests.exceptions.SSLError):
            return f"TLS handshake with {host} failed while asking for {what}: check dbt-cloud-host"
        if "Name or service not known" in text or "getaddrinfo" in text or "NameResolution" in text:
            return f"cannot resolve the host of {host}: check dbt-cloud-host"
        if isinstance(exc, requests.ConnectionError):
            return f"cannot connect to dbt Cloud at {host} while asking for {what}: check dbt-cloud-host"
        return f"request for {what} failed: {type(exc).__name__}"

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

    def _http_error(self, response: requests.Response, what: str) -> ApiError:
        code = response.status_code
        message = ""
        details = ""
        try:
            document = response.json()
        except ValueError:
            document = None
        if isinstance(document, dict):
            status = document.get("status")
            if isinstance(status, dict):
                message = str(status.get("user_message") or status.get("developer_message") or "")
            data = document.get("data")
            if isinstance(data, dict) and code == 400:
                details = "; ".join(f"{k}: {v}" for k, v in data.items())[:300]
        elif code < 500 and code != 429:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            message = f"non-JSON error body ({kind})"
        message = " ".join(f"{message} {details}".split())[:300]
        suffix = f": {message}" if message else ""
        if code == 401:
            text = f"dbt Cloud rejected the token (HTTP 401) for {what}: check dbt-cloud-token"
        elif code == 403:
            text = f"the token may not access {what} (HTTP 403){suffix}; check its permissions and account-id"
        elif code == 404:
            return NotFound(self._redact(f"{what} was not found in account {self.account_id} (HTTP 404)"), code)
        elif code == 429:
            text = f"dbt Cloud rate-limited {what} (HTTP 429)"
        elif code >= 500:
            text = f"dbt Cloud failed on {what} (HTTP {code})"
        else:
            text = f"dbt Cloud refused {what} (HTTP {code}){suffix}"
        return ApiError(self._redact(text), code)
