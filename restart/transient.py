"""Transient or persistent: which failures a second attempt can be expected to fix.

Warehouse timeouts, dropped connections, lock conflicts, rate limits and server errors pass by
themselves; a compile error, a failing data test or a permission error does not. The patterns are
one table, overridable with the `transient-patterns` input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from restart.dbt_vocabulary import Status
from restart.plan import Plan
from restart.records import ERROR, Run

DEFAULT_PATTERNS: tuple[str, ...] = (
    r"time(d)?[ -]?out",
    r"timeout expired",
    r"statement (was )?(cancel+ed|aborted) .*(timeout|time limit)",
    r"connection (reset|refused|closed|aborted|lost|dropped)",
    r"could not connect",
    r"(unable|failed) to connect",
    r"broken pipe",
    r"network (error|is unreachable)",
    r"temporar(il)?y (unavailable|failure)",
    r"service unavailable",
    r"(http|status( code)?|error)\W{0,3}50[0234]\b",
    r"bad gateway",
    r"too many requests|rate limit|\b429\b|quota exceeded",
    r"serializ(ation|able) (failure|error)|could not serialize",
    r"deadlock",
    r"lock (wait|timeout|not available)|could not obtain lock|concurrent (update|transaction)",
    r"transaction .*(conflict|aborted)",
    r"internal (server )?error",
    r"ssl (syscall|error)|eof occurred in violation",
    r"remote end closed|connection was forcibly closed",
    r"resources exceeded|out of memory|insufficient (resources|memory)",
    r"please try again|retry (the|your) (request|query)",
)


@dataclass(frozen=True)
class Failure:
    """One failure of the previous run, classified."""

    where: str  # a node's unique_id or "step N (`command`)"
    message: str
    transient: bool
    reason: str  # the pattern that matched, or why it is persistent


def compile_patterns(texts: Iterable[str]) -> list[re.Pattern[str]]:
    """Case-insensitive patterns; raises `re.error` on a bad one."""
    return [re.compile(text, re.IGNORECASE) for text in texts if text.strip()]


def classify(where: str, message: str, status: str, patterns: list[re.Pattern[str]]) -> Failure:
    if status == Status.FAIL:
        return Failure(where, message, False, "a data test found failing rows: the data needs fixing, not a retry")
    for pattern in patterns:
        if pattern.search(message):
            return Failure(where, message, True, f"matches /{pattern.pattern}/")
    return Failure(where, message, False, "matches no transient pattern")


def failures(plan: Plan, run: Run, patterns: list[re.Pattern[str]]) -> list[Failure]:
    """Every failed node, and every failed step without node results, of the previous run."""
    found: list[Failure] = []
    steps = {step.index: step for step in run.steps}
    for item in plan.steps:
        for node in item.failures:
            found.append(classify(node.unique_id, node.message, node.status, patterns))
        step = steps.get(item.step_index) if item.step_index is not None else None
        if step is not None and step.status == ERROR and not item.failures:
            message = step.logs or run.status_message
            found.append(classify(f"step {step.index} (`{item.command}`)", message, Status.ERROR, patterns))
    if not found and run.status_message:
        found.append(classify(f"run {run.id}", run.status_message, Status.ERROR, patterns))
    return found
