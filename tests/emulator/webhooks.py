"""dbt Cloud's outgoing webhooks, as the field notes describe them ("Webhooks and GitHub's repository_dispatch").

Subscriptions (URL, secret, event types, job ids) receive `job.run.started`, `job.run.errored` and
`job.run.completed` for the engine's runs: a signed JSON body (`Authorization`: the bare lowercase hex
HMAC-SHA256 of the raw body keyed with the secret), ids in `data` as strings, `accountId` a number.
A run that ends in error (20) sends `errored` at once; every finished run sends `completed` only after an
ingestion gap, during which its artifacts answer 404 (`ingestion_gap` seconds, the switch; 0 turns it
off; it applies once a subscription exists, so the emulator's other users see no gap). A cancelled or
timed-out run (30) sends `completed` only. A delivery not answered 2xx within 10 s is retried (five
times); after 5 consecutive failed attempts the subscription is switched off.
`time_factor` scales the 10 s and the retry interval for tests (the control flow is the same).
`duplicates` sends every event twice with the same `eventId` (a redelivery), or, set to "new-id", again
under a fresh `eventId`.

The watcher follows the engine through its condition variable (every state change notifies it), so the
engine needs no hook; `record_finished_run` adds a run that ends at once, without dbt, for tests about
webhooks alone.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import requests

from .engine import Engine, project_sha
from .model import CANCELLED, ERROR, QUEUED, SUCCESS, Run, Trigger, now
from .server import Api
from .threads import untraced

EventType = Literal["job.run.started", "job.run.completed", "job.run.errored"]
ALL_EVENTS: tuple[EventType, ...] = ("job.run.started", "job.run.completed", "job.run.errored")
Duplicates = Literal["off", "same-id", "new-id"]
DELIVERY_TIMEOUT = 10.0  # seconds dbt waits for an answer
RETRIES = 5
SWITCH_OFF_AFTER = 5  # consecutive failed attempts
EPOCH = "1970-01-01T00:00:00Z"  # what dbt writes for a time it does not have
# runStatus strings: 2026's (docs: "Error" became "Errored", "Cancelled" became "Canceled"), and the old ones.
STATUS_STRINGS = {
    "2026": {SUCCESS: "Success", ERROR: "Errored", CANCELLED: "Canceled", QUEUED: "Queued"},
    "legacy": {SUCCESS: "Success", ERROR: "Error", CANCELLED: "Cancelled", QUEUED: "Queued"},
}


def signature(secret: str, body: bytes) -> str:
    """What dbt Cloud puts in `Authorization`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def timestamp(moment: datetime | None) -> str:
    """dbt's webhook time format: `2026-01-31T19:28:15.742843678Z` (nanoseconds), or the epoch."""
    if moment is None:
        return EPOCH
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@dataclass
class Subscription:
    """A webhook as set up in dbt Cloud's account settings."""

    id: str
    name: str
    url: str
    secret: str
    event_types: tuple[EventType, ...]
    job_ids: frozenset[int] = frozenset()  # empty: every job
    active: bool = True
    consecutive_failures: int = 0


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: what was sent and how the receiver answered (status None: no answer in time)."""

    subscription: str
    event_id: str
    event_type: EventType
    run_id: int
    attempt: int
    status: int | None
    seconds: float
    sent_at: float  # time.monotonic()


@dataclass
class Webhooks:
    """The engine's webhook subscriptions and deliveries."""

    engine: Engine
    api: Api
    ingestion_gap: float = 1.0
    time_factor: float = 1.0
    retry_interval: float = 2.0  # seconds between attempts of an event (scaled by time_factor)
    duplicates: Duplicates = "off"
    status_strings: Literal["2026", "legacy"] = "2026"
    subscriptions: list[Subscription] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    sent: dict[tuple[int, EventType], float] = field(default_factory=dict)  # (run, event) -> first send
    finished: dict[int, float] = field(default_factory=dict)  # run -> when the watcher saw it end

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._seen: dict[int, int] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._ids = itertools.count(1)

    def subscribe(
        self,
        url: str,
        secret: str,
        event_types: tuple[EventType, ...] = ALL_EVENTS,
        job_ids: tuple[int, ...] = (),
        name: str = "restart relay",
    ) -> Subscription:
        """Add a webhook (and start following the engine's runs)."""
        subscription = Subscription(
            f"wsu_{secrets.token_hex(12)}", name, url, secret, tuple(event_types), frozenset(job_ids)
        )
        with self._lock:
            self.subscriptions.append(subscription)
        self.start()
        return subscription

    def start(self) -> None:
        """Follow the engine's runs from now on (runs already finished send nothing)."""
        if self._watcher is not None:
            return
        with self.engine.lock:
            self._seen = {run.id: run.status for run in self.engine.runs.values()}
        self._watcher = threading.Thread(target=self._watch, name="dbt-cloud-webhooks", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop following runs (deliveries under way finish on their own threads)."""
        self._stop.set()
        with self.engine.lock:
            self.engine.lock.notify_all()
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    def _watch(self) -> None:
        untraced()
        while not self._stop.is_set():
            with self.engine.lock:
                changed = [
                    (run, self._seen.get(run.id, QUEUED))
                    for run in self.engine.runs.values()
                    if self._seen.get(run.id, QUEUED) != run.status
                ]
                for run, _ in changed:
                    self._seen[run.id] = run.status
                if not changed:
                    self.engine.lock.wait(0.5)
                    continue
            for run, before in changed:
                self._changed(run, before)

    def _changed(self, run: Run, before: int) -> None:
        """Send what a run's change of status sends."""
        if before == QUEUED and run.started_at is not None:
            self._emit(run, "job.run.started")
        if not run.is_complete:
            return
        self.finished[run.id] = time.monotonic()
        if self.ingestion_gap > 0:  # before `errored` goes out: its receiver must find the artifacts missing
            self.api.ingesting.add(run.id)
        if run.status == ERROR:
            self._emit(run, "job.run.errored")
        if self.ingestion_gap > 0:
            timer = threading.Timer(self.ingestion_gap, self._ingested, (run,))
            timer.daemon = True
            timer.start()
        else:
            self._emit(run, "job.run.completed")

    def _ingested(self, run: Run) -> None:
        self.api.ingesting.discard(run.id)
        self._emit(run, "job.run.completed")

    def body(self, run: Run, event_type: EventType, subscription: Subscription, event_id: str) -> bytes:
        """A delivery's body, with the documented fields."""
        with self.engine.lock:
            environment_id = run.job.environment_id
            strings = STATUS_STRINGS[self.status_strings]
            status = run.status if event_type != "job.run.started" else 3
            data = {
                "jobId": str(run.job.id),
                "jobName": run.job.name,
                "runId": str(run.id),
                "environmentId": str(environment_id),
                "environmentName": f"Environment {environment_id}",
                "dbtVersion": run.dbt_version,
                "projectName": "Shop",
                "projectId": str(run.project_id),
                "runStatus": strings.get(status, "Running"),
                "runStatusCode": status,
                "runStatusMessage": run.status_message or "",
                "runReason": run.trigger.cause,
                "runStartedAt": timestamp(run.started_at),
            }
            if event_type == "job.run.completed":
                data["runFinishedAt"] = timestamp(run.finished_at)
            elif event_type == "job.run.errored":
                data["runErroredAt"] = timestamp(run.finished_at)
        document = {
            "accountId": run.account_id,
            "webhookId": subscription.id,
            "eventId": event_id,
            "timestamp": timestamp(now()),
            "eventType": event_type,
            "webhookName": subscription.name,
            "data": data,
        }
        return json.dumps(document).encode()

    def _emit(self, run: Run, event_type: EventType) -> None:
        with self._lock:
            self.sent.setdefault((run.id, event_type), time.monotonic())
            targets = [
                s
                for s in self.subscriptions
                if event_type in s.event_types and (not s.job_ids or run.job.id in s.job_ids)
            ]
        for subscription in targets:
            event_id = f"wev_{secrets.token_hex(13)}"
            copies = [event_id] if self.duplicates == "off" else [event_id, event_id]
            if self.duplicates == "new-id":
                copies[1] = f"wev_{secrets.token_hex(13)}"
            for copy in copies:
                body = self.body(run, event_type, subscription, copy)
                thread = threading.Thread(
                    target=self._deliver, args=(subscription, run.id, event_type, copy, body), daemon=True
                )
                thread.start()

    def _deliver(
        self, subscription: Subscription, run_id: int, event_type: EventType, event_id: str, body: bytes
    ) -> None:
        """Send one event, retrying while it is not answered 2xx in time; switch the webhook off after 5
        consecutive failed attempts."""
        untraced()
        headers = {"Content-Type": "application/json", "Authorization": signature(subscription.secret, body)}
        timeout = DELIVERY_TIMEOUT * self.time_factor
        for attempt in range(1, RETRIES + 2):
            with self._lock:
                if not subscription.active:
                    return
            started = time.monotonic()
            status: int | None
            try:
                status = requests.post(subscription.url, data=body, headers=headers, timeout=timeout).status_code
            except requests.RequestException:
                status = None
            seconds = time.monotonic() - started
            ok = status is not None and 200 <= status < 300 and seconds <= timeout
            with self._lock:
                self.attempts.append(
                    Attempt(subscription.id, event_id, event_type, run_id, attempt, status, seconds, started)
                )
                subscription.consecutive_failures = 0 if ok else subscription.consecutive_failures + 1
                if subscription.consecutive_failures >= SWITCH_OFF_AFTER:
                    subscription.active = False
                self._lock.notify_all()
            if ok:
                return
            time.sleep(self.retry_interval * self.time_factor)

    def wait_for(self, count: int, timeout: float) -> list[Attempt]:
        """The delivery attempts once there are at least `count` (or after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.attempts) < count and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            return list(self.attempts)


def record_finished_run(engine: Engine, job_id: int, status: int, message: str | None = None) -> int:
    """Record a run of the job that ended at once with `status` and `message`, without running dbt (for
    tests about webhooks alone); its events are sent as any run's. Returns its id."""
    with engine.lock:
        job = engine.jobs[job_id]
        run_id = next(engine._run_ids)
        moment = now()
        run = Run(
            id=run_id,
            account_id=engine.account_id,
            project_id=engine.project_id,
            job=job,
            trigger=Trigger(
                id=next(engine._trigger_ids), job_definition_id=job.id, cause="Scheduled", cause_category="scheduled"
            ),
            commands=list(job.execute_steps),
            generate_docs=False,
            timeout_seconds=job.timeout_seconds,
            git_branch="main",
            git_sha=project_sha(),
            dbt_version="1.11.0",
            href=f"{engine.base_url}/deploy/{engine.account_id}/projects/{engine.project_id}/runs/{run_id}/",
            status=status,
            status_message=message,
            started_at=moment,
            dequeued_at=moment,
            finished_at=moment,
        )
        engine.runs[run_id] = run
        engine.lock.notify_all()
    return run_id
