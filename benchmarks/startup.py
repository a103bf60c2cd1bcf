"""Start-up: from `python entrypoint.py` to its first API request, and what it imports on the way."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WATCHED = ("jsonschema", "github", "requests", "urllib3", "restart.github", "restart.summary", "json")


class _Recorder(BaseHTTPRequestHandler):
    first: float | None = None

    def do_GET(self) -> None:
        if _Recorder.first is None:
            _Recorder.first = time.perf_counter()
        body = json.dumps({"status": {"code": 404, "user_message": "Not found."}, "data": None}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _inputs(base_url: str, report: str) -> dict[str, str]:
    return {
        "dbt-cloud-token": "bench-token",
        "account-id": "1",
        "job-id": "1",
        "run-id": "1",
        "dbt-cloud-host": base_url,
        "report": report,
    }


def time_to_first_request(report: str = "none", repeat: int = 5) -> list[float]:
    """Seconds from spawning entrypoint.py to its first API request, `repeat` times (the best is the floor)."""
    from tests.runner import run_action

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    times = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
            for _ in range(repeat):
                _Recorder.first = None
                started = time.perf_counter()
                run_action(Path(scratch), _inputs(base_url, report))
                if _Recorder.first is not None:
                    times.append(_Recorder.first - started)
    finally:
        server.shutdown()
        server.server_close()
    return times


def imports(report: str = "none") -> tuple[float, list[tuple[str, float]], set[str]]:
    """(total import seconds, the 12 costliest top-level imports with cumulative seconds, modules imported)."""
    env_inputs = _inputs("http://127.0.0.1:9", report)
    env = {"INPUT_" + k.upper(): v for k, v in env_inputs.items()}
    env.update({"PATH": "/usr/bin:/bin", "INPUT_WAIT": "true", "INPUT_TIMEOUT": "1", "INPUT_POLL-INTERVAL": "1"})
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "entrypoint.py")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        timeout=60,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((match.group(4), int(match.group(2)) / 1e6, len(match.group(3))))
    total = sum(cumulative for _, cumulative, depth in rows if depth <= 1)
    # the costliest packages, wherever they were first imported from (restart's own modules aside)
    top = sorted(
        ((name, cumulative) for name, cumulative, _ in rows if "." not in name and name != "restart"),
        key=lambda item: -item[1],
    )
    return total, top[:12], {name for name, _, _ in rows}


def table() -> list[str]:
    lines = ["| report | time to first API request (best / median of 5) | import time | heavy modules imported |"]
    lines.append("|---|---:|---:|---|")
    detail: list[str] = []
    for report in ("none", "both"):
        times = sorted(time_to_first_request(report))
        total, top, modules = imports(report)
        heavy = ", ".join(name for name in WATCHED if name in modules and name != "json") or "—"
        best = f"{times[0]:.3f} s / {times[len(times) // 2]:.3f} s" if times else "no request"
        lines.append(f"| {report} | {best} | {total:.3f} s | {heavy} |")
        detail.append(
            f"- report {report}: costliest imports: " + ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in top[:8])
        )
    return [*lines, "", *detail]


if __name__ == "__main__":
    print("\n".join(table()))
