"""The new run's context: the failed run's own overrides, kept by default, and `payload`, which wins. Pure.

A run started with a context (`schema_override`, `git_branch`, `git_sha`, a pull request id, ...)
must be restarted in it: with the job's defaults the restart builds another schema or other code.
dbt Cloud's own rerun keeps the context by itself; a trigger request has to carry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from restart.records import CONTEXT_KEYS, ContextValue, RunContext

# The `context` input: keep the failed run's overrides (default) or start from the job's defaults.
ContextMode = Literal["keep", "job-defaults"]
KEEP: Final[ContextMode] = "keep"
JOB_DEFAULTS: Final[ContextMode] = "job-defaults"
CONTEXT_MODES: Final[tuple[ContextMode, ...]] = (KEEP, JOB_DEFAULTS)
# Where a value the new run gets comes from.
Source = Literal["failed run", "payload"]
FROM_RUN: Final[Source] = "failed run"
FROM_PAYLOAD: Final[Source] = "payload"


@dataclass(frozen=True)
class Sent:
    """One field of the new run's trigger request, and where its value comes from."""

    key: str
    value: ContextValue
    source: Source


@dataclass(frozen=True)
class Left:
    """A field the failed run's trigger set that the new run does not get, and why."""

    key: str
    value: ContextValue
    why: str


@dataclass(frozen=True)
class NewContext:
    """The context the new run is triggered with (`sent`), what of the failed run's it leaves (`left`),
    and the failed run's fields that could not be read and that `payload` does not set (`unread`)."""

    mode: ContextMode
    sent: tuple[Sent, ...] = ()
    left: tuple[Left, ...] = ()
    unread: tuple[str, ...] = ()

    @property
    def body(self) -> dict[str, ContextValue]:
        """The trigger request's fields beyond `cause` and `steps_override`."""
        return {s.key: s.value for s in self.sent}

    @property
    def pinned_sha(self) -> str:
        """The failed run's commit when the new run checks it out again ('' otherwise)."""
        found = next((s for s in self.sent if s.key == "git_sha" and s.source == FROM_RUN), None)
        return str(found.value) if found else ""


def merge(context: RunContext, payload: Mapping[str, Any], mode: ContextMode = KEEP) -> NewContext:
    """The new run's context from the failed run's `context` and the `payload` input.

    `payload` wins key by key; a key it sets to null is not sent (the job's default applies). With
    `keep` every other override the failed run's trigger recorded is sent again, except its `git_sha`
    when `payload` names another `git_branch` (a commit belongs to its branch). With `job-defaults`
    only `payload` is sent.
    """
    sent: list[Sent] = []
    left: list[Left] = []
    unread: list[str] = []
    new_branch = payload.get("git_branch") is not None and payload.get("git_branch") != context.get("git_branch")
    for key in CONTEXT_KEYS:
        previous = context.get(key)
        if key in payload:
            value = payload[key]
            if value is not None:
                sent.append(Sent(key, value, FROM_PAYLOAD))
            elif previous is not None:
                left.append(Left(key, previous, "`payload` sets it to null"))
            continue
        if previous is None:
            if key in context.unread and mode == KEEP:
                unread.append(key)
            continue
        if mode == JOB_DEFAULTS:
            left.append(Left(key, previous, "`context: job-defaults`"))
        elif key == "git_sha" and new_branch:
            left.append(Left(key, previous, "`payload` names another git_branch"))
        else:
            sent.append(Sent(key, previous, FROM_RUN))
    return NewContext(mode, tuple(sent), tuple(left), tuple(unread))


def unread_refusal(new: NewContext, run_id: int) -> str:
    """'' or why the restart cannot keep run `run_id`'s context: a field of its trigger could not be read."""
    if not new.unread:
        return ""
    fields = ", ".join(new.unread)
    return (
        f"the trigger of run {run_id} records {fields} in a form this tool cannot read, so the restart cannot "
        f"keep its context: set {'them' if len(new.unread) > 1 else 'it'} in `payload`, or set "
        "`context: job-defaults`"
    )


def sha_note(new: NewContext) -> str:
    """What a pinned commit means for the restart, and how to run the branch's newest code ('' if none)."""
    sha = new.pinned_sha
    if not sha:
        return ""
    return (
        f"the new run checks out commit {sha[:12]} again, as the failed run did: it reruns the code that failed. "
        'To run the branch\'s newest code instead, set `payload: {"git_sha": null}`'
    )
