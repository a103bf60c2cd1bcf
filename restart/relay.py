"""`python -m restart relay`: take dbt Cloud's signed webhooks and start the restart workflow on GitHub.

A thin shell around `restart.webhook` (which decides everything): an HTTP server on the standard
library answers each delivery at once, and one worker thread sends the `repository_dispatch` in the
background, retrying GitHub with back-off. dbt Cloud switches a webhook off after 5 consecutive failed
deliveries, so what happens on GitHub's side never shows in the answer to dbt.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Final, TextIO
from urllib.parse import urlsplit

import requests

from restart import __version__
from restart.records import as_id
from restart.redaction import redact
from restart.transport import retry_after_seconds
from restart.webhook import (
    DISPATCH_EVENT_TYPE,
    GITHUB_CAUSES,
    MAX_BODY_BYTES,
    Backoff,
    Event,
    Filters,
    Malformed,
    Memory,
    decide,
    dispatch_body,
    parse,
    retryable,
    verify,
)

PROG: Final = "dbt-cloud-restart relay"
DEFAULT_PORT: Final = 8080
DEFAULT_API_URL: Final = "https://api.github.com"
QUEUE_SIZE: Final = 1000
READ_TIMEOUT: Final = 10.0  # seconds a client may take to send its request (dbt waits 10 s for the answer)
GITHUB_TIMEOUT: Final = (5.0, 20.0)  # connect, read
DEFAULT_DRAIN: Final = 8.0  # seconds queued dispatches may still take on SIGTERM (inside a 10 s stop)


HELP: Final = f"""usage: dbt-cloud-restart relay   (or: python -m restart relay; the image: docker run IMAGE relay)

Serve dbt Cloud's webhooks on POST / and start the restart workflow with a repository_dispatch
({DISPATCH_EVENT_TYPE}) for each run that failed or timed out; GET /healthz answers 200.

settings (environment variables):
  DBT_CLOUD_WEBHOOK_SECRET  the webhook's secret (required)
  GITHUB_TOKEN              may dispatch to the repository: Contents write, or classic repo (required)
  GITHUB_REPOSITORY         owner/name of the repository with the restart workflow (required)
  GITHUB_API_URL            default {DEFAULT_API_URL}
  PORT                      default {DEFAULT_PORT}
  RELAY_JOB_IDS             comma-separated job ids to act on (default: all)
  RELAY_ENVIRONMENT_IDS     comma-separated environment ids to act on (default: all)
  DBT_CLOUD_ACCOUNT_ID      ignore events from other accounts (default: none ignored)
  RELAY_RETRY_SECONDS       how long a dispatch is retried while GitHub fails (default 900)
  RELAY_DRAIN_SECONDS       on SIGTERM, how long queued dispatches may still take (default {DEFAULT_DRAIN:g})

exit codes: 0 stopped by SIGTERM or SIGINT; 1 cannot listen; 2 a setting missing or malformed"""


class ConfigError(Exception):
    """A missing or malformed setting: one line, said before the relay listens."""


@dataclass(frozen=True)
class Config:
    """The relay's settings, from the environment (`read_config`)."""

    secret: str = field(repr=False)
    token: str = field(repr=False)
    repository: str
    api_url: str = DEFAULT_API_URL
    port: int = DEFAULT_PORT
    filters: Filters = field(default_factory=Filters)
    backoff: Backoff = field(default_factory=Backoff)
    drain_seconds: float = DEFAULT_DRAIN

    @property
    def dispatches_url(self) -> str:
        return f"{self.api_url}/repos/{self.repository}/dispatches"


def _ids(env: Mapping[str, str], name: str) -> frozenset[str]:
    items = [item.strip() for item in env.get(name, "").split(",") if item.strip()]
    bad = [item for item in items if as_id(item) is None]
    if bad:
        raise ConfigError(f"{name} must be comma-separated ids of digits, got {bad[0]!r}")
    return frozenset(items)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86_400:
        raise ConfigError(f"{name} must be a number of seconds between 0 and 86400, got {value!r}")
    return seconds


def read_config(env: Mapping[str, str]) -> Config:
    """The settings from the environment; `ConfigError` names the first missing or malformed one."""
    secret = env.get("DBT_CLOUD_WEBHOOK_SECRET", "").strip()
    if not secret:
        raise ConfigError(
            "DBT_CLOUD_WEBHOOK_SECRET is not set: give the secret dbt Cloud showed when the webhook was created"
        )
    token = env.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise ConfigError(
            "GITHUB_TOKEN is not set: a token that may dispatch to the repository"
            " (fine-grained: Contents write; classic: repo)"
        )
    repository = env.get("GITHUB_REPOSITORY", "").strip()
    owner, slash, name = repository.partition("/")
    if not (owner and slash and name) or "/" in name or any(c.isspace() for c in repository):
        raise ConfigError(f"GITHUB_REPOSITORY must be owner/name, got {repository!r}")
    api_url = (env.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/")
    if urlsplit(api_url).scheme not in ("http", "https") or not urlsplit(api_url).netloc:
        raise ConfigError(f"GITHUB_API_URL must be an http(s) URL, got {api_url!r}")
    port_text = env.get("PORT", "").strip() or str(DEFAULT_PORT)
    port = as_id(port_text)
    if port is None or port > 65535:
        raise ConfigError(f"PORT must be a port number, got {port_text!r}")
    account = env.get("DBT_CLOUD_ACCOUNT_ID", "").strip()
    if account and as_id(account) is None:
        raise ConfigError(f"DBT_CLOUD_ACCOUNT_ID must be digits, got {account!r}")
    filters = Filters(_ids(env, "RELAY_JOB_IDS"), _ids(env, "RELAY_ENVIRONMENT_IDS"), account or None)
    backoff = Backoff(budget=_seconds(env, "RELAY_RETRY_SECONDS", Backoff.budget))
    drain = _seconds(env, "RELAY_DRAIN_SECONDS", DEFAULT_DRAIN)
    return Config(secret, token, repository, api_url, port, filters, backoff, drain)


class Log:
    """One line per thing that happened, to stdout, never holding the secret or the token."""

    def __init__(self, config: Config, stream: TextIO | None = None) -> None:
        self._secrets = [config.secret, config.token]
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        for secret in self._secrets:
            line = redact(line, secret)
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line.replace("\n", " ") + "\n")
            stream.flush()


def describe(event: Event) -> str:
    """The event, for a log line: its id, type, job and run."""
    return (
        f"event {event.event_id} {event.event_type} account {event.account_id} job {event.job_id}"
        f" run {event.run_id} status {event.run_status_code}"
    )


@dataclass(frozen=True)
class Queued:
    """A dispatch waiting for the worker."""

    event: Event
    received: float


class Dispatcher:
    """One worker thread sending queued dispatches to GitHub, retrying 429, 5xx and connection errors."""

    def __init__(
        self,
        config: Config,
        log: Callable[[str], None],
        on_failure: Callable[[Event], None],
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.log = log
        self.on_failure = on_failure
        self.session = session or requests.Session()
        self.clock = clock
        self.queue: queue.Queue[Queued | None] = queue.Queue(QUEUE_SIZE)
        self.closing = threading.Event()
        self.drain_deadline = float("inf")
        self.thread = threading.Thread(target=self._work, name="relay-dispatcher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, event: Event) -> bool:
        """Queue a dispatch; False when the queue is full."""
        try:
            self.queue.put_nowait(Queued(event, self.clock()))
        except queue.Full:
            return False
        return True

    def close(self) -> None:
        """Finish the queued dispatches within the drain time, then stop the worker."""
        self.drain_deadline = self.clock() + self.config.drain_seconds
        self.closing.set()
        with contextlib.suppress(queue.Full):
            self.queue.put(None, timeout=self.config.drain_seconds)
        self.thread.join(timeout=self.config.drain_seconds + 1)
        if self.thread.is_alive():
            self.log(f"error: stopped with {self.queue.qsize()} dispatch(es) unsent: GitHub did not answer in time")

    def _work(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.clock() > self.drain_deadline:
                self.on_failure(item.event)
                self.log(f"{describe(item.event)}: not dispatched: the relay stopped before GitHub answered")
                continue
            self.send(item)

    def _post(self, body: dict[str, Any]) -> tuple[int | None, str, float | None, bool]:
        """(status or None, what went wrong, Retry-After seconds, rate-limited) of one attempt."""
        headers = {
            "Authorization": f"Bearer {self.config.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"dbt-cloud-restart-relay/{__version__}",
        }
        connect, read = GITHUB_TIMEOUT
        read = min(read, max(self.drain_deadline - self.clock(), 1.0))  # stopping: within the drain time
        try:
            response = self.session.post(
                self.config.dispatches_url, json=body, headers=headers, timeout=(connect, read)
            )
        except requests.RequestException as error:
            return None, f"no answer ({type(error).__name__})", None, False
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        limited = wait is not None or response.headers.get("X-RateLimit-Remaining") == "0"
        message = ""
        try:
            answer = response.json()
            message = str(answer.get("message", "")) if isinstance(answer, dict) else ""
        except ValueError:
            pass
        return response.status_code, message[:200], wait, limited

    def send(self, item: Queued) -> bool:
        """Dispatch one event, retrying within the back-off budget; logs one line with the outcome."""
        body = dispatch_body(item.event)
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            status, message, retry_after, limited = self._post(body)
            took = self.clock() - item.received
            if status is not None and 200 <= status < 300:
                self.log(
                    f"{describe(item.event)}: dispatched {DISPATCH_EVENT_TYPE} to {self.config.repository}"
                    f" ({status}, attempt {attempt}, {took:.2f} s after the delivery)"
                )
                return True
            said = f"GitHub answered {status}" if status is not None else f"GitHub gave {message}"
            if status is not None and message:
                said += f" ({message})"
            if not retryable(status, limited):
                return self._give_up(item, f"{said}: {GITHUB_CAUSES.get(status or 0, 'GitHub refused the dispatch')}")
            wait = self.config.backoff.delay(attempt, retry_after, self.clock() - started)
            if wait is None:
                spent = f"RELAY_RETRY_SECONDS ({self.config.backoff.budget:g} s) is spent"
                return self._give_up(item, f"{said}, still after {attempt} attempts: {spent}")
            self.log(f"{describe(item.event)}: {said}; retrying in {wait:.1f} s")
            until = self.clock() + wait
            self.closing.wait(wait)  # cut short by a shutdown, which sets the drain deadline
            if until > self.drain_deadline:
                return self._give_up(item, f"{said}; the relay is stopping before the next attempt")
            time.sleep(max(until - self.clock(), 0.0))

    def _give_up(self, item: Queued, why: str) -> bool:
        """Forget the event, then say so: once the line is out, a redelivery of it is taken again."""
        self.on_failure(item.event)
        self.log(f"{describe(item.event)}: error: not dispatched: {why}")
        return False


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to one request."""

    status: int
    body: dict[str, str]


class Relay:
    """Receives deliveries: verify, parse, deduplicate, decide, queue. No HTTP here, no GitHub call."""

    def __init__(self, config: Config, dispatcher: Dispatcher, log: Callable[[str], None]) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.log = log
        self.events = Memory()
        self.runs = Memory()
        self.lock = threading.Lock()
        self.clock = time.monotonic

    def forget(self, event: Event) -> None:
        """A dispatch that failed: a later delivery of the same event or run may try again."""
        with self.lock:
            self.events.forget(event.event_id)
            self.runs.forget(event.run_id)

    def receive(self, body: bytes, authorization: str | None, client: str) -> Answer:
        """The answer to one POST to `/` with this raw body."""
        if not verify(self.config.secret, body, authorization):
            why = "no Authorization header" if not authorization else "a signature that does not match the body"
            self.log(f"refused a delivery from {client}: {why} (check DBT_CLOUD_WEBHOOK_SECRET)")
            return Answer(401, {"error": "bad signature"})
        try:
            event = parse(body)
        except Malformed as error:
            self.log(f"refused a signed delivery from {client}: {error}")
            return Answer(400, {"error": str(error)})
        verdict = decide(event, self.config.filters)
        with self.lock:
            now = self.clock()
            if not self.events.add(event.event_id, now):
                self.log(f"{describe(event)}: ignored: a redelivery of an event already received")
                return Answer(200, {"result": "duplicate"})
            if verdict.action == "ignore":
                self.log(f"{describe(event)}: ignored: {verdict.reason}")
                return Answer(200, {"result": "ignored", "reason": verdict.reason})
            if not self.runs.add(event.run_id, now):
                self.log(f"{describe(event)}: ignored: run {event.run_id} was already dispatched")
                return Answer(200, {"result": "duplicate"})
            if not self.dispatcher.submit(event):
                self.events.forget(event.event_id)
                self.runs.forget(event.run_id)
                self.log(f"{describe(event)}: error: the dispatch queue is full ({QUEUE_SIZE}); dbt will redeliver")
                return Answer(503, {"error": "busy"})
        return Answer(202, {"result": "queued", "reason": verdict.reason})


class Handler(BaseHTTPRequestHandler):
    """HTTP for the relay: POST / (deliveries), GET /healthz; everything else 404 or 405."""

    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT
    server: RelayServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # the relay logs its own lines, without request lines or headers

    def _answer(self, answer: Answer, headers: Mapping[str, str] | None = None) -> None:
        raw = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _route(self) -> str:
        return urlsplit(self.path).path

    def do_GET(self) -> None:
        path = self._route()
        if path == "/healthz":
            self._answer(Answer(200, {"status": "ok", "queued": str(self.server.relay.dispatcher.queue.qsize())}))
        elif path == "/":
            self._answer(Answer(405, {"error": "POST only"}), {"Allow": "POST"})
        else:
            self._answer(Answer(404, {"error": "not found"}))

    def do_POST(self) -> None:
        if self._route() != "/":
            self.close_connection = True
            self._answer(Answer(404, {"error": "not found"}))
            return
        length_text = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length_text is None:
            self.close_connection = True
            self._answer(Answer(411, {"error": "Content-Length required"}))
            return
        length = as_id(length_text.strip())
        if length is None:
            self.close_connection = True
            self._answer(Answer(400, {"error": "bad Content-Length"}))
            return
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is left unread
            self.server.relay.log(f"refused a delivery from {self.client_address[0]}: {length} bytes is too large")
            self._answer(Answer(413, {"error": "body too large"}))
            return
        try:
            body = self.rfile.read(length)
        except OSError:  # the client stopped sending (the socket's READ_TIMEOUT): nothing to answer
            self.close_connection = True
            return
        if len(body) < length:
            self.close_connection = True
            return
        answer = self.server.relay.receive(body, self.headers.get("Authorization"), str(self.client_address[0]))
        self._answer(answer)

    def _not_allowed(self) -> None:
        self.close_connection = True
        path = self._route()
        if path in ("/", "/healthz"):
            allow = {"Allow": "GET" if path == "/healthz" else "POST"}
            self._answer(Answer(405, {"error": "method not allowed"}), allow)
        else:
            self._answer(Answer(404, {"error": "not found"}))

    do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _not_allowed


class RelayServer(ThreadingHTTPServer):
    """The HTTP server, holding the relay."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], relay: Relay) -> None:
        super().__init__(address, Handler)
        self.relay = relay


def main(argv: Sequence[str] = (), env: Mapping[str, str] | None = None) -> int:
    """Run the relay until SIGTERM or SIGINT; 2 on a missing or malformed setting, 1 when it cannot listen."""
    env = os.environ if env is None else env
    if list(argv) in (["-h"], ["--help"]):
        print(HELP)
        return 0
    if argv:
        sys.stderr.write(f"{PROG}: error: takes no arguments (settings come from the environment): {' '.join(argv)}\n")
        return 2
    try:
        config = read_config(env)
    except ConfigError as error:
        sys.stderr.write(f"{PROG}: error: {error}\n")
        return 2
    log = Log(config)
    relays: list[Relay] = []
    dispatcher = Dispatcher(config, log, lambda event: relays[0].forget(event))
    relay = Relay(config, dispatcher, log)
    relays.append(relay)
    try:
        server = RelayServer(("", config.port), relay)
    except OSError as error:
        sys.stderr.write(f"{PROG}: error: cannot listen on port {config.port}: {error.strerror or error}\n")
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, name="relay-shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    dispatcher.start()
    filters = config.filters
    jobs = ",".join(sorted(filters.job_ids)) or "any"
    environments = ",".join(sorted(filters.environment_ids)) or "any"
    scope = f"jobs {jobs}, environments {environments}, account {filters.account_id or 'any'}"
    log(
        f"{PROG} {__version__}: listening on port {server.server_address[1]}; failed runs of {scope}"
        f" -> {DISPATCH_EVENT_TYPE} on {config.repository} via {config.api_url}"
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        waiting = dispatcher.queue.qsize()
        log(f"stopping: {waiting} dispatch(es) queued, up to {config.drain_seconds:g} s to send them")
        dispatcher.close()
    log("stopped")
    return 0
