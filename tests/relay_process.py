"""The relay started as its own process (`python -m restart relay`), as a container host starts it.

It listens on a free port (PORT=0: the kernel picks one, the relay says which in its first line) and
dispatches to a local GitHub (tests/fake_dispatches.py). Everything it prints is kept for assertions.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from restart.webhook import sign
from tests.fake_dispatches import FakeDispatches

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec-local-relay-secret"


@dataclass
class RelayProcess:
    """A running relay: its URL, its output so far, and helpers to deliver to it."""

    process: subprocess.Popen[str]
    url: str = ""
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.changed = threading.Condition()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 10.0) -> str:
        """The first output line matching `pattern`, waiting for it."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [line for line in self.lines if re.search(pattern, line)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not found):
                    raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))
                self.changed.wait(min(left, 0.2))

    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def deliver(self, body: bytes, secret: str = SECRET, authorization: str | None = None) -> requests.Response:
        """POST a body as dbt Cloud does, signed with `secret` (or with the given Authorization)."""
        headers = {"Content-Type": "application/json", "Authorization": authorization or sign(secret, body)}
        return requests.post(self.url + "/", data=body, headers=headers, timeout=10)


def relay_env(github: FakeDispatches, **overrides: str) -> dict[str, str]:
    """The relay's environment: the secret, the local GitHub, a free port."""
    env = {
        "PATH": os.environ["PATH"],
        "PORT": "0",
        "DBT_CLOUD_WEBHOOK_SECRET": SECRET,
        "GITHUB_TOKEN": github.token,
        "GITHUB_REPOSITORY": github.repository,
        "GITHUB_API_URL": github.base_url,
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value}


@contextmanager
def running_relay(github: FakeDispatches, **overrides: str) -> Iterator[RelayProcess]:
    """Start the relay, wait until it listens; on leaving, SIGTERM it and check it stopped cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "restart", "relay"],
        cwd=ROOT,
        env=relay_env(github, **overrides),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    relay = RelayProcess(process)
    threading.Thread(target=relay._read, daemon=True).start()
    try:
        port = re.search(r"listening on port (\d+)", relay.wait_for_line("listening on port"))
        assert port is not None
        relay.url = f"http://127.0.0.1:{port.group(1)}"
        yield relay
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    output = relay.output()
    assert SECRET not in output and github.token not in output, "the relay printed a secret"
