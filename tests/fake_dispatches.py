"""A local stand-in for GitHub's `POST /repos/{owner}/{repo}/dispatches`, as the relay calls it.

It answers as GitHub does (field notes, "Webhooks and GitHub's repository_dispatch"): 204 for a valid
dispatch; 401 for a token it does not know; 404 for another repository (GitHub's answer to a repository
the token cannot see); 422 past GitHub's limits (event_type 1-100 characters, client_payload an object of
at most 10 keys under 64 KB). It records every dispatch it accepted, with the time it arrived, and can be
told to fail: the next answers scripted (429 with Retry-After, 5xx, 404, 422, a slow answer), or down
(503) until told otherwise. GitHub does not deduplicate; neither does this.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

# GitHub's limits, written here again (not imported from the relay) so the fake checks the relay.
MAX_EVENT_TYPE_CHARS = 100
MAX_PAYLOAD_KEYS = 10
MAX_PAYLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Dispatch:
    """A dispatch GitHub accepted: its event type, client_payload and arrival (time.monotonic())."""

    event_type: str
    client_payload: dict[str, Any]
    arrived: float


@dataclass(frozen=True)
class Failure:
    """One scripted answer: a status (None: answer normally after `delay`), headers, a pause first."""

    status: int | None
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class FakeDispatches:
    """Serves /repos/{repository}/dispatches on 127.0.0.1 for one repository and one token."""

    repository: str = "acme/analytics"
    token: str = "ghp-local-dispatch-token"
    dispatches: list[Dispatch] = field(default_factory=list)
    attempts: list[float] = field(default_factory=list)  # every POST's arrival, answered or not
    script: list[Failure] = field(default_factory=list)
    down: bool = False
    base_url: str = ""

    def __post_init__(self) -> None:
        self.lock = threading.Condition()

    def fail_next(self, *failures: Failure) -> None:
        """Answer the next POSTs with these, in order, then normally again."""
        with self.lock:
            self.script.extend(failures)

    def set_down(self, down: bool) -> None:
        """Answer every POST 503 while down."""
        with self.lock:
            self.down = down

    def wait_for(self, count: int, timeout: float) -> list[Dispatch]:
        """The dispatches once there are `count` (or after `timeout` seconds, however many there are)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.dispatches) < count and (left := deadline - time.monotonic()) > 0:
                self.lock.wait(left)
            return list(self.dispatches)

    def answer(self, path: str, authorization: str, raw: bytes) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON body or None) for one POST."""
        with self.lock:
            self.attempts.append(time.monotonic())
            self.lock.notify_all()
            scripted = self.script.pop(0) if self.script else None
            down = self.down
        if scripted is not None and scripted.delay:
            time.sleep(scripted.delay)
        if down:
            return 503, {}, {"message": "Service Unavailable"}
        if scripted is not None and scripted.status is not None:
            headers = {"Retry-After": scripted.retry_after} if scripted.retry_after is not None else {}
            return scripted.status, headers, {"message": f"scripted {scripted.status}"}
        if authorization not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {}, {"message": "Bad credentials"}
        if path != f"/repos/{self.repository}/dispatches":
            return 404, {}, {"message": "Not Found"}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {}, {"message": "Problems parsing JSON"}
        problem = _problem(body)
        if problem is not None:
            return 422, {}, {"message": problem}
        with self.lock:
            self.dispatches.append(Dispatch(body["event_type"], body.get("client_payload") or {}, time.monotonic()))
            self.lock.notify_all()
        return 204, {}, None

    def __enter__(self) -> FakeDispatches:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, body = fake.answer(self.path, self.headers.get("Authorization", ""), raw)
                content = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="fake-dispatches", daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


def _problem(body: Any) -> str | None:
    """GitHub's 422 reasons for a dispatch body (checked independently of the relay's own check)."""
    if not isinstance(body, dict):
        return "Invalid request: body is not an object"
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= MAX_EVENT_TYPE_CHARS:
        return "Invalid request: event_type"
    payload = body.get("client_payload", {})
    if not isinstance(payload, dict):
        return "Invalid request: client_payload is not an object"
    if len(payload) > MAX_PAYLOAD_KEYS:
        return f"No more than {MAX_PAYLOAD_KEYS} properties are allowed; {len(payload)} were supplied."
    if len(json.dumps(payload).encode()) >= MAX_PAYLOAD_BYTES:
        return "client_payload is too large"
    return None
