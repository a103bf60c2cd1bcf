"""HTTP under the dbt Cloud client: one session, explicit timeouts, typed errors, a retry policy.

Every failure becomes an `ApiError` with a one-line message that names what was asked for and never
contains the token. Reads are retried under a `RetryPolicy`; a request that may have been carried out
(a POST whose answer was lost) is never sent again here: the trigger protocol decides that.
"""

from __future__ import annotations

import email.utils
import errno
import random
import socket
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import requests

from restart import __version__
from restart.redaction import redact

RATE_LIMITED = 429
TRANSIENT_STATUSES = frozenset({RATE_LIMITED, 500, 502, 503, 504})
# dbt Cloud rate-limits per account (shared with every tool that polls it) and then refuses for five
# minutes: a rate-limited request keeps waiting this long before giving up (the cooldown plus margin).
RATE_LIMIT_WAIT = 420.0
ACCESS_URL_HINT = "copy the host of the account's Access URL (Account settings) into dbt-cloud-host"
NOT_SENT_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


class Session(Protocol):
    """What the transport needs of a `requests.Session`; tests pass a scripted stand-in."""

    @property
    def headers(self) -> MutableMapping[str, Any]: ...

    def request(
        self, method: str, url: str, *, params: Any = None, json: Any = None, timeout: Any = None
    ) -> requests.Response: ...

    def close(self) -> None: ...


class ApiError(Exception):
    """A dbt Cloud request failed; the message is one line, fit for `::error::`."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Whether asking again later may succeed (rate limit, server error, no answer)."""
        return self.status is None or self.status in TRANSIENT_STATUSES


class NotFound(ApiError):
    """HTTP 404: the account, job, run or artifact does not exist (or is not visible)."""


class Unreachable(ApiError):
    """No HTTP answer at all; `sent` is False only when the request surely never left."""

    def __init__(self, message: str, status: int | None = None, *, sent: bool = True, permanent: bool = False) -> None:
        super().__init__(message, status)
        self.sent = sent
        self.permanent = permanent

    @property
    def transient(self) -> bool:
        return not self.permanent


def maybe_processed(error: ApiError) -> bool:
    """Whether a failed POST may still have been carried out by dbt Cloud."""
    if isinstance(error, Unreachable):
        return error.sent
    return error.status is None or error.status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: exponential backoff with jitter, capped, within a deadline.

    A rate-limited request (HTTP 429) waits what `Retry-After` asks, up to `rate_limit_wait` in all,
    however many attempts that takes: dbt Cloud's cooldown lasts five minutes.
    """

    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    deadline: float = 120.0
    rate_limit_wait: float = RATE_LIMIT_WAIT

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.rate_limit_wait)
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


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps (causes, contexts, urllib3's `reason`, exceptions in args)."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])


@dataclass(frozen=True)
class Failure:
    """What kind of network failure a `requests` exception is, read from its type and its causes."""

    kind: str  # "tls", "dns", "refused", "timeout", "connection" or "other"
    sent: bool  # whether the request may have reached the server
    permanent: bool  # whether a retry cannot mend it


def classify(exc: requests.RequestException) -> Failure:
    """Classify a `requests` exception by the types in its chain (never by its text)."""
    chain = list(causes(exc))
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        return Failure("tls", sent=False, permanent=True)
    dns = next((e for e in chain if isinstance(e, socket.gaierror)), None)
    if dns is not None:
        return Failure("dns", sent=False, permanent=dns.errno == socket.EAI_NONAME)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Failure("refused", sent=False, permanent=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure("timeout", sent=False, permanent=False)
    if isinstance(exc, requests.Timeout):
        return Failure("timeout", sent=True, permanent=False)
    if isinstance(exc, requests.ConnectionError):
        unsent = any(isinstance(e, OSError) and e.errno in NOT_SENT_ERRNOS for e in chain)
        return Failure("connection", sent=not unsent, permanent=False)
    return Failure("other", sent=True, permanent=False)


def describe_failure(
    failure: Failure, exc: requests.RequestException, host: str, what: str, read_timeout: float
) -> str:
    """One line for a request that got no HTTP answer."""
    if failure.kind == "timeout":
        return f"dbt Cloud at {host} did not answer {what} within {read_timeout:g}s"
    if failure.kind == "tls":
        return f"TLS handshake with {host} failed while asking for {what}: check dbt-cloud-host"
    if failure.kind == "dns":
        return f"cannot resolve the host of {host}: check dbt-cloud-host"
    if failure.kind in ("refused", "connection"):
        return f"cannot connect to dbt Cloud at {host} while asking for {what}: check dbt-cloud-host"
    return f"request for {what} failed: {type(exc).__name__}"


def _envelope(response: requests.Response) -> tuple[bool, str, Any]:
    """(whether the body is JSON, the envelope's user message, its `data`) of an error answer."""
    try:
        document = response.json()
    except ValueError:
        return False, "", None
    if not isinstance(document, dict):
        return True, "", None
    status = document.get("status")
    message = ""
    if isinstance(status, dict):
        message = str(status.get("user_message") or status.get("developer_message") or "")
    return True, message, document.get("data")


def http_error(response: requests.Response, what: str, account_id: int) -> ApiError:
    """The `ApiError` for an HTTP error answer, worded for the likely real cause."""
    code = response.status_code
    is_json, message, data = _envelope(response)
    details = ""
    if isinstance(data, dict) and code == 400:
        details = "; ".join(f"{k}: {v}" for k, v in data.items())[:300]
    if not is_json and code < 500 and code != RATE_LIMITED:
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        message = f"non-JSON error body ({kind})"
    message = " ".join(f"{message} {details}".split())[:300]
    suffix = f": {message}" if message else ""
    if code == 401:
        return ApiError(
            f"dbt Cloud rejected the token (HTTP 401{suffix}) for {what}: check dbt-cloud-token, and dbt-cloud-host"
            f" (an account on a cell such as ACCOUNT_PREFIX.us1.dbt.com answers 401 on cloud.getdbt.com: "
            f"{ACCESS_URL_HINT})",
            code,
        )
    if code == 403 and isinstance(data, dict) and data.get("account_access_denied"):
        return ApiError(
            f"dbt Cloud refused {what} from this runner's IP address (HTTP 403, account_access_denied): the"
            " account's IP restrictions do not allow it; run the job on a self-hosted runner with an allowed"
            " address, or add the runner's addresses to the allowlist",
            code,
        )
    if code == 403:
        return ApiError(
            f"the token may not access {what} (HTTP 403){suffix}; check its permissions and account-id", code
        )
    if code == 404:
        return NotFound(f"{what} was not found in account {account_id} (HTTP 404)", code)
    if code == RATE_LIMITED:
        return ApiError(f"dbt Cloud rate-limited {what} (HTTP 429)", code)
    if code >= 500:
        return ApiError(f"dbt Cloud failed on {what} (HTTP {code})", code)
    return ApiError(f"dbt Cloud refused {what} (HTTP {code}){suffix}", code)


class Transport:
    """Sends requests to one dbt Cloud host with one token; retries what may be retried."""

    def __init__(
        self,
        base_url: str,
        token: str,
        account_id: int,
        *,
        timeout: tuple[float, float] = (10.0, 30.0),
        retry: RetryPolicy | None = None,
        session: Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.calls = 0
        self._token = token
        self._session: Session = session or requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                "User-Agent": f"dbt-cloud-restart/{__version__}",
            }
        )

    def close(self) -> None:
        self._session.close()

    def redact(self, text: str) -> str:
        return redact(text, self._token)

    def _raise(self, error: ApiError, note: str = "") -> NoReturn:
        message = self.redact(f"{error}{note}")
        error.args = (message,)
        raise error

    def request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> requests.Response:
        """A successful (< 400) answer to `method` on the account's `path`, or an `ApiError`.

        An idempotent request is retried on 429, 5xx and lost connections; any other one only when it
        surely was not carried out (not sent at all, or refused with 429).
        """
        url = f"{self.base_url}/api/v2/accounts/{self.account_id}/{path}"
        started = self.clock()
        attempt = 0
        rate_limited = 0.0  # seconds waited for rate limits so far
        while True:
            attempt += 1
            self.calls += 1
            response: requests.Response | None = None
            try:
                response = self._session.request(method, url, params=params, json=json, timeout=self.timeout)
            except requests.RequestException as exc:
                failure = classify(exc)
                text = describe_failure(failure, exc, self.base_url, what, self.timeout[1])
                error: ApiError = Unreachable(text, sent=failure.sent, permanent=failure.permanent)
                if failure.permanent:
                    self._raise(error)
            if response is not None:
                if response.status_code < 400:
                    return response
                error = http_error(response, what, self.account_id)
            limited = response is not None and response.status_code == RATE_LIMITED
            # Not idempotent: only what surely was not carried out may be sent again.
            again = error.transient if idempotent else not maybe_processed(error) and (response is None or limited)
            retry_after = retry_after_seconds(response.headers.get("Retry-After")) if response is not None else None
            pause = self.retry.delay(attempt, retry_after)
            if limited and not pause:  # never hammer an account that is rate-limited
                pause = self.retry.delay(attempt, None)
            if limited:  # rate limits: bounded by the time waited, not by attempts
                if not again or rate_limited + pause > self.retry.rate_limit_wait:
                    self._raise(error, f" (still after waiting {rate_limited:g}s over {attempt} attempts)")
                rate_limited += pause
            else:
                if not (again and attempt < self.retry.attempts):
                    self._raise(error, f" (after {attempt} attempts)" if attempt > 1 else "")
                if self.clock() - started - rate_limited + pause > self.retry.deadline:
                    self._raise(error, f" (gave up after {attempt} attempts within {self.retry.deadline:g}s)")
            self.sleep(pause)
