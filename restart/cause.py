"""The `cause` of a restarted run, carrying a marker the action can find again.

The marker names the original failed run, which restart attempt this is, and a random id. It lets
the action recognise the run it created when the trigger's answer was lost, and count earlier
restarts of the same failure.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

DBT_CLOUD_CAUSE_LIMIT = 255  # characters of a run's cause that dbt Cloud keeps
MARKER = re.compile(r"\[dbt-cloud-restart run=(\d+) attempt=(\d+) id=([0-9a-f]{8,32})\]")


@dataclass(frozen=True)
class Marker:
    """Which failure a run restarts, the how-manieth attempt it is, and a unique id."""

    original_run: int
    attempt: int
    nonce: str

    def render(self) -> str:
        return f"[dbt-cloud-restart run={self.original_run} attempt={self.attempt} id={self.nonce}]"


def read_marker(cause: str) -> Marker | None:
    match = MARKER.search(cause or "")
    if match is None:
        return None
    return Marker(int(match.group(1)), int(match.group(2)), match.group(3))


def original_run(previous_run_id: int, previous_cause: str) -> int:
    """The failure a run stands for: itself, or the run its marker says it restarted."""
    earlier = read_marker(previous_cause)
    return earlier.original_run if earlier else previous_run_id


def count_attempts(original: int, causes: list[str]) -> int:
    """How many of these runs' causes mark them as restarts of `original`."""
    return sum(1 for cause in causes if (m := read_marker(cause)) is not None and m.original_run == original)


def next_marker(previous_run_id: int, previous_cause: str, earlier_attempts: int = 0) -> Marker:
    """The marker for the next restart of the failure behind a run."""
    earlier = read_marker(previous_cause)
    attempt = max(earlier_attempts, earlier.attempt if earlier else 0) + 1
    return Marker(original_run(previous_run_id, previous_cause), attempt, secrets.token_hex(4))


def with_marker(text: str, marker: Marker) -> str:
    """`text` followed by the marker, shortened so that the whole fits dbt Cloud's 255 characters."""
    tag = marker.render()
    room = DBT_CLOUD_CAUSE_LIMIT - len(tag) - 1
    text = " ".join(text.split())
    if len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return f"{text} {tag}" if text else tag


def retry_root(run_id: int, retrying: Mapping[int, int]) -> int:
    """The run a chain of dbt Cloud reruns from failure started from (`retrying`: run -> run it retries)."""
    seen = {run_id}
    while (earlier := retrying.get(run_id)) is not None and earlier not in seen:
        seen.add(earlier)
        run_id = earlier
    return run_id


def failure_behind(run_id: int, cause: str, retrying: Mapping[int, int], causes: Mapping[int, str]) -> int:
    """The failure a run stands for: back through dbt Cloud's reruns (`retrying_run_id`), then our markers."""
    root = retry_root(run_id, retrying)
    return original_run(root, cause if root == run_id else causes.get(root, ""))


def count_restarts(original: int, retrying: Mapping[int, int], causes: Mapping[int, str]) -> int:
    """How many of these runs restart `original`: ours (by marker) and dbt Cloud's reruns from failure."""
    ours = count_attempts(original, list(causes.values()))
    native = sum(
        1 for run_id in retrying if failure_behind(run_id, causes.get(run_id, ""), retrying, causes) == original
    )
    return ours + native
