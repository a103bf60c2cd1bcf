"""dbt invoked in process for the exactness oracle, in this interpreter or in another dbt's venv.

A `Session` runs dbt commands with `dbtRunner`, parsing each project once and handing that manifest
to its later commands. It needs only the standard library and dbt-core, so that another dbt's venv
(`.venv-dbt-1.12`, `.venv-dbt-1.5`: tests/engines) can run it as a worker: `python session.py` reads
one JSON request per line on stdin and answers one JSON line on stdout (`RemoteSession` is the
client). The tests' own dbt (1.11) runs a `Session` directly.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FAULTS_ENV = "DBT_EMULATOR_FAULTS"
# The garbage collector's thresholds while dbt runs in process (Python's: 700, 10, 10). dbt allocates
# millions of objects a command, most of them freed by reference counting, in a test process that holds
# much more: collecting less often saves about 7% of dbt's time and changes nothing it does.
DBT_GC_THRESHOLDS = (50_000, 50, 100)


@contextlib.contextmanager
def faults_env(faults: list[str]) -> Iterator[None]:
    """Set DBT_EMULATOR_FAULTS for the duration of one in-process dbt invocation."""
    before = os.environ.get(FAULTS_ENV)
    os.environ[FAULTS_ENV] = ",".join(faults)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(FAULTS_ENV, None)
        else:
            os.environ[FAULTS_ENV] = before


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Pause the test run's coverage measurement (if any) while dbt runs in this process: it measures
    only `restart`, yet tracing dbt's calls doubles the time dbt takes."""
    try:
        import coverage
    except ImportError:  # another dbt's venv: nothing measures there
        yield
        return
    # Stopping one measurement resumes the one started before it, and a pytest-xdist worker runs two (both
    # pytest-cov's): stop them all, then start them again in the order they were started.
    stopped: list[coverage.Coverage] = []
    while (current := coverage.Coverage.current()) is not None:
        current.stop()
        stopped.append(current)
    try:
        yield
    finally:
        for measurement in reversed(stopped):
            measurement.start()


@contextlib.contextmanager
def roomy_gc() -> Iterator[None]:
    """Run with the garbage collector's `DBT_GC_THRESHOLDS`, then restore the thresholds it had."""
    before = gc.get_threshold()
    gc.set_threshold(*DBT_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _lines(result: Any) -> list[str] | None:
    """What `dbt ls` printed (its result), as strings; None for other commands."""
    if isinstance(result, list) and all(isinstance(line, str) for line in result):
        return list(result)
    return None


class Session:
    """dbt commands run in this process; `project` keys the parsed manifest each project reuses."""

    def __init__(self) -> None:
        from importlib.metadata import version

        self.parsed: dict[str, Any] = {}
        # dbt before 1.8 keeps one adapter per process, whose connection a --fail-fast step closes for good
        self.fresh_adapters = tuple(int(part) for part in version("dbt-core").split(".")[:2]) < (1, 8)

    def invoke(
        self, project: str, args: list[str], faults: list[str], reuse: bool, keep: bool = False
    ) -> dict[str, Any]:
        """Run dbt; `reuse` hands it the project's parsed manifest, `keep` stores the one it returns."""
        from dbt.cli.main import dbtRunner

        if self.fresh_adapters:  # and dbt-duckdb its DuckDB environment, which the cancel closed
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager
            from dbt.adapters.factory import reset_adapters

            DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]
            reset_adapters()  # type: ignore[no-untyped-call]
        manifest = self.parsed.get(project) if reuse else None
        runner = dbtRunner(manifest=manifest) if manifest is not None else dbtRunner()
        with faults_env(faults), contextlib.redirect_stdout(io.StringIO()), untraced(), roomy_gc():
            result = runner.invoke(args)
        if keep and result.success:
            self.parsed[project] = result.result
        exception = None if result.exception is None else repr(result.exception)
        return {"success": bool(result.success), "exception": exception, "lines": _lines(result.result)}

    def retry(self, project: str, args: list[str]) -> dict[str, Any]:
        """`dbt retry`, restoring the statuses dbt adds `warn` to under --warn-error."""
        from dbt.task import retry as retry_module

        before = set(retry_module.RETRYABLE_STATUSES)
        try:
            return self.invoke(project, ["retry", *args], [], reuse=True)
        finally:
            retry_module.RETRYABLE_STATUSES.clear()
            retry_module.RETRYABLE_STATUSES.update(before)

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request of the worker protocol."""
        if request["op"] == "retry":
            return self.retry(request["project"], request["args"])
        return self.invoke(request["project"], request["args"], request["faults"], request["reuse"], request["keep"])


class RemoteSession:
    """A `Session` in another interpreter (another dbt's venv), driven over its stdin and stdout."""

    def __init__(self, python: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
        env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        self.process = subprocess.Popen(
            [str(python), str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.lock = threading.Lock()

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        with self.lock:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the dbt worker {self.process.args!r} exited with {self.process.poll()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def invoke(
        self, project: str, args: list[str], faults: list[str], reuse: bool, keep: bool = False
    ) -> dict[str, Any]:
        request = {"op": "invoke", "project": project, "args": args, "faults": faults, "reuse": reuse, "keep": keep}
        return self.call(request)

    def retry(self, project: str, args: list[str]) -> dict[str, Any]:
        return self.call({"op": "retry", "project": project, "args": args})

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve() -> None:
    """The worker: answers on the original stdout; whatever dbt prints goes to stderr."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    session = Session()
    for line in sys.stdin:
        try:
            answer = session.call(json.loads(line))
        except Exception as exc:  # the client raises it where the test called
            answer = {"success": False, "exception": f"worker: {exc!r}", "lines": None}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve()
