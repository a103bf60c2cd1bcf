"""Microbatch models (dbt 1.9+): rebuild only the batches that failed, and never leave a gap. Pure: no I/O.

A microbatch model builds its event-time window in batches (`batch_size`); when some batches fail it ends
`partial success` and run_results.json records `batch_results: {successful: [...], failed: [...]}`.
`dbt retry` reruns only the failed batches. A restart does the same with `--event-time-start/--event-time-end`
(which replace the command's own window): without them a model's window is computed from the current time
and `lookback`, so a restart on a later day could miss the failed batch, and with the command's own window it
would rebuild every batch again.

Those flags apply to every microbatch model a command runs, so the planner (`plan.py`) gives the partly
failed models steps of their own, each building one window of failed batches, before the rest of the step
(the nodes they held back, their tests, the nodes that failed outright), which keeps the command's own
window. A model that failed in every batch, or recorded no `batch_results`, reruns with the rest, as before.
This module is the batch arithmetic (windows, labels, flags, checks); it imports no planner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from restart.artifacts import BatchResults, NodeResult
from restart.dbt_vocabulary import Status

Window = tuple[datetime, datetime]  # [start, end) in UTC
# Above this many distinct windows of failed batches, one step builds the smallest window covering them all.
MAX_WINDOW_STEPS = 3
# Batch sizes by the length of a whole batch, with how a batch's start is shown.
SIZES = (
    (timedelta(hours=1), timedelta(hours=1), "hourly", "%Y-%m-%dT%H:00"),
    (timedelta(days=1), timedelta(days=1), "daily", "%Y-%m-%d"),
    (timedelta(days=28), timedelta(days=31), "monthly", "%Y-%m"),
    (timedelta(days=365), timedelta(days=366), "yearly", "%Y"),
)
# Flags under which event-time flags cannot pick batches: a full refresh rebuilds every batch, and dbt's
# sample mode (1.10+) replaces the event-time window with the sample's.
WHOLE_WINDOW_FLAGS = ("--full-refresh", "--sample")
MAX_LISTED = 5  # failed batches named in a description


def parse_time(text: str) -> datetime:
    """An ISO timestamp of `batch_results` as an aware UTC datetime (naive ones are UTC, as dbt means)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _windows(pairs: Sequence[tuple[str, str]]) -> tuple[Window, ...]:
    return tuple(sorted((parse_time(start), parse_time(end)) for start, end in pairs))


def merge(windows: Sequence[Window]) -> tuple[Window, ...]:
    """Windows joined where they touch or overlap, in order."""
    merged: list[Window] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _covered(window: Window, by: Sequence[Window]) -> bool:
    return any(start <= window[0] and window[1] <= end for start, end in merge(by))


@dataclass(frozen=True)
class ModelBatches:
    """A microbatch model that ended `partial success`: its batches in the failed run."""

    unique_id: str
    successful: tuple[Window, ...]
    failed: tuple[Window, ...]

    @property
    def name(self) -> str:
        """`mb_events` for `model.shop.mb_events` (`dim.v2` for a versioned model)."""
        return ".".join(self.unique_id.split(".")[2:]) or self.unique_id

    @property
    def total(self) -> int:
        return len(self.successful) + len(self.failed)

    @property
    def size(self) -> tuple[str, str]:
        """(`daily`, its label format) from the longest batch; ('', ISO) when no size fits."""
        longest = max(end - start for start, end in (*self.successful, *self.failed))
        for low, high, name, shown in SIZES:
            if low <= longest <= high:
                return name, shown
        return "", "%Y-%m-%dT%H:%M:%S"

    def label(self, window: Window) -> str:
        return window[0].strftime(self.size[1])

    @property
    def windows(self) -> tuple[Window, ...]:
        """The failed batches, runs of adjacent batches joined: what the restart builds."""
        return merge(self.failed)

    def describe(self) -> str:
        """`mb_events: 1 of 4 daily batches failed (2026-11-03); rebuilding that batch only`."""
        size = self.size[0]
        labels = [self.label(w) for w in self.failed]
        shown = ", ".join(labels[:MAX_LISTED]) + (
            f", and {len(labels) - MAX_LISTED} more" if len(labels) > MAX_LISTED else ""
        )
        only = "that batch only" if len(self.failed) == 1 else "those batches only"
        kind = f"{size} batches" if size else "batches"
        return f"{self.name}: {len(self.failed)} of {self.total} {kind} failed ({shown}); rebuilding {only}"


def from_result(result: NodeResult) -> ModelBatches | None:
    """The batches of a model whose batches partly failed; None for any other result.

    As for `dbt retry`, which passes a model's batches on only when some succeeded and some failed: a
    model that failed in every batch, or without readable `batch_results`, reruns its whole window.
    """
    batches = result.batch_results
    if result.status != Status.PARTIAL_SUCCESS or batches is None or not batches.successful or not batches.failed:
        return None
    try:
        return ModelBatches(result.unique_id, _windows(batches.successful), _windows(batches.failed))
    except ValueError:
        return None


@dataclass(frozen=True)
class BatchStep:
    """One command of the restart that builds `window` of the microbatch `models`."""

    window: Window
    models: tuple[ModelBatches, ...]
    covering: bool = False  # the smallest window covering several windows of failed batches

    @property
    def unique_ids(self) -> tuple[str, ...]:
        return tuple(m.unique_id for m in self.models)

    @property
    def redone(self) -> int:
        """Batches that had succeeded and this window builds again."""
        return sum(1 for m in self.models for w in m.successful if _covered(w, [self.window]))

    def describe(self, count: int) -> str:
        """What the step rebuilds, and (with `count` steps of batches in all) how its window was chosen."""
        models = "; ".join(m.describe() for m in self.models)
        if self.covering:
            start, end = flag_value(self.window[0]), flag_value(self.window[1], up=True)
            again = f", {self.redone} batch(es) that had succeeded rebuilt with them" if self.redone else ""
            return (
                f"{models}; one step with the smallest window covering every failed batch "
                f"({start} to {end}, end excluded{again}), rather than one step per window"
            )
        if count > 1:
            return f"{models}; one step per window of failed batches ({count} steps), exact"
        return models


def plan_windows(models: Sequence[ModelBatches]) -> tuple[BatchStep, ...]:
    """The steps that rebuild the failed batches of `models`.

    One step per distinct window of failed batches (models failing the same batches share it): exact,
    at one dbt start-up per window. Past `MAX_WINDOW_STEPS` windows, one step with the smallest window
    covering them all: fewer start-ups, but the batches that succeeded in between are built again.
    """
    by_window: dict[Window, list[ModelBatches]] = {}
    for model in models:
        for window in model.windows:
            by_window.setdefault(window, []).append(model)
    if len(by_window) <= MAX_WINDOW_STEPS:
        return tuple(BatchStep(window, tuple(found)) for window, found in sorted(by_window.items()))
    covering = (min(w[0] for w in by_window), max(w[1] for w in by_window))
    return (BatchStep(covering, tuple(models), covering=True),)


def flag_value(moment: datetime, *, up: bool = False) -> str:
    """A time as `--event-time-start/-end` take it (UTC, to the second: rounded up with `up`)."""
    moment = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    if moment.microsecond:
        whole = moment.replace(microsecond=0)
        moment = whole + timedelta(seconds=1) if up else whole
    if moment == datetime(moment.year, moment.month, moment.day):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def batches_rebuilt(
    planned: Sequence[ModelBatches], new: Mapping[str, BatchResults | None]
) -> dict[str, tuple[Window, ...]]:
    """For verification: the failed batches of `planned` that the new run's `batch_results` (by unique_id)
    do not show rebuilt, per model; empty when every one was.

    A failed batch counts as rebuilt when the new run's successful batches cover it (a partial last batch
    of the failed run is covered by the whole batch the restart builds).
    """
    missing: dict[str, tuple[Window, ...]] = {}
    for model in planned:
        found = new.get(model.unique_id)
        try:
            built = _windows(found.successful) if found is not None else ()
        except ValueError:
            built = ()
        left = tuple(w for w in model.failed if not _covered(w, built))
        if left:
            missing[model.unique_id] = left
    return missing


def failed_batches_rebuilt(step: BatchStep | None, result: NodeResult) -> str:
    """A verification check: '' when the new run rebuilt the failed batches `step` was planned to (none
    when it is None), else which it did not (from the model's `batch_results` in the new run)."""
    model = next((m for m in step.models if m.unique_id == result.unique_id), None) if step else None
    if step is None or model is None:
        return ""
    wanted = replace(model, failed=tuple(w for w in model.failed if _covered(w, [step.window])))
    left = batches_rebuilt([wanted], {result.unique_id: result.batch_results}).get(result.unique_id, ())
    if not left:
        return ""
    return f"{len(left)} failed batch(es) not rebuilt ({', '.join(model.label(w) for w in left[:MAX_LISTED])})"


def batches_avoided(steps: Sequence[BatchStep]) -> int:
    """For the avoided work: batches that had succeeded and no step builds again."""
    models = {m.unique_id: m for step in steps for m in step.models}
    windows: dict[str, list[Window]] = {}
    for step in steps:
        for model in step.models:
            windows.setdefault(model.unique_id, []).append(step.window)
    return sum(1 for uid, m in models.items() for w in m.successful if not _covered(w, windows[uid]))
