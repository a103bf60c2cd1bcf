"""What the relay decides about a dbt Cloud webhook: signature, event, verdict, payload, memory, back-off.

Pure: bytes and mappings in, records out; the clock is an argument. `restart/relay.py` is the shell that
serves HTTP and calls GitHub. The facts (field notes, "Webhooks and GitHub's repository_dispatch"): the
`Authorization` header is the bare lowercase hex HMAC-SHA256 of the raw body keyed with the webhook's
secret; ids in `data` are strings; decide on `runStatusCode`, never on the status strings (they changed
in 2026); `errored` comes at once, `completed` only after the run's artifacts are ingested; a run ended
by its timeout or cancelled by a person (30) sends `completed` only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from restart.records import RunStatus, as_id, says_timed_out

# The repository_dispatch event the relay sends; workflows match it in `on: repository_dispatch: types:`.
DISPATCH_EVENT_TYPE: Final = "dbt-cloud-run-failed"
MAX_BODY_BYTES: Final = 1024 * 1024  # a delivery is a few KB; anything past this is refused unread

EventType = Literal["job.run.started", "job.run.completed", "job.run.errored"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
Action = Literal["dispatch", "ignore"]


def sign(secret: str, body: bytes) -> str:
    """The signature dbt Cloud sends for `body`: lowercase hex HMAC-SHA256 keyed with the secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, authorization: str | None) -> bool:
    """Whether `authorization` is the signature of the raw `body`, compared in constant time.

    Only the bare hex form is accepted (what dbt Cloud sends); surrounding white space is ignored and
    the hex compared lowercase. A missing header or an empty secret never verifies.
    """
    if not secret or not authorization:
        return False
    given = authorization.strip().lower().encode("ascii", "replace")
    return hmac.compare_digest(given, sign(secret, body).encode())


class Malformed(ValueError):
    """A signed body that is not a dbt Cloud job event (said in one line, no body quoted)."""


@dataclass(frozen=True)
class Event:
    """The fields of a dbt Cloud job webhook the relay uses; ids as the digit strings dbt sends."""

    event_id: str
    event_type: EventType
    account_id: str
    job_id: str
    job_name: str
    run_id: str
    environment_id: str
    project_id: str
    run_status_code: int
    run_status_message: str

    @property
    def timed_out(self) -> bool:
        """Whether the run was ended by its job's timeout (status 30 whose message says so)."""
        return self.run_status_code == RunStatus.CANCELLED and says_timed_out(self.run_status_message)


def _digits(value: Any, name: str) -> str:
    """An id as digits: dbt sends strings in `data` and a number for `accountId`; both are accepted."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Malformed(f"{name} is missing or not an id")
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise Malformed(f"{name} is not an id of digits")
    return text


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse(body: bytes) -> Event:
    """The event of a (verified) delivery; `Malformed` when it is not JSON or lacks what is decided on."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Malformed("the body is not JSON") from None
    if not isinstance(document, dict):
        raise Malformed("the body is not a JSON object")
    event_type = document.get("eventType")
    if event_type not in EVENT_TYPES:
        raise Malformed(f"eventType is not one of {', '.join(EVENT_TYPES)}")
    event_id = document.get("eventId")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
        raise Malformed("eventId is missing")
    data = document.get("data")
    if not isinstance(data, dict):
        raise Malformed("data is missing or not an object")
    found = data.get("runStatusCode")  # a number by the docs; a string of ASCII digits is read too
    code = as_id(found.strip() if isinstance(found, str) else found)
    if code is None:
        raise Malformed("data.runStatusCode is missing or not a number")
    return Event(
        event_id=event_id.strip(),
        event_type=event_type,
        account_id=_digits(document.get("accountId"), "accountId"),
        job_id=_digits(data.get("jobId"), "data.jobId"),
        job_name=_text(data.get("jobName")),
        run_id=_digits(data.get("runId"), "data.runId"),
        environment_id=_digits(data.get("environmentId"), "data.environmentId"),
        project_id=_digits(data.get("projectId"), "data.projectId"),
        run_status_code=code,
        run_status_message=_text(data.get("runStatusMessage")),
    )


@dataclass(frozen=True)
class Filters:
    """Which events the relay may act on; an empty set lets every id through."""

    job_ids: frozenset[str] = frozenset()
    environment_ids: frozenset[str] = frozenset()
    account_id: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What to do with an event, and why (logged as is)."""

    action: Action
    reason: str


def decide(event: Event, filters: Filters) -> Verdict:
    """Dispatch a restart for a run that failed (20) or timed out (30, "timed out"), once its artifacts
    are ingested (`completed`); ignore everything else, saying why."""
    if filters.account_id is not None and event.account_id != filters.account_id:
        return Verdict("ignore", f"account {event.account_id} is not the relay's account {filters.account_id}")
    if filters.job_ids and event.job_id not in filters.job_ids:
        return Verdict("ignore", f"job {event.job_id} is not in RELAY_JOB_IDS")
    if filters.environment_ids and event.environment_id not in filters.environment_ids:
        return Verdict("ignore", f"environment {event.environment_id} is not in RELAY_ENVIRONMENT_IDS")
    if event.event_type == "job.run.started":
        return Verdict("ignore", "a run started")
    if event.event_type == "job.run.errored":
        return Verdict("ignore", "errored: waiting for completed, sent once the run's artifacts are ingested")
    if event.run_status_code == RunStatus.ERROR:
        return Verdict("dispatch", "the run failed")
    if event.timed_out:
        return Verdict("dispatch", "the run timed out")
    if event.run_status_code == RunStatus.CANCELLED:
        return Verdict("ignore", "the run was cancelled, not by its timeout")
    if event.run_status_code == RunStatus.SUCCESS:
        return Verdict("ignore", "the run succeeded")
    return Verdict("ignore", f"run status {event.run_status_code} is not a finished run's")


def client_payload(event: Event) -> dict[str, str]:
    """The dispatch's `client_payload` (the contract with the action: strings, at most 10 keys)."""
    return {
        "account_id": event.account_id,
        "job_id": event.job_id,
        "run_id": event.run_id,
        "run_status_code": str(event.run_status_code),
        "environment_id": event.environment_id,
        "project_id": event.project_id,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "job_name": event.job_name[:1000],
    }


def dispatch_body(event: Event) -> dict[str, Any]:
    """The body of `POST /repos/{owner}/{repo}/dispatches` for `event`."""
    return {"event_type": DISPATCH_EVENT_TYPE, "client_payload": client_payload(event)}


class Memory:
    """Keys seen recently: bounded in size and in time, oldest forgotten first (one process's dedupe)."""

    def __init__(self, capacity: int = 10_000, ttl: float = 7 * 24 * 3600.0) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen and (len(self._seen) > self.capacity or next(iter(self._seen.values())) <= now - self.ttl):
            self._seen.popitem(last=False)

    def add(self, key: str, now: float) -> bool:
        """Remember `key`; False when it was already remembered (and not yet forgotten)."""
        self._expire(now)
        if key in self._seen:
            return False
        self._seen[key] = now
        self._expire(now)
        return True

    def forget(self, key: str) -> None:
        """Let `key` through again (a dispatch that could not be delivered)."""
        self._seen.pop(key, None)


# GitHub's answers to a dispatch, and what they most likely mean.
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
GITHUB_CAUSES: Final = {
    401: "GITHUB_TOKEN is not a valid token (expired or revoked?)",
    403: "GITHUB_TOKEN lacks permission: a fine-grained token needs Contents: write on the repository,"
    " a classic token the repo scope",
    404: "GITHUB_REPOSITORY is wrong or GITHUB_TOKEN cannot see it (404, not 403, is GitHub's answer)",
    422: "GitHub refused the dispatch body (event_type 1-100 characters, client_payload at most 10 keys"
    " and under 64 KB)",
}


@dataclass(frozen=True)
class Backoff:
    """How a dispatch is retried: doubling waits from `first`, capped at `cap`, all within `budget` seconds;
    a `Retry-After` GitHub sends is honoured (still within the budget)."""

    first: float = 1.0
    cap: float = 60.0
    budget: float = 900.0

    def delay(self, attempt: int, retry_after: float | None, elapsed: float) -> float | None:
        """Seconds to wait before attempt `attempt + 1` after `attempt` failed ones; None: give up."""
        wait = retry_after if retry_after is not None else min(self.first * 2 ** (attempt - 1), self.cap)
        wait = max(wait, 0.0)
        return None if elapsed + wait > self.budget else wait


def retryable(status: int | None, rate_limited: bool = False) -> bool:
    """Whether a dispatch answered `status` (None: no answer, a connection error) is worth retrying:
    429, 5xx and no answer; a 403 only when it is GitHub's (secondary) rate limit."""
    return status is None or status in RETRYABLE_STATUSES or status >= 500 or (status == 403 and rate_limited)
