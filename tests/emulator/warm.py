"""A warm dbt: one long-lived process per dbt venv imports dbt once, then forks a child per dbt command.

Starting dbt costs seconds, nearly all of it importing dbt-core and its adapter; the emulator runs a
dbt process for every step of every run. The worker (`python warm.py SOCKET LIFELINE [PROJECT]`, in the
venv of the dbt it serves) imports dbt, rehearses the steps' commands once on a scratch copy of PROJECT
(`rehearse`: a dbt command's first run in a process costs about twice its later ones), and waits; for
each command it forks a child that becomes a process of its own (its own process group, its own working
directory, environment, argv, stdin from /dev/null, stdout and stderr to the step's log), runs dbt's
click entry point as `dbt` would, and exits with dbt's exit code. Each step is as isolated as a fresh
`dbt` process, or as dbt's programmatic runner's second command in one process: it shares the imported
modules and the caches dbt fills by content (compiled templates, schemas), never a flag, a connection
or a file. The worker runs no thread when it forks (checked, native threads included) and reaps its
children. Emulators talk to it over connections to its Unix socket, one JSON object a line:

    <- {"ready": true, "parse": "..."}    imported and rehearsed: it takes requests (`parse`: below)
    -> {"id": 1, "argv": [...], "cwd": "...", "env": {...}, "log": "..."}
    <- {"id": 1, "pid": 4242}             the child runs (or {"id": 1, "error": "..."})
    <- {"pid": 4242, "code": 1}           it ended: its exit code, or -N when killed by signal N

It serves until LIFELINE (`-`: its stdin, else a FIFO) reaches its end, then exits once its children
have. An emulator's worker is its own (its stdin the lifeline), or, under `share` (a pytest run's first
process, tests/conftest.py), one per dbt venv for every process of the run, which rehearses once.

`WarmProcess` is the emulator's handle on a child, shaped like `subprocess.Popen` where the engine uses
it (`pid`, `wait`, `poll`): the engine cancels a step by signalling the child's process group. The
client half imports only the standard library at the top, so that this file also runs as the worker
in another dbt's venv.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

CLOCK_ENV = "DBT_EMULATOR_NOW"  # as in dbt_at.py: run dbt as if started at this time
WARM_ENV = "DBT_EMULATOR_WARM"  # "0": start every dbt step as a plain subprocess instead
SHARED_ENV = "DBT_EMULATOR_WARM_SHARED"  # the folder of the workers every process of a pytest run shares
LIFELINE = "lifeline"  # the FIFO in that folder: the workers there exit once nothing holds it open
# What the worker imports before it forks: dbt's entry point, the DuckDB adapter, the tasks the emulated steps run.
PRELOAD = (
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "dbt.adapters.duckdb.impl",
    "dbt.parser.manifest",
    "dbt.task.build",
    "dbt.task.deps",
    "dbt.task.docs.generate",
    "dbt.task.freshness",
    "dbt.task.list",
    "dbt.task.retry",
    "dbt.task.run_operation",
)

# What a copy of the dbt project leaves out, as a fresh clone would: build outputs, installed packages,
# logs and DuckDB files (the emulator's clone step and the rehearsal's scratch copy).
COPY_IGNORE = shutil.ignore_patterns("target", "dbt_packages", "logs", "package-lock.yml", "*.duckdb*")

# What the worker runs once before it forks (`rehearse`): the commands the emulated steps run most.
# A forked child installs the packages and parses first: parsing runs dbt's static parser, whose Rust
# thread pool (dbt_extractor's rayon workers) would outlive the command, and a child forked from a
# process with those threads hangs on its first parse. The worker's own commands then reuse that parse,
# and leave unit tests out: running one parses its fixtures with the static parser too.
REHEARSAL_PARSE: tuple[tuple[str, ...], ...] = (("deps",), ("parse",))
REHEARSAL: tuple[tuple[str, ...], ...] = (
    ("build", "--exclude-resource-type", "unit_test"),
    ("retry",),
    ("ls",),
    ("source", "freshness"),
    ("docs", "generate"),
)
QUIET = ("--log-level", "none", "--log-level-file", "none")
# The classes a full parse validates YAML and configs against: each builds its JSON schema once per
# process (about a second together), which the rehearsal's commands, reusing the parse, never do.
# Names a dbt version lacks are passed over.
SCHEMAS = (
    "dbt.adapters.duckdb.credentials.DuckDBCredentials",
    "dbt.artifacts.resources.v1.components.Contract",
    "dbt.artifacts.resources.v1.config.TestConfig",
    "dbt.artifacts.resources.v1.model.ModelConfig",
    "dbt.artifacts.resources.v1.seed.SeedConfig",
    "dbt.artifacts.resources.v1.snapshot.SnapshotConfig",
    "dbt.artifacts.resources.v1.source_definition.SourceConfig",
    "dbt.artifacts.resources.v1.unit_test_definition.UnitTestConfig",
    "dbt.contracts.graph.nodes.GenericTestNode",
    "dbt.contracts.graph.nodes.ModelNode",
    "dbt.contracts.graph.nodes.SeedNode",
    "dbt.contracts.graph.nodes.SingularTestNode",
    "dbt.contracts.graph.nodes.SnapshotNode",
    "dbt.contracts.graph.unparsed.UnparsedModelUpdate",
    "dbt.contracts.graph.unparsed.UnparsedNodeUpdate",
    "dbt.contracts.graph.unparsed.UnparsedSourceDefinition",
    "dbt.contracts.graph.unparsed.UnparsedUnitTest",
    "dbt.contracts.project.Configuration",
    "dbt.contracts.project.PackageConfig",
    "dbt.contracts.project.ProfileConfig",
    "dbt.contracts.project.Project",
    "dbt.contracts.project.ProjectFlags",
    "dbt.contracts.selection.SelectorFile",
)


class DbtProcess(Protocol):
    """A running dbt step as the engine waits for and cancels it: a `subprocess.Popen` or a `WarmProcess`."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


# The worker: runs in the dbt venv it serves.


def _child(request: Mapping[str, Any], inherited: Sequence[int]) -> None:
    """In the forked child: become the step's own process (none of the worker's `inherited` descriptors)
    and run dbt; never returns."""
    code = 70  # EX_SOFTWARE: dbt was not reached
    try:
        os.setpgid(0, 0)  # its own process group (the worker sets it too: whichever runs first)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for fd in {log, null, *inherited} - {0, 1, 2}:  # 0: the lifeline of a worker of an emulator's own
            with contextlib.suppress(OSError):
                os.close(fd)
        if CLOCK_ENV in os.environ:
            _set_clock()
        from dbt.cli.main import cli

        sys.argv = ["dbt", *request["argv"]]
        try:
            cli.main(args=request["argv"], prog_name="dbt")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException as error:  # whatever dbt raised, the exit code says it
        import traceback

        traceback.print_exc()
        code = 1 if not isinstance(error, KeyboardInterrupt) else 130
    finally:
        import atexit as child_atexit
        import logging

        child_atexit._run_exitfuncs()
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the log may be gone; the code still goes out
                stream.flush()
        os._exit(code)


def _set_clock() -> None:
    """dbt_at.py's clock for this invocation: dbt's invocation clock starts at DBT_EMULATOR_NOW."""
    import importlib.util

    import dbt.cli.requires as requires

    spec = importlib.util.spec_from_file_location("dbt_at", Path(__file__).with_name("dbt_at.py"))
    assert spec is not None and spec.loader is not None
    dbt_at = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dbt_at)
    requires.reset_invocation_id = dbt_at._reset_invocation_id  # type: ignore[attr-defined]


def layout(root: Path) -> tuple[Path, Path]:
    """Where a workspace's dbt project and its DuckDB file sit under `root` (an emulated environment's
    folder, or the rehearsal's scratch folder): the same relative path from one to the other everywhere,
    so that their profiles (`yaml_profile`) are the same text and a parse made in one is valid in the other."""
    return root / "workspace" / "project", root / "shop.duckdb"


def rehearse(project: Path, scratch: Path) -> Path | None:
    """Run the emulated steps' dbt commands once in this worker, on a copy of `project` in `scratch` with
    a scratch DuckDB file, before any child is forked; return the copy's parse (partial_parse.msgpack),
    None if it failed. `scratch` must outlive the worker's children: the parse points at the copy's files.

    A dbt process spends seconds on its first command beyond importing dbt: modules imported on first
    use, artifact classes compiled on first use (mashumaro), Jinja templates compiled and cached by
    their text. The children forked afterwards start with all of that done, as dbt's own programmatic
    runner does on its second invocation in one process. Nothing of the rehearsal's database or flags
    reaches a child: every dbt invocation resets dbt's flags, adapters and loggers, and the DuckDB
    database is freed here. (The parse reaches a child only as a file the emulator hands on: `first_parse`.)"""
    import gc
    import importlib

    from dbt.cli.main import dbtRunner

    saved, cwd = dict(os.environ), os.getcwd()
    copy, database = layout(scratch)
    template = scratch / "partial_parse.msgpack"
    try:
        shutil.copytree(project, copy, ignore=COPY_IGNORE)
        (scratch / "profiles.yml").write_text(yaml_profile(copy, database), encoding="utf-8")
        os.chdir(copy)  # the profile names the database relative to the project, as dbt runs in it
        os.environ.update(
            DBT_PROFILES_DIR=str(scratch),
            DBT_PROJECT_DIR=str(copy),
            DBT_TARGET_PATH=str(scratch / "target"),
            DBT_LOG_PATH=str(scratch / "logs"),
            DBT_EMULATOR_FAULTS="stg_orders",  # a failure, so that retry and the error paths are rehearsed too
        )
        parser = os.fork()
        if parser == 0:
            code = 0
            try:
                for command in REHEARSAL_PARSE:
                    code = code or int(not dbtRunner().invoke([*command, *QUIET]).success)
                if code == 0:
                    shutil.copy2(scratch / "target" / template.name, template)
            finally:
                atexit._run_exitfuncs()  # as a step's child does: multiprocessing unlinks dbt's semaphores
                os._exit(code)
        if os.waitstatus_to_exitcode(os.waitpid(parser, 0)[1]) == 0:
            for command in REHEARSAL:
                dbtRunner().invoke([*command, *QUIET])
        for name in SCHEMAS:
            module, _, attribute = name.rpartition(".")
            with contextlib.suppress(ImportError, AttributeError):
                getattr(importlib.import_module(module), attribute).json_schema()
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
        with contextlib.suppress(ImportError):  # dbt-duckdb keeps the last database open between commands
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager

            DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]
        gc.collect()  # the database, unreferenced, is closed, and DuckDB's threads with it
    return template if template.is_file() else None


def yaml_profile(project: Path, database: Path, target: str = "rehearsal", extra: Sequence[str] = ()) -> str:
    """A profiles.yml for `project` (its `profile:` name) on the DuckDB file `database`, named relative to
    the project (dbt runs in it), with the `extra` lines (`threads: 4`, ...) in its output `target`."""
    name = "default"
    for line in (project / "dbt_project.yml").read_text(encoding="utf-8").splitlines():
        if line.startswith("profile:"):
            name = line.partition(":")[2].strip().strip("'\"")
    path = os.path.relpath(database, project)
    output = [f"      {line}" for line in ("type: duckdb", f"path: '{path}'", *extra)]
    return "\n".join([f"{name}:", f"  target: {target}", "  outputs:", f"    {target}:", *output]) + "\n"


def _native_threads() -> int | None:
    """The threads of this process, Python's and native ones (None where /proc cannot say)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def serve() -> None:
    """The worker: `warm.py SOCKET LIFELINE [PROJECT]` (module docstring)."""
    os.dup2(2, 1)  # whatever dbt's imports print goes to stderr
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    address, lifeline = sys.argv[1], sys.argv[2]
    held = 0 if lifeline == "-" else _hold(lifeline)
    if held is None:
        return  # the run it would serve has ended
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)  # first: clients connect at once, and wait for `ready`
    listener.listen(64)
    scratch = Path(tempfile.mkdtemp(prefix="warm-dbt-"))
    try:
        for module in PRELOAD:
            __import__(module)
        parse = rehearse(Path(sys.argv[3]), scratch) if len(sys.argv) > 3 else None
        _serve(listener, held, parse)
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(address)
        shutil.rmtree(scratch, ignore_errors=True)


def _hold(fifo: str) -> int | None:
    """The lifeline FIFO, opened for reading; None when no process holds it open for writing any more.
    Opened first thing: Linux tells a FIFO's reader of the hang-up only if a writer was there when it opened."""
    held = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not os.read(held, 4096):
            os.close(held)
            return None
    except BlockingIOError:  # a writer holds it, with nothing to say: the run goes on
        pass
    return held


def _serve(listener: socket.socket, lifeline: int, parse: Path | None) -> None:
    """Answer each connection's requests until `lifeline` reaches its end and every child has been reaped;
    a child's exit code goes to the connection that started it."""
    assert threading.active_count() == 1, "dbt left a thread running: forking would not be safe"
    assert _native_threads() in (None, 1), "a thread outside Python (DuckDB's?) runs: forking would not be safe"
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    for source in (listener, lifeline, wake_read):
        selector.register(source, selectors.EVENT_READ)
    pending: dict[socket.socket, bytes] = {}  # each connection's unfinished line
    children: dict[int, socket.socket] = {}  # pid -> the connection that started it
    ready = {"ready": True, "parse": None if parse is None else str(parse)}
    alive = True

    def answer(connection: socket.socket, message: Mapping[str, Any]) -> None:
        if connection in pending:
            try:
                connection.sendall((json.dumps(message) + "\n").encode())
            except OSError:  # the emulator went away: so do the answers it would have had
                drop(connection)

    def drop(connection: socket.socket) -> None:
        if pending.pop(connection, None) is not None:
            selector.unregister(connection)
        connection.close()

    while alive or children:
        for key, _ in selector.select():
            if key.fileobj is listener:
                connection = listener.accept()[0]
                pending[connection] = b""
                selector.register(connection, selectors.EVENT_READ)
                answer(connection, ready)
            elif key.fileobj == wake_read:
                os.read(wake_read, 4096)
            elif key.fileobj == lifeline:
                if not os.read(lifeline, 4096):
                    alive = False
                    selector.unregister(lifeline)
            else:
                assert isinstance(key.fileobj, socket.socket)
                connection = key.fileobj
                try:
                    chunk = connection.recv(65536)
                except OSError:  # reset: the emulator went away with answers unread
                    chunk = b""
                if not chunk:
                    drop(connection)
                    continue
                lines = (pending[connection] + chunk).split(b"\n")
                pending[connection] = lines.pop()
                for line in lines:
                    request = json.loads(line)
                    try:
                        pid = os.fork()
                    except OSError as error:
                        answer(connection, {"id": request["id"], "error": repr(error)})
                        continue
                    if pid == 0:
                        selector.close()
                        inherited = [listener.fileno(), lifeline, wake_read, wake_write]
                        _child(request, inherited + [c.fileno() for c in pending])
                    with contextlib.suppress(OSError):  # gone already, or set by the child itself
                        os.setpgid(pid, pid)  # before the emulator learns the pid, which it may signal at once
                    children[pid] = connection
                    answer(connection, {"id": request["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            starter = children.pop(pid, None)
            if starter is not None:
                answer(starter, {"pid": pid, "code": os.waitstatus_to_exitcode(status)})


# The client: in the emulator's process.


class WarmProcess:
    """A dbt step forked by a warm worker, waited for like a `subprocess.Popen`."""

    def __init__(self, worker: WarmWorker, pid: int, args: Sequence[str]) -> None:
        self.worker = worker
        self.pid = pid
        self.args = list(args)

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def poll(self) -> int | None:
        with self.worker.changed:
            return self.worker.codes.get(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        worker = self.worker
        with worker.changed:
            if not worker.changed.wait_for(lambda: self.pid in worker.codes or not worker.alive, timeout):
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            return worker.codes.get(self.pid, -signal.SIGKILL)  # the worker died: its child taken as killed


class WarmWorker:
    """The emulator's end of one worker process (one per dbt venv, shared by every run's steps): a worker of
    its own, or with `shared` (a `share` folder) the one every process of the pytest run connects to."""

    def __init__(self, python: Path, rehearsal: Path | None = None, shared: Path | None = None) -> None:
        self.own: subprocess.Popen[bytes] | None = None  # the worker, when it is this emulator's own
        if shared is None:
            self.folder: Path | None = Path(tempfile.mkdtemp(prefix="warm-dbt-socket-"))
            address = self.folder / "worker.sock"
            self.own = _spawn(python, address, "-", rehearsal)
            try:
                self.connection = _connect(address, self.own)
            except OSError:
                self.own.kill()
                self.own.wait()
                raise
        else:
            self.folder = None
            key = hashlib.sha256(f"{python}\0{rehearsal}".encode()).hexdigest()[:16]
            address = shared / f"{key}.sock"
            with _locked(shared / f"{key}.lock"):  # one process of the run starts it, the others connect
                try:
                    self.connection = _connect(address, None)
                except OSError:
                    address.unlink(missing_ok=True)  # a worker killed before it could remove its socket
                    _SPAWNED.append(_spawn(python, address, str(shared / LIFELINE), rehearsal))
                    self.connection = _connect(address, _SPAWNED[-1])
        self.lock = threading.Lock()  # one request written at a time
        self.changed = threading.Condition()
        self.started: dict[int, int | str] = {}  # request id -> child pid, or the worker's error
        self.codes: dict[int, int] = {}  # child pid -> exit code
        self.alive = True
        self.ready = False  # imported and rehearsed
        self.parse: Path | None = None  # the rehearsal's parse of its project, once ready (`rehearse`)
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, name=f"warm dbt {python}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        sys.settrace(None)  # untraced, as the emulator's other threads (threads.py; this file imports no sibling)
        with contextlib.suppress(OSError), self.connection.makefile("rb") as answers:
            for line in answers:
                message = json.loads(line)
                with self.changed:
                    if "ready" in message:
                        self.ready = True
                        self.parse = None if message.get("parse") is None else Path(message["parse"])
                    elif "code" in message:
                        self.codes[message["pid"]] = message["code"]
                    else:
                        self.started[message["id"]] = message.get("pid", message.get("error", "no pid"))
                    self.changed.notify_all()
        with self.changed:  # the worker is gone: so are its children
            self.alive = False
            self.changed.notify_all()

    def wait_ready(self, timeout: float = 300) -> None:
        """Block until the worker takes requests, has died, or has kept starting past `timeout`."""
        with self.changed:
            self.changed.wait_for(lambda: self.ready or not self.alive, timeout)

    def start(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path) -> WarmProcess:
        """Fork a child running `dbt <argv>` in `cwd` with exactly `env`, stdout and stderr to `log`."""
        with self.lock:
            self.next_id += 1
            ident = self.next_id
            request = {"id": ident, "argv": list(argv), "cwd": str(cwd), "env": dict(env), "log": str(log)}
            try:
                self.connection.sendall((json.dumps(request) + "\n").encode())
            except OSError as error:
                raise OSError(f"the warm dbt worker could not start dbt {' '.join(argv)}: {error!r}") from error
        with self.changed:
            self.changed.wait_for(lambda: ident in self.started or not self.alive)
            pid = self.started.pop(ident, "the worker exited")
        if isinstance(pid, str):
            raise OSError(f"the warm dbt worker could not start dbt {' '.join(argv)}: {pid}")
        return WarmProcess(self, pid, ["dbt", *argv])

    def close(self) -> None:
        """Hang up; a worker of this emulator's own exits once its children have ended."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        if self.own is not None:
            assert self.own.stdin is not None
            self.own.stdin.close()  # its lifeline
            try:
                self.own.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.own.kill()
                self.own.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _spawn(python: Path, address: Path, lifeline: str, rehearsal: Path | None) -> subprocess.Popen[bytes]:
    """Start a worker serving on `address` until `lifeline` ends (`-`: the stdin it is given here)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("DBT_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    args = [str(python), str(Path(__file__).resolve()), str(address), lifeline]
    return subprocess.Popen(
        [*args, *([str(rehearsal)] if rehearsal else [])],
        stdin=subprocess.PIPE if lifeline == "-" else subprocess.DEVNULL,
        env=env,
        start_new_session=lifeline != "-",  # a shared worker outlives the process that started it
    )


def _connect(address: Path, starting: subprocess.Popen[bytes] | None, timeout: float = 60) -> socket.socket:
    """A connection to the worker at `address`; with `starting`, wait for that worker to listen there.
    Raises OSError if none listens (or `starting` exited first)."""
    deadline = time.monotonic() + timeout
    while True:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(str(address))
            return connection
        except OSError:
            connection.close()
            if starting is None or starting.poll() is not None or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (processes of one run wait for each other)."""
    with path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def share() -> Callable[[], None]:
    """Let this process and every process it starts (by SHARED_ENV) share one warm worker per dbt venv,
    started by whichever needs it first; return what ends them (each exits once its children have).
    The workers' lifeline is a FIFO this process holds open: they also end when it dies."""
    if os.environ.get(SHARED_ENV):
        return lambda: None  # an outer process shares its workers already
    folder = Path(tempfile.mkdtemp(prefix="warm-dbt-shared-"))
    os.mkfifo(folder / LIFELINE)
    held = os.open(folder / LIFELINE, os.O_RDWR)
    os.environ[SHARED_ENV] = str(folder)

    def end() -> None:
        os.environ.pop(SHARED_ENV, None)
        os.close(held)
        shutil.rmtree(folder, ignore_errors=True)

    return end


_WORKERS: dict[Path, WarmWorker] = {}
_WORKERS_LOCK = threading.Lock()
_SPAWNED: list[subprocess.Popen[bytes]] = []  # shared workers this process started (they outlive it)


def enabled() -> bool:
    """Whether dbt steps go through a warm worker (fork available, not switched off)."""
    return hasattr(os, "fork") and os.environ.get(WARM_ENV, "1") != "0"


def worker(python: Path, rehearsal: Path | None = None) -> WarmWorker:
    """The warm worker of the dbt venv whose interpreter is `python`, started on first use (rehearsing
    its commands on the dbt project `rehearsal`, if given; under `share`, the run's worker). Raises
    OSError once that worker has died: its venv's steps then run as plain processes, rather than paying
    for a new worker each."""
    with _WORKERS_LOCK:
        current = _WORKERS.get(python)
        if current is None:
            shared = os.environ.get(SHARED_ENV)
            current = _WORKERS[python] = WarmWorker(python, rehearsal, Path(shared) if shared else None)
            atexit.register(current.close)
        if not current.alive:
            raise OSError(f"the warm dbt worker of {python} has exited")
        return current


if __name__ == "__main__":
    serve()
