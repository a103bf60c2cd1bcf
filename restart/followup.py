"""After the trigger: what the restart saved (read while the new run runs) and whether it did the planned work."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from restart import actions
from restart.api import ApiError, DbtCloud
from restart.artifacts import ArtifactError, RunResults, parse_run_results
from restart.avoided import avoided, dropped_to_read
from restart.outcome import Outcome
from restart.plan import Plan
from restart.records import SUCCESS, Run
from restart.settings import Settings
from restart.verify import check_context, complaint, context_complaint, verify

READ_WAIT = 120.0  # seconds the end of a restart waits for the dropped steps' results still being read


class ArtifactReader(Protocol):
    """What reading the dropped steps' results needs of dbt Cloud (`restart.api.DbtCloud` has it)."""

    def get_artifact(self, run_id: int, path: str, step: int | None = None) -> Any: ...

    def close(self) -> None: ...


class DroppedReader:
    """The run_results.json of the failed run's dropped steps, read in a background thread.

    Started once the new run exists (never before the trigger, which it must not delay), with its
    own client (made by `connect`, a new `DbtCloud` by default): the wait loop keeps polling on the main
    one meanwhile.
    """

    def __init__(
        self, settings: Settings, previous: Run, plan: Plan, connect: Callable[[], ArtifactReader] | None = None
    ) -> None:
        self.settings = settings
        self.connect = connect or (lambda: DbtCloud(settings.base_url, settings.token, settings.account_id))
        self.previous = previous
        self.wanted = dropped_to_read(plan)
        self.found: dict[int, RunResults | None] = {}
        self.problems: list[str] = []
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # `found` may still grow when `result` gives up waiting

    def start(self, new_run: Run | None = None) -> None:
        """Begin reading (a second call does nothing); `new_run` is the run just triggered."""
        if self._thread is None and self.wanted:
            self._thread = threading.Thread(target=self._read, name="dbt-cloud-restart-dropped", daemon=True)
            self._thread.start()

    def _read(self) -> None:
        client = self.connect()
        try:
            for step in self.wanted:
                read: RunResults | None = None
                try:
                    document = client.get_artifact(self.previous.id, "run_results.json", step)
                    read = parse_run_results(document) if document is not None else None
                except (ApiError, ArtifactError) as exc:
                    with self._lock:
                        self.problems.append(f"step {step} of run {self.previous.id}: {exc}")
                with self._lock:
                    self.found[step] = read
        finally:
            client.close()

    def result(self, log: actions.Log, timeout: float = READ_WAIT) -> dict[int, RunResults | None]:
        """What was read; read now when not started (nothing was triggered), what is done after `timeout`."""
        self.start()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.debug(f"the results of the dropped steps were still being read after {timeout:g}s")
        with self._lock:
            problems, found = list(self.problems), dict(self.found)
        for problem in problems:
            log.debug(f"no node results for dropped {problem}")
        return found


def conclude(settings: Settings, log: actions.Log, outcome: Outcome, reader: DroppedReader) -> Outcome:
    """The outcome with the work avoided and, when the new run was waited for, the verdict on it.

    A new run that succeeded but left planned nodes unrun fails the step (`verify: fail`) or warns.
    """
    plan, previous = outcome.plan, outcome.previous
    if plan is None or previous is None:
        return outcome
    interrupted = outcome.exit_code > 1  # SIGTERM/SIGINT: the runner kills the container seconds later
    outcome = replace(outcome, avoided=avoided(plan, previous, reader.result(log, 0.0 if interrupted else READ_WAIT)))
    new = outcome.new_run
    if settings.verify == "off" or new is None or outcome.new_results is None or not new.is_complete:
        return outcome
    verdict = verify(plan, new, outcome.new_results)
    outcome = replace(outcome, verdict=verdict)
    for step in verdict.unknown:
        log.warning(f"the node results of step {step.new_index} of run {new.id} could not be read: not verified")
    if verdict.unplanned:
        shown = ", ".join(verdict.unplanned[:5]) + (" ..." if len(verdict.unplanned) > 5 else "")
        log.warning(f"run {new.id} also ran {len(verdict.unplanned)} node(s) that were not planned: {shown}")
    why = complaint(verdict, new.id) if new.status == SUCCESS else ""
    if not why:
        return outcome
    if settings.verify == "warn":
        log.warning(why, title="Not verified")
        return outcome
    log.error(why + "; set verify: warn to let such a restart pass", title="Restart not verified")
    return replace(outcome, exit_code=max(outcome.exit_code, 1), headline=f"{outcome.headline}, not verified")


def conclude_context(settings: Settings, log: actions.Log, outcome: Outcome) -> Outcome:
    """The outcome with the new run's trigger checked against the context sent, when it was waited for.

    A new run whose trigger records another context fails the step (`verify: fail`) or warns.
    """
    new, context = outcome.new_run, outcome.context
    if settings.verify == "off" or new is None or context is None or not new.is_complete:
        return outcome
    check = check_context(context.body, new)
    outcome = replace(outcome, context_check=check)
    if check.unknown:
        log.warning(f"run {new.id} was read without its trigger: its context is not verified")
    why = context_complaint(check, new.id)
    if not why:
        return outcome
    if settings.verify == "warn":
        log.warning(why, title="Not verified")
        return outcome
    log.error(why + "; set verify: warn to let such a restart pass", title="Restart not verified")
    headline = outcome.headline if outcome.headline.endswith("not verified") else f"{outcome.headline}, not verified"
    return replace(outcome, exit_code=max(outcome.exit_code, 1), headline=headline)
