"""After the trigger: what the restart saved (read while the new run runs) and whether it did the planned work."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from restart import actions, decide
from restart.api import DbtCloud
from restart.artifacts import ArtifactError, RunResults, parse_run_results
from restart.avoided import avoided, dropped_to_read
from restart.outcome import Outcome
from restart.plan import Plan
from restart.records import Run
from restart.settings import Settings
from restart.transport import ApiError
from restart.verify import check_context, verify

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

    def start(self) -> None:
        """Begin reading (a second call does nothing); once the new run exists, never before."""
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
    """The outcome with the work avoided and, when the new run was waited for, the verdict on it
    (`decide.judge` says whether it fails the step)."""
    plan, previous = outcome.plan, outcome.previous
    if plan is None or previous is None:
        return outcome
    waited = 0.0 if outcome.interrupted else READ_WAIT  # the runner kills the container seconds after a cancel
    outcome = replace(outcome, avoided=avoided(plan, previous, reader.result(log, waited)))
    new = outcome.new_run
    if settings.verify == "off" or new is None or outcome.new_results is None or not new.is_complete:
        return outcome
    judged = decide.judge(settings, outcome, verify(plan, new, outcome.new_results))
    for line in judged.say:
        log.say(line.level, line.text, line.title)
    return judged.outcome


def conclude_context(settings: Settings, log: actions.Log, outcome: Outcome) -> Outcome:
    """The outcome with the new run's trigger checked against the context sent, when it was waited for
    (`decide.judge_context` says whether it fails the step)."""
    new, context = outcome.new_run, outcome.context
    if settings.verify == "off" or new is None or context is None or not new.is_complete:
        return outcome
    judged = decide.judge_context(settings, outcome, check_context(context.body, new))
    for line in judged.say:
        log.say(line.level, line.text, line.title)
    return judged.outcome
