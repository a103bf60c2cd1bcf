"""LocalDbtCloud: the emulator as a context manager for tests and the demo."""

from __future__ import annotations

import json
import shutil
import ssl
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .engine import PROJECT_DIR, Engine
from .faults import HttpFault
from .fusion import FusionMode
from .model import ERROR
from .server import Api, EmulatorServer, RecordedRequest, validate_trigger
from .threads import untraced
from .webhooks import Webhooks

INCLUDE_ALL = {"trigger", "job", "run_steps"}


class LocalDbtCloud:
    """A local dbt Cloud: the v2 API on 127.0.0.1, running real dbt-core on DuckDB.

    `with LocalDbtCloud() as cloud:` starts the server; leaving the block stops it, cancels unfinished
    runs (killing their dbt processes) and removes the scratch directory if the emulator made it.
    """

    def __init__(
        self,
        root: Path | None = None,
        token: str = "local-token",
        account_id: int = 1,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        tls: tuple[Path, Path] | None = None,
        first_run_id: int = 1001,
    ) -> None:
        self.token = token
        self.account_id = account_id
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="dbt-cloud-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.engine = Engine(self.root, account_id, first_run_id=first_run_id)
        self.api = Api(self.engine, token)
        self.webhooks = Webhooks(self.engine, self.api)  # dbt Cloud's outgoing webhooks (subscribe to start)
        self._port = port
        self._host = host
        self._tls = tls  # (certificate chain, private key): serve HTTPS
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def __enter__(self) -> LocalDbtCloud:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Bind the server and serve in a background thread."""
        self._server = EmulatorServer(self.api, host=self._host, port=self._port)
        host, port = self._server.server_address[:2]
        scheme = "http"
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self._tls[0]), str(self._tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.base_url = f"{scheme}://{host!s}:{port}"
        self.engine.base_url = self.base_url
        self._thread = threading.Thread(target=self._serve, name="dbt-cloud-http", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        untraced()
        assert self._server is not None
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving, cancel unfinished runs and clean up."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.webhooks.stop()
        self.engine.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every API request received so far."""
        return self.api.requests

    def add_job(self, steps: list[str], **options: Any) -> int:
        """Define a job (options as `Engine.add_job`: name, environment_id, generate_docs, ...); its id."""
        return self.engine.add_job(steps, **options).id

    def use_fusion(self, environment_id: int, *, reused: tuple[str, ...] = (), drop_errors: bool = False) -> None:
        """Run an environment in Fusion mode: its artifacts rewritten as dbt v2 writes them (see `fusion.py`)."""
        with self.engine.lock:
            self.engine.fusion[environment_id] = FusionMode(frozenset(reused), drop_errors)

    def set_environment(
        self, environment_id: int, *, engine: str | None = None, project_files: dict[str, str] | None = None
    ) -> None:
        """Switch an environment's dbt engine (`dbt-1.11`, `dbt-1.12`: tests/emulator/runtimes.py), or lay
        `project_files` (relative path -> text) over the dbt project its runs clone."""
        self.engine.set_environment(environment_id, engine=engine, project_files=project_files)

    def set_faults(self, names: list[str]) -> None:
        """Set DBT_EMULATOR_FAULTS for the runs that start after this call."""
        with self.engine.lock:
            self.engine.faults = list(names)

    def hide_files(self, paths: list[str]) -> None:
        """Leave these project paths (files or folders, relative to the dbt project) out of the runs that
        start after this call, as if deleted from the repository; `[]` brings them back."""
        for path in paths:
            if not (PROJECT_DIR / path).exists():
                raise ValueError(f"{path!r} is not a path of the emulator's dbt project")
        with self.engine.lock:
            self.engine.hidden = list(paths)

    def add_http_fault(self, method: str, path: str, **options: Any) -> HttpFault:
        """Inject an HTTP fault (see `faults.HttpFault`) into matching API requests."""
        return self.api.http_faults.add(HttpFault(method, path, **options))

    def rate_limit(self, method: str, path: str, *, times: int = 1, retry_after: float = 300) -> HttpFault:
        """Answer matching requests 429 as dbt Cloud's per-account limiter does, asking to wait `retry_after`."""
        body = json.dumps(
            {
                "status": {
                    "code": 429,
                    "is_success": False,
                    "user_message": "Too many requests.",
                    "developer_message": None,
                },
                "data": None,
            }
        ).encode()
        headers = {"Retry-After": f"{retry_after:g}"}
        return self.add_http_fault(method, path, status=429, times=times, body=body, headers=headers)

    def clear_http_faults(self) -> None:
        self.api.http_faults.clear()

    def override_artifact(self, run_id: int, step: int | None, name: str, content: bytes | None) -> None:
        """Serve `content` (None: a 404) for that artifact instead of what dbt wrote."""
        self.api.artifact_overrides[(run_id, step, name)] = content

    def failing_run(
        self,
        steps: list[str],
        faults: list[str],
        *,
        environment_id: int,
        keep_faults: bool = False,
        job: dict[str, Any] | None = None,
        **trigger: Any,
    ) -> tuple[int, int]:
        """(job id, run id) of a new job whose first run failed on `faults`; then the faults are
        cleared (the fix) unless `keep_faults`. `job` holds more `add_job` options, `trigger` the
        run's trigger (`category`, `steps_override`, `schema_override`, ...: see `trigger`)."""
        job_id = self.add_job(steps, environment_id=environment_id, **(job or {}))
        self.set_faults(faults)
        run_id = self.trigger(job_id, **trigger)
        status = self.wait(run_id)["status"]
        if not keep_faults:
            self.set_faults([])
        if status != ERROR:
            raise AssertionError(f"the injected faults {faults} did not fail run {run_id} (status {status})")
        return job_id, run_id

    def set_clock(self, moment: datetime | None) -> None:
        """Set the time dbt sees at the start of the commands of runs that start after this call (None:
        the real time); it decides the batches of a microbatch model run without event-time flags."""
        with self.engine.lock:
            self.engine.clock = moment

    def set_step_delay(self, seconds: float) -> None:
        """Pause before each command step (a cancel or a timeout cuts the pause short)."""
        self.engine.step_delay = seconds

    def trigger(
        self,
        job_id: int,
        cause: str = "Scheduled",
        steps_override: list[str] | None = None,
        *,
        category: str = "scheduled",
        **context: Any,
    ) -> int:
        """Queue a run as the scheduler would (not recorded as a request), or as `category` says (`ci` for
        a pull request's run, `api`, ...) with trigger fields in `context` (`schema_override=...`); its id."""
        job = self.engine.jobs[job_id]
        body: dict[str, Any] = {"cause": cause, **context}
        if steps_override is not None:
            body["steps_override"] = steps_override
        return self.engine.trigger(job, validate_trigger(body), category).id

    def commit(self, branch: str, files: dict[str, str | None]) -> str:
        """Commit `files` (relative path -> text, None: deleted) on a branch of the project's repository (a
        new branch starts from main); returns the commit's sha. Runs on that branch or commit build it."""
        return self.engine.repository.commit(branch, files)

    def wait(self, run_id: int, timeout: float = 300) -> dict[str, Any]:
        """Block until the run is complete; returns it with its run steps, trigger and job."""
        run = self.engine.runs[run_id]
        self.engine.wait(run, timeout)
        return self.engine.run_json(run, INCLUDE_ALL)

    def run(self, run_id: int) -> dict[str, Any]:
        """The run as it is now, with its run steps, trigger and job."""
        return self.engine.run_json(self.engine.runs[run_id], INCLUDE_ALL)

    def stamps(self, run_id: int) -> set[str]:
        """The `metadata.dbt_version` of every JSON artifact the run's steps wrote."""
        with self.engine.lock:
            paths = [p for s in self.engine.runs[run_id].steps for p in s.artifacts.values() if p.suffix == ".json"]
        found = set()
        for path in paths:
            metadata = json.loads(path.read_bytes()).get("metadata") or {}
            if "dbt_version" in metadata:
                found.add(str(metadata["dbt_version"]))
        return found

    def artifact(self, run_id: int, step: int, name: str = "run_results.json") -> dict[str, Any] | None:
        """A JSON artifact of one step of a run, or None when that step did not write it."""
        with self.engine.lock:
            steps = [s for s in self.engine.runs[run_id].steps if s.index == step]
            path = steps[0].artifacts.get(name) if steps else None
        if path is None:
            return None
        result: dict[str, Any] = json.loads(path.read_bytes())
        return result

    def executed_nodes(self, run_id: int) -> dict[int, dict[str, str]]:
        """Per step index, {unique_id: status} from that step's run_results.json."""
        with self.engine.lock:
            indexes = [step.index for step in self.engine.runs[run_id].steps]
        nodes: dict[int, dict[str, str]] = {}
        for index in indexes:
            results = self.artifact(run_id, index)
            if results is not None:
                nodes[index] = {item["unique_id"]: item["status"] for item in results["results"]}
        return nodes

    def query(self, sql: str, environment_id: int = 1) -> list[tuple[Any, ...]]:
        """Read an environment's DuckDB file, waiting for the run it executes (if any) to finish."""
        import duckdb  # imported here: only tests that query need it

        path = self.engine.database(environment_id)
        with self.engine.lock:
            executor = self.engine.executors.get(environment_id)
        if executor is None:
            return _read(duckdb, path, sql)
        with executor.busy:
            return _read(duckdb, path, sql)


def _read(duckdb: Any, path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run a read-only query on a DuckDB file."""
    if not path.is_file():
        raise FileNotFoundError(f"no DuckDB file yet at {path}: no run has built anything")
    with duckdb.connect(str(path), read_only=True) as connection:
        rows: list[tuple[Any, ...]] = connection.sql(sql).fetchall()
        return rows
