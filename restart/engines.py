"""Which dbt engine wrote a step's artifacts, and what its node selection can say exactly. Pure.

dbt Core 1.x and dbt v2 (the Fusion engine, `2.0.0-preview.N` and later) resolve the same selector
differently: `file:orders` selects `orders.sql` only from dbt 1.6, `--indirect-selection empty` exists
only from 1.5, and Fusion records ephemeral and no-op nodes as `skipped`. The planner asks an `Engine`
instead of assuming the newest dbt.

dbt Core 1.12 (and dbt v2) skip every node when an `on-run-start` hook fails
(`skip_nodes_if_on_run_start_fails` is the default from 1.12), and `on_error: continue` lets the
children of a failed model run on its stale data; `dbt retry` reruns neither kind as the job meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from restart.artifacts import Manifest, RunResults
from restart.dbt_vocabulary import ERRORED_KINDS, FAILED, HOOK, RAN, UNIT_TEST_PREFIX, Status
from restart.graph import descendants_of

Version = tuple[int, int, int]

OLDEST = (1, 0, 0)  # dbt Core 1.0: the first version with run_results v4 and `dbt build`
FILE_BY_STEM = (1, 6, 0)  # `file:orders` matches `orders.sql` (1.5 fnmatches the whole name, 1.0-1.1 lack `file`)
INDIRECT_EMPTY = (1, 5, 0)  # `--indirect-selection empty`
FUSION_MAJOR = 2  # dbt v2: the Fusion engine
NEWEST_MAJOR = 2  # the newest major version this planner knows
SUPPORTED = "dbt Core 1.0 to 1.x and dbt v2 (Fusion)"
# dbt Cloud release tracks a run may name instead of a version: each runs a current dbt (1.8 or later).
RELEASE_TRACKS = frozenset({"latest", "versionless", "compatible", "extended", "fallback"})
FUSION_TRACKS = frozenset({"latest-fusion", "fusion"})

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version | None:
    """(major, minor, patch) from `1.5.11`, `1.12.0-b1`, `1.7.0rc1`, `2.0.0-preview.45`, `v1.8`; None if none.

    Pre-release tags are dropped: a `1.6.0-b1` already has 1.6's selector methods.
    """
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


@dataclass(frozen=True)
class Engine:
    """The dbt engine that wrote a step's artifacts, as far as they (or the run) tell."""

    text: str = ""  # the version as recorded ('' when nothing recorded one)

    @classmethod
    def of(cls, *recorded: str | None) -> Engine:
        """The engine named by the first recorded version (run_results' `metadata.dbt_version`, then the run's)."""
        return cls(next((r.strip() for r in recorded if isinstance(r, str) and r.strip()), ""))

    @property
    def version(self) -> Version | None:
        track = self.text.lower()
        if track in FUSION_TRACKS:
            return (FUSION_MAJOR, 0, 0)
        if track in RELEASE_TRACKS:
            return (1, 8, 0)
        return parse_version(self.text)

    @property
    def known(self) -> bool:
        return self.version is not None

    @property
    def fusion(self) -> bool:
        version = self.version
        return version is not None and version[0] == FUSION_MAJOR

    @property
    def unsupported(self) -> str:
        """Why this planner cannot narrow for this engine ('' when it can, or when the version is unknown)."""
        if not self.text:
            return ""
        version = self.version
        if version is None:
            return f"dbt version {self.text!r} is not one this tool can read"
        if version < OLDEST or version[0] > NEWEST_MAJOR:
            return f"dbt {self.text} is outside what this tool narrows ({SUPPORTED})"
        return ""

    @property
    def file_by_stem(self) -> bool:
        """Whether `file:<name>` selects the file `<name>.sql`/`.csv` (dbt Core 1.6 and later, not Fusion)."""
        version = self.version
        return version is not None and version >= FILE_BY_STEM and version[0] < FUSION_MAJOR

    @property
    def indirect_empty(self) -> bool:
        """Whether `--indirect-selection empty` exists (dbt 1.5 and later; unknown versions: not assumed)."""
        version = self.version
        return version is not None and version >= INDIRECT_EMPTY

    @property
    def name(self) -> str:
        """How the summary names this engine."""
        if not self.text:
            return "an unrecorded dbt version"
        return f"dbt {self.text}" + (" (Fusion)" if self.fusion else "")


CONTINUE_ON_ERROR_FROM = (1, 12)  # the first dbt Core with `on_error: continue` (beta)


def version_at_least(dbt_version: str, minimum: tuple[int, int]) -> bool:
    """Whether `1.12.6` (or `2.0.0-preview.45`) is at least `minimum`; False when unknown."""
    version = parse_version(dbt_version)
    return version is not None and version[:2] >= minimum


def on_run_start_failed(results: RunResults) -> bool:
    """Every node skipped and none failed: an `on-run-start` hook failed before any node ran.

    dbt 1.12 records the hook's error as an `operation.` result, or nothing (dbt v2). Narrowing such a
    step to its skipped nodes would lose what dbt never recorded (the unit tests of a `dbt build`).
    """
    nodes = [r for r in results.results if not r.unique_id.startswith(HOOK)]
    return bool(nodes) and all(r.status == Status.SKIPPED for r in nodes)


def continued_on_error(results: RunResults) -> bool:
    """Whether children of a failed model may have run after it (dbt 1.12+ `on_error: continue`)."""
    if not version_at_least(results.dbt_version, CONTINUE_ON_ERROR_FROM):
        return False
    errored = any(r.status in FAILED and r.unique_id.startswith(ERRORED_KINDS) for r in results.results)
    return errored and any(r.status in RAN and not r.unique_id.startswith(HOOK) for r in results.results)


def stale_children(results: RunResults, manifest: Manifest) -> list[str]:
    """Nodes of the step that ran to the end although a model they descend from failed, in dbt's order.

    Without `on_error: continue` dbt skips every descendant of a failed model, so none ran; with it they
    ran on the stale relation (tests of the failed model included), and `dbt retry` does not rerun them.
    Unit tests are never stale: `dbt build` runs them on fixtures before their model, whatever `on_error`.
    """
    roots = [r.unique_id for r in results.results if r.status in FAILED and r.unique_id.startswith(ERRORED_KINDS)]
    stale = descendants_of(manifest, roots)  # a failed root below another did not run: RAN leaves it out
    return [
        r.unique_id
        for r in results.results
        if r.status in RAN and r.unique_id in stale and not r.unique_id.startswith(UNIT_TEST_PREFIX)
    ]
