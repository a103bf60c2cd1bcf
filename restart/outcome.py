"""The outcome of one restart: what the outputs, the job summary and the exit code are made from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from restart.artifacts import NodeResult
from restart.avoided import Avoided
from restart.overrides import NewContext
from restart.plan import Plan
from restart.records import Run
from restart.transient import Failure
from restart.verify import ContextCheck, Verdict


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """Everything the outputs, the summary and the exit code are made from.

    `strategy` has no default: every outcome says which strategy it was reached under (`select` or
    `native`), or '' when the inputs were never read.
    """

    status: str
    headline: str
    strategy: str
    exit_code: int = 0
    previous: Run | None = None
    plan: Plan | None = None
    new_run: Run | None = None
    details: tuple[str, ...] = ()
    # The new run's final node results by step index, when it was waited for (see `summary.new_run_results`).
    new_results: Mapping[int, Sequence[NodeResult]] | None = None
    issue_url: str = ""
    # With `restart-on: transient`: every failure of the previous run and its class.
    classified: tuple[Failure, ...] = ()
    verdict: Verdict | None = None  # the new run against the plan, when it was waited for (`verify`)
    avoided: Avoided | None = None  # the failed run's work the restart does not redo
    existing: Run | None = None  # skipped as a duplicate: the run that already restarts `previous`
    context: NewContext | None = None  # the context the new run was (or would be) triggered with
    context_check: ContextCheck | None = None  # the new run's trigger against that context, when waited for

    @property
    def restarted(self) -> bool:
        return self.new_run is not None
