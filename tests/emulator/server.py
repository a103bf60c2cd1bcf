"""The HTTP face of the emulator: dbt Cloud Administrative API v2 routes and a small control API."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .engine import Engine
from .faults import FaultList, HttpFault
from .model import ERROR, Job, Run
from .runtimes import runtime_for_version
from .threads import untraced

Query = dict[str, list[str]]
SUCCESS_MESSAGE = "Success!"
NOT_FOUND = "The requested resource was not found."
INVALID = "The request was invalid. Please double check the provided data and try again."
ORDERINGS = ("id", "-id", "created_at", "-created_at", "finished_at", "-finished_at")
MAX_LIMIT = 100
TEXT_FIELDS = (
    "cause",
    "git_sha",
    "git_branch",
    "schema_override",
    "dbt_version_override",
    "target_name_override",
)
INTEGER_FIELDS = (
    "azure_pull_request_id",
    "github_pull_request_id",
    "gitlab_merge_request_id",
    "non_native_pull_request_id",
    "threads_override",
    "timeout_seconds_override",
)
BOOLEAN_FIELDS = ("generate_docs_override",)


@dataclass(frozen=True)
class RecordedRequest:
    """An API request the emulator received (without its Authorization header)."""

    method: str
    path: str
    query: Query
    json: Any


class ApiError(Exception):
    """An error answered with dbt Cloud's envelope."""

    def __init__(self, code: int, user_message: str, data: Any = None) -> None:
        super().__init__(user_message)
        self.code = code
        self.user_message = user_message
        self.data = data


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: Query
    body: Any
    body_error: str | None
    authorization: str
    host: str = ""  # the Host header, without its port
    client: str = ""  # the address the request came from


@dataclass(frozen=True)
class Raw:
    """A response body sent as is (an artifact file)."""

    content: bytes
    content_type: str = "application/json"
    status: int = 200


# The real API answers a missing artifact with a bare 404, no JSON envelope (field notes).
MISSING_ARTIFACT = Raw(b"<h1>Not Found</h1>", "text/html", 404)


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint, with its `extra` block."""

    data: list[Any]
    extra: dict[str, Any]


Handler = Callable[..., Any]


def envelope(code: int, data: Any, message: str = SUCCESS_MESSAGE, **more: Any) -> dict[str, Any]:
    """dbt Cloud's response envelope."""
    status = {
        "code": code,
        "is_success": code < 400,
        "user_message": message,
        "developer_message": "" if code < 400 else None,
    }
    return {"status": status, "data": data, **more}


def last(query: Query, name: str) -> str | None:
    """The last value of a query parameter."""
    values = query.get(name)
    return values[-1] if values else None


def integer(query: Query, name: str, default: int | None = None) -> int | None:
    """An integer query parameter; 400 when it is not one."""
    value = last(query, name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, INVALID, {name: ["A valid integer is required."]}) from None


def listed(query: Query, name: str) -> list[str]:
    """A list parameter given as `a,b`, `["a","b"]`, `[1,2]` or repeated keys."""
    items: list[str] = []
    for value in query.get(name, []):
        text = value.strip()
        if text.startswith("["):
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError:
                decoded = text.strip("[]").split(",")
            items.extend(str(item) for item in (decoded if isinstance(decoded, list) else [decoded]))
        else:
            items.extend(text.split(","))
    return [item.strip().strip("'\"") for item in items if item.strip().strip("'\"")]


def includes(query: Query) -> set[str]:
    """The related objects asked for with include_related."""
    return set(listed(query, "include_related"))


def validate_trigger(body: Any) -> dict[str, Any]:
    """The fields of a TriggerRunRequest body; ApiError(400) listing every invalid field."""
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise ApiError(400, INVALID, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
    errors: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for name in (*TEXT_FIELDS, *INTEGER_FIELDS, *BOOLEAN_FIELDS, "steps_override"):
        if name not in body:
            if name == "cause":
                errors[name] = ["This field is required."]
            continue
        value = body[name]
        if value is None:
            errors[name] = ["This field may not be null."]
        elif name in TEXT_FIELDS:
            if not isinstance(value, str):
                errors[name] = ["Not a valid string."]
            elif not value.strip():
                errors[name] = ["This field may not be blank."]
            else:
                fields[name] = value
        elif name in INTEGER_FIELDS:
            if not isinstance(value, int) or isinstance(value, bool):
                errors[name] = ["A valid integer is required."]
            elif value < (1 if name == "threads_override" else 0):
                errors[name] = ["Ensure this value is greater than or equal to 1."]
            else:
                fields[name] = value
        elif name in BOOLEAN_FIELDS:
            if not isinstance(value, bool):
                errors[name] = ["Must be a valid boolean."]
            else:
                fields[name] = value
        else:
            problem = check_steps(value)
            if problem:
                errors[name] = problem
            else:
                fields[name] = list(value)
    version = fields.get("dbt_version_override")
    if version is not None and runtime_for_version(version) is None:
        errors["dbt_version_override"] = [f'"{version}" is not a valid choice.']
    if errors:
        raise ApiError(400, INVALID, errors)
    return fields


def check_steps(value: Any) -> Any:
    """Why a steps_override is invalid (DRF's shape), or None."""
    if not isinstance(value, list):
        return [f'Expected a list of items but got type "{type(value).__name__}".']
    if not value:
        return ["This list may not be empty."]
    problems: dict[str, list[str]] = {}
    for index, item in enumerate(value):
        if not isinstance(item, str):
            problems[str(index)] = ["Not a valid string."]
        elif not item.strip():
            problems[str(index)] = ["This field may not be blank."]
        elif not item.startswith("dbt "):
            problems[str(index)] = [f"Invalid dbt command: {item!r} must start with 'dbt '."]
        else:
            try:
                shlex.split(item)
            except ValueError as error:
                problems[str(index)] = [f"Invalid dbt command: {error}."]
    return problems or None


class Api:
    """Routes requests to the engine; holds the token and the request log."""

    def __init__(self, engine: Engine, token: str) -> None:
        self.engine = engine
        self.token = token
        self.requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self.http_faults = FaultList()
        # Field-notes switches. `cell_host`: the account lives on this host (a cell such as
        # ACCOUNT_PREFIX.us1.dbt.com); asked under any other host name, its token is "Invalid token.".
        # `allowed_ips`: the account's IP allowlist; a request from elsewhere gets 403 account_access_denied.
        self.cell_host: str | None = None
        self.allowed_ips: list[str] | None = None
        # (run id, step or None, artifact name) -> bytes to serve instead, or None for a 404
        self.artifact_overrides: dict[tuple[int, int | None, str], bytes | None] = {}
        # Runs whose artifacts are not ingested yet (webhooks.py: until `completed` is sent): 404s.
        self.ingesting: set[int] = set()
        prefix = r"/api/v2/accounts/(?P<account>\d+)"
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(prefix + r"/jobs/(?P<job>\d+)/"), self.get_job),
            ("POST", re.compile(prefix + r"/jobs/(?P<job>\d+)/run/"), self.trigger_run),
            ("POST", re.compile(prefix + r"/jobs/(?P<job>\d+)/rerun/"), self.rerun_job),
            ("GET", re.compile(prefix + r"/runs/"), self.list_runs),
            ("GET", re.compile(prefix + r"/runs/(?P<run>\d+)/"), self.get_run),
            ("GET", re.compile(prefix + r"/runs/(?P<run>\d+)/artifacts/"), self.list_artifacts),
            ("GET", re.compile(prefix + r"/runs/(?P<run>\d+)/artifacts/(?P<path>.+)"), self.get_artifact),
            ("POST", re.compile(prefix + r"/runs/(?P<run>\d+)/cancel/"), self.cancel_run),
            ("GET", re.compile(prefix + r"/runs/(?P<run>\d+)/retry/"), self.retry_details),
            ("POST", re.compile(r"/_emulator/jobs/?"), self.control_job),
            ("POST", re.compile(r"/_emulator/faults/?"), self.control_faults),
            ("POST", re.compile(r"/_emulator/step_delay/?"), self.control_delay),
            ("POST", re.compile(r"/_emulator/runs/?"), self.control_run),
            ("POST", re.compile(r"/_emulator/switches/?"), self.control_switches),
        ]

    def record(self, request: Request) -> None:
        """Remember an API request."""
        with self._requests_lock:
            self.requests.append(RecordedRequest(request.method, request.path, request.query, request.body))

    def dispatch(self, request: Request) -> tuple[int, dict[str, Any] | Raw]:
        """Answer one request: (HTTP status, envelope or raw body)."""
        if request.path.startswith("/api/"):
            self.record(request)
            scheme, _, token = request.authorization.strip().partition(" ")
            if scheme.lower() not in ("token", "bearer") or token.strip() != self.token:
                raise ApiError(401, "Invalid token.")
            if self.cell_host is not None and request.host.lower() != self.cell_host.lower():
                raise ApiError(401, "Invalid token.")  # another host does not know this account's tokens
            if self.allowed_ips is not None and request.client not in self.allowed_ips:
                raise ApiError(403, "Forbidden: Access denied", {"account_access_denied": True})
        allowed = False
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            allowed = True
            if method != request.method:
                continue
            params = match.groupdict()
            account = params.pop("account", None)
            if account is not None and int(account) != self.engine.account_id:
                raise ApiError(404, NOT_FOUND)
            if request.body_error is not None and request.method == "POST":
                raise ApiError(400, f"JSON parse error - {request.body_error}")
            result = handler(request, **params)
            if isinstance(result, Raw):
                return result.status, result
            if isinstance(result, Page):
                return 200, envelope(200, result.data, extra=result.extra)
            return 200, envelope(200, result)
        if allowed:
            raise ApiError(405, f'Method "{request.method}" not allowed.')
        raise ApiError(404, NOT_FOUND)

    def job(self, job_id: str) -> Job:
        """A job by id; 404 when unknown."""
        job = self.engine.jobs.get(int(job_id))
        if job is None:
            raise ApiError(404, NOT_FOUND)
        return job

    def run(self, run_id: str) -> Run:
        """A run by id; 404 when unknown."""
        run = self.engine.runs.get(int(run_id))
        if run is None:
            raise ApiError(404, NOT_FOUND)
        return run

    def get_job(self, request: Request, job: str) -> Any:
        """GET a job."""
        return self.engine.job_json(self.job(job))

    def trigger_run(self, request: Request, job: str) -> Any:
        """POST a run of a job."""
        found = self.job(job)
        fields = validate_trigger({} if request.body is None else request.body)
        run = self.engine.trigger(found, fields, "api")
        return self.engine.run_json(run, {"trigger", "job"})

    def rerun_job(self, request: Request, job: str) -> Any:
        """POST a rerun from failure of a job."""
        run = self.engine.rerun(self.job(job))
        return self.engine.run_json(run, {"trigger", "job"})

    def list_runs(self, request: Request) -> Page:
        """GET runs, filtered, ordered and paginated."""
        query = request.query
        filters: dict[str, Any] = {}
        for name in ("job_definition_id", "environment_id", "project_id", "status"):
            value = integer(query, name)
            if value is not None:
                filters[name] = value
        statuses = listed(query, "status__in")
        if statuses:
            try:
                filters["status__in"] = [int(status) for status in statuses]
            except ValueError:
                raise ApiError(400, INVALID, {"status__in": ["A valid integer is required."]}) from None
        order_by = last(query, "order_by") or "id"
        if order_by not in ORDERINGS:
            raise ApiError(400, INVALID, {"order_by": [f"Invalid ordering: {order_by}."]})
        limit = integer(query, "limit", MAX_LIMIT)
        offset = integer(query, "offset", 0)
        assert limit is not None and offset is not None
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, INVALID, {"limit": [f"Ensure this value is between 1 and {MAX_LIMIT}."]})
        if offset < 0:
            raise ApiError(400, INVALID, {"offset": ["Ensure this value is greater than or equal to 0."]})
        include = includes(query)
        field = order_by.lstrip("-")
        with self.engine.lock:
            runs = [run for run in self.engine.runs.values() if matches(run, filters)]
            runs.sort(key=lambda run: (getattr(run, field) is None, getattr(run, field) or 0, run.id))
            if order_by.startswith("-"):
                runs.reverse()
            page = runs[offset : offset + limit]
            data = [self.engine.run_json(run, include) for run in page]
        extra = {
            "filters": {"account_id": self.engine.account_id, **filters, "limit": limit, "offset": offset},
            "order_by": order_by,
            "pagination": {"count": len(page), "total_count": len(runs)},
        }
        return Page(data, extra)

    def get_run(self, request: Request, run: str) -> Any:
        """GET a run."""
        return self.engine.run_json(self.run(run), includes(request.query))

    def list_artifacts(self, request: Request, run: str) -> Any:
        """GET the artifact paths of a run."""
        found = self.run(run)
        with self.engine.lock:
            names = {name for step in found.steps for name in step.artifacts}
        return sorted(names)

    def get_artifact(self, request: Request, run: str, path: str) -> Raw:
        """GET one artifact file of a run's step (the last step that wrote it by default)."""
        found = self.run(run)
        name = unquote(path).strip("/")
        index = integer(request.query, "step")
        if found.id in self.ingesting:
            return MISSING_ARTIFACT
        for key in ((found.id, index, name), (found.id, None, name)):
            if key in self.artifact_overrides:
                content = self.artifact_overrides[key]
                return MISSING_ARTIFACT if content is None else Raw(content)
        with self.engine.lock:
            steps = [step for step in found.steps if index is None or step.index == index]
            files: list[Path] = [step.artifacts[name] for step in steps if name in step.artifacts]
        if not files:
            return MISSING_ARTIFACT
        return Raw(files[-1].read_bytes())

    def cancel_run(self, request: Request, run: str) -> Any:
        """POST a cancellation."""
        found = self.run(run)
        self.engine.cancel(found)
        return self.engine.run_json(found, set())

    def retry_details(self, request: Request, run: str) -> Any:
        """GET the failure details of a failed run."""
        found = self.run(run)
        with self.engine.lock:
            failed = found.failed_step()
            if found.status != ERROR or failed is None:
                raise ApiError(400, "The run cannot be retried: RETRY_NOT_FAILED_RUN")
            data = {
                "failed_step": failed.command or failed.name,
                "skipped_steps": found.skipped_commands(),
            }
        return data

    def control_job(self, request: Request) -> Any:
        """Emulator control: define a job from {steps, name, generate_docs, ...}."""
        body = request.body if isinstance(request.body, dict) else {}
        options = {key: value for key, value in body.items() if key != "steps"}
        try:
            job = self.engine.add_job(list(body.get("steps") or []), **options)
        except (TypeError, ValueError) as error:
            raise ApiError(400, str(error)) from None
        return {"job_id": job.id, "job": self.engine.job_json(job)}

    def control_faults(self, request: Request) -> Any:
        """Emulator control: set the faults of runs that start from now on."""
        body = request.body if isinstance(request.body, dict) else {}
        faults = body.get("faults") or []
        if not isinstance(faults, list) or not all(isinstance(name, str) for name in faults):
            raise ApiError(400, INVALID, {"faults": ["Expected a list of node names."]})
        with self.engine.lock:
            self.engine.faults = list(faults)
        return {"faults": faults}

    def control_delay(self, request: Request) -> Any:
        """Emulator control: set the pause before each command step."""
        body = request.body if isinstance(request.body, dict) else {}
        seconds = body.get("seconds", 0)
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ApiError(400, INVALID, {"seconds": ["Expected a number of seconds."]})
        self.engine.step_delay = float(seconds)
        return {"seconds": seconds}

    def control_switches(self, request: Request) -> Any:
        """Emulator control: the field-notes switches, from {cell_host, allowed_ips, skipped_step_status,
        timed_out_step_status} (each optional; null turns the first three off)."""
        body = request.body if isinstance(request.body, dict) else {}
        if "cell_host" in body:
            self.cell_host = body["cell_host"] or None
        if "allowed_ips" in body:
            self.allowed_ips = None if body["allowed_ips"] is None else [str(ip) for ip in body["allowed_ips"]]
        with self.engine.lock:
            if "skipped_step_status" in body:
                self.engine.skipped_step_status = body["skipped_step_status"]
            if "timed_out_step_status" in body:
                self.engine.timed_out_step_status = int(body["timed_out_step_status"])
            return {
                "cell_host": self.cell_host,
                "allowed_ips": self.allowed_ips,
                "skipped_step_status": self.engine.skipped_step_status,
                "timed_out_step_status": self.engine.timed_out_step_status,
            }

    def control_run(self, request: Request) -> Any:
        """Emulator control: trigger a run as the scheduler would, from {job_id, cause, steps_override}."""
        body = request.body if isinstance(request.body, dict) else {}
        job = self.job(str(body.get("job_id", 0)))
        fields = validate_trigger({"cause": "Scheduled", **{k: v for k, v in body.items() if k != "job_id"}})
        run = self.engine.trigger(job, fields, "scheduled")
        return {"run_id": run.id, "run": self.engine.run_json(run, {"trigger", "job"})}


def host_name(header: str) -> str:
    """The host of a Host header, without its port (`[::1]:80` -> `::1`)."""
    header = header.strip()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def matches(run: Run, filters: dict[str, Any]) -> bool:
    """Whether a run passes the runs list filters."""
    checks = {
        "job_definition_id": run.job.id,
        "environment_id": run.job.environment_id,
        "project_id": run.project_id,
        "status": run.status,
    }
    for name, value in filters.items():
        if name == "status__in":
            if run.status not in value:
                return False
        elif checks[name] != value:
            return False
    return True


class EmulatorServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to an Api."""

    daemon_threads = True

    def __init__(self, api: Api, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), RequestHandler)
        self.api = api


class RequestHandler(BaseHTTPRequestHandler):
    """Parses requests and writes JSON (or raw artifact) responses."""

    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def handle(self) -> None:
        """Serve one connection (in a thread of its own), untraced."""
        untraced()
        super().handle()

    def do_GET(self) -> None:
        """Answer a GET."""
        self.answer("GET")

    def do_POST(self) -> None:
        """Answer a POST."""
        self.answer("POST")

    def do_PUT(self) -> None:
        """Answer a PUT."""
        self.answer("PUT")

    def do_PATCH(self) -> None:
        """Answer a PATCH."""
        self.answer("PATCH")

    def do_DELETE(self) -> None:
        """Answer a DELETE."""
        self.answer("DELETE")

    def answer(self, method: str) -> None:
        """Parse, dispatch and respond."""
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        body_error = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                body_error = str(error)
        request = Request(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            body=body,
            body_error=body_error,
            authorization=self.headers.get("Authorization", ""),
            host=host_name(self.headers.get("Host", "")),
            client=str(self.client_address[0]),
        )
        api = self.server.api
        fault = api.http_faults.take(method, parts.path, "before", parts.query)
        if fault is not None:
            if parts.path.startswith("/api/"):
                api.record(request)
            self.inject(fault)
            return
        try:
            code, result = api.dispatch(request)
        except ApiError as error:
            code, result = error.code, envelope(error.code, error.data, error.user_message)
        except Exception as error:
            code, result = 500, envelope(500, None, f"Internal emulator error: {error!r}")
        fault = api.http_faults.take(method, parts.path, "after", parts.query)
        if fault is not None:
            self.inject(fault)
        elif isinstance(result, Raw):
            self.send(code, result.content, result.content_type)
        else:
            self.send(code, json.dumps(result).encode(), "application/json")

    def inject(self, fault: HttpFault) -> None:
        """Answer with an injected fault: a delay, then a dropped connection or an error answer."""
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send(fault.status, fault.body, fault.content_type, fault.headers)

    def send(self, code: int, content: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        """Write one response."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""
