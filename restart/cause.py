"""The `cause` of a restarted run, carrying a marker the action can find again.

The marker names the original failed run, which restart attempt this is, a random id and, since
now, the run it restarts directly (`[restarts=N]`, a bracket of its own so that older versions still
read the rest). It lets the action recognise the run it created when the trigger's answer was lost,
count earlier restarts of the same failure, and find a restart of exactly one run (idempotency).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

DBT_CLOUD_CAUSE_LIMIT = 255  # characters of a run's cause that dbt Cloud keeps
MARKER = re.compile(r"\[dbt-cloud-restart run=(\d+) attempt=(\d+) id=([0-9a-f]{8,32})\](?:\[restarts=(\d+)\])?")


@dataclass(frozen=True)
class Marker:
    """Which failure a run restarts, the how-manieth attempt it is, and a unique id."""

    original_run: int
    attempt: int
    nonce: str
    restarts: int | None = None  # the run this one restarts directly; None in markers of older versions

    def render(self) -> str:
        tag = f"[dbt-cloud-restart run={self.original_run} attempt={self.attempt} id={self.nonce}]"
        return tag if self.restarts is None else f"{tag}[restarts={self.restarts}]"

    def restarts_run(self, run_id: int) -> bool:
        """Whether this marker's run restarts `run_id` directly (not a restart of a restart of it).

        A marker without `restarts` (older versions) says so only for the first attempt at its
        original run; a later attempt of such a marker could have restarted any run of the chain.
        """
        if self.restarts is not None:
            return self.restarts == run_id
        return self.original_run == run_id and self.attempt == 1


def read_marker(cause: str) -> Marker | None:
    match = MARKER.search(cause or "")
    if match is None:
        return None
    restarts = int(match.group(4)) if match.group(4) else None
    return Marker(int(match.group(1)), int(match.group(2)), match.group(3), restarts)


def original_run(previous_run_id: int, previous_cause: str) -> int:
    """The failure a run stands for: itself, or the run its marker says it restarted."""
    earlier = read_marker(previous_cause)
    return earlier.original_run if earlier else previous_run_id


def count_attempts(original: int, causes: list[str]) -> int:
    """How many runs of the chain behind `original` these causes mark as restarted.

    Two restarts of the same run (two copies of the action that raced, the later one cancelled) count
    once: the loop guard counts failures restarted, not triggers.
    """
    restarted: set[int | str] = set()
    for cause in causes:
        marker = read_marker(cause)
        if marker is not None and marker.original_run == original:
            restarted.add(marker.restarts if marker.restarts is not None else marker.render())
    return len(restarted)


def next_marker(previous_run_id: int, previous_cause: str, earlier_attempts: int = 0) -> Marker:
    """The marker for the next restart of the failure behind a run."""
    earlier = read_marker(previous_cause)
    attempt = max(earlier_attempts, earlier.attempt if earlier else 0) + 1
    return Marker(original_run(previous_run_id, previous_cause), attempt, secrets.token_hex(4), previous_run_id)


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
