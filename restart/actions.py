"""GitHub Actions I/O: inputs, workflow commands, outputs and the job summary.

Outside Actions the same calls print plain `error: ...` lines, so the CLI reads naturally.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

SUMMARY_LIMIT = 1024 * 1024


def input_env_name(name: str) -> str:
    """The variable the runner sets for an input: `job-id` -> `INPUT_JOB-ID`."""
    return "INPUT_" + name.replace(" ", "_").upper()


def read_inputs(names: list[str], env: Mapping[str, str]) -> dict[str, str]:
    """The action's inputs by name, from the runner's `INPUT_*` variables."""
    return {name: env.get(input_env_name(name), "") for name in names}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass
class Log:
    """Log lines and workflow commands, written to one stream."""

    actions: bool
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    debug_enabled: bool = False

    def _command(self, name: str, message: str, title: str = "") -> None:
        if self.actions:
            props = f" title={escape_property(title)}" if title else ""
            self.stream.write(f"::{name}{props}::{escape_data(message)}\n")
        else:
            prefix = f"{title}: " if title else ""
            self.stream.write(f"{name}: {prefix}{message}\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        self.stream.write(message + "\n")
        self.stream.flush()

    def error(self, message: str, title: str = "") -> None:
        self._command("error", message, title)

    def warning(self, message: str, title: str = "") -> None:
        self._command("warning", message, title)

    def notice(self, message: str, title: str = "") -> None:
        self._command("notice", message, title)

    def say(self, level: str, message: str, title: str = "") -> None:
        """`message` at `level`: `info` (a plain line), `notice`, `warning` or `error` (annotations)."""
        if level == "info":
            self.info(message)
        else:
            self._command(level, message, title)

    def debug(self, message: str) -> None:
        if self.actions:
            self.stream.write(f"::debug::{escape_data(message)}\n")
        elif self.debug_enabled:
            self.stream.write(f"debug: {message}\n")

    def mask(self, secret: str) -> None:
        if self.actions and secret:
            self.stream.write(f"::add-mask::{escape_data(secret)}\n")
            self.stream.flush()

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        if self.actions:
            self.stream.write(f"::group::{escape_data(title)}\n")
        else:
            self.stream.write(f"== {title}\n")
        try:
            yield
        finally:
            if self.actions:
                self.stream.write("::endgroup::\n")
            self.stream.flush()

    @contextmanager
    def untrusted(self) -> Iterator[None]:
        """Echo remote text (dbt messages) with workflow commands switched off."""
        token = uuid.uuid4().hex
        if self.actions:
            self.stream.write(f"::stop-commands::{token}\n")
        try:
            yield
        finally:
            if self.actions:
                self.stream.write(f"::{token}::\n")
            self.stream.flush()


def format_outputs(outputs: Mapping[str, str]) -> str:
    """`GITHUB_OUTPUT` records: every value as a heredoc with its own random delimiter."""
    lines = []
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in value:  # pragma: no cover - a uuid4 collision
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(lines)


def write_outputs(outputs: Mapping[str, str], env: Mapping[str, str]) -> None:
    path = env.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(format_outputs(outputs))


def append_summary(markdown: str, env: Mapping[str, str]) -> None:
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    data = markdown.encode("utf-8")
    if len(data) > SUMMARY_LIMIT - 1024:
        cut = data[: SUMMARY_LIMIT - 2048].decode("utf-8", "ignore")
        markdown = cut + "\n\n_Summary truncated: it would exceed GitHub's 1 MiB limit._\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown)


def in_actions(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"
