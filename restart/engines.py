"""Which dbt engine wrote a step's artifacts, and which of dbt's rules it follows. Pure.

Three kinds of engine write the artifacts this tool reads (`Kind`):

- dbt Core `1.x` (`1.5.11`, `1.12.0-b1`): each rule from the release that brought it.
- dbt platform's release tracks (Latest, Compatible, Extended, Fallback): dbt Core built by dbt Labs,
  stamped with its build date, `2026.4.7+4533730` (`2024.8.220` in 2024, `YEAR.MONTH.BUILD`); the run
  itself reports the track (`latest`, `versionless`, ...). A build has the dbt Core of its date: every
  build has the selection of dbt Core 1.8+ (`file:` by stem, `--indirect-selection empty`), and the 1.12
  defaults from the date they reached Latest.
- dbt v2, the Fusion engine (`2.0.0-preview.N`, or the `latest-fusion` track).

`RULES` says, in one table, from which Core release and which release-track build each rule the
planner relies on applies, and whether Fusion follows it. A version nothing can read (`nightly`) keeps
the planner from narrowing; every form dbt platform writes reads as one of the three kinds.

dbt Core 1.12 (and dbt v2) skip every node when an `on-run-start` hook fails
(`skip_nodes_if_on_run_start_fails` is the default from 1.12), and `on_error: continue` lets the
children of a failed model run on its stale data; `dbt retry` reruns neither kind as the job meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cached_property
from typing import Final

from restart.artifacts import Manifest, RunResults
from restart.dbt_vocabulary import ERRORED_KINDS, FAILED, HOOK, RAN, UNIT_TEST_PREFIX, Status
from restart.graph import descendants_of

Version = tuple[int, int, int]

OLDEST: Final = (1, 0, 0)  # dbt Core 1.0: the first version with run_results v4 and `dbt build`
FUSION_MAJOR: Final = 2  # dbt v2: the Fusion engine
NEWEST_MAJOR: Final = 2  # the newest major version this planner knows
FIRST_BUILD_YEAR: Final = 2024  # the first year of dbt platform's calendar-stamped builds ("versionless")
SUPPORTED: Final = "dbt Core 1.0 to 1.x, dbt platform release tracks and dbt v2 (Fusion)"


class Kind(StrEnum):
    """What kind of engine wrote the artifacts."""

    CORE = "dbt Core"
    RELEASE_TRACK = "dbt platform release track"
    FUSION = "dbt Fusion"


class Track(StrEnum):
    """A release track, as a run (or job, or environment) reports it in `dbt_version`."""

    VERSIONLESS = "versionless"  # the 2024 name of Latest
    LATEST = "latest"
    COMPATIBLE = "compatible"
    EXTENDED = "extended"
    FALLBACK = "fallback"
    LATEST_FUSION = "latest-fusion"
    FUSION = "fusion"


TRACK_NAMES: Final = frozenset(Track)
FUSION_TRACKS: Final = frozenset({Track.LATEST_FUSION, Track.FUSION})
TRACK_TITLES: Final = {
    Track.VERSIONLESS: "Versionless",
    Track.LATEST: "Latest",
    Track.COMPATIBLE: "Compatible",
    Track.EXTENDED: "Extended",
    Track.FALLBACK: "Fallback",
    Track.LATEST_FUSION: "Latest Fusion",
    Track.FUSION: "Fusion",
}


class Rule(StrEnum):
    """A behaviour of dbt the planner relies on, which not every engine has."""

    FILE_BY_STEM = "`file:<name>` selects the file `<name>.sql`"
    INDIRECT_EMPTY = "`--indirect-selection empty`"
    SKIPS_ON_RUN_START_FAILURE = "skip_nodes_if_on_run_start_fails by default"
    CONTINUE_ON_ERROR = "`on_error: continue`"


@dataclass(frozen=True)
class Since:
    """Where a rule begins: a dbt Core release, a release-track build date, and whether Fusion has it."""

    core: Version
    track: date
    fusion: bool


EVERY_BUILD: Final = date(FIRST_BUILD_YEAR, 1, 1)  # release-track builds run dbt Core 1.8 or later
LATEST_HAS_1_12: Final = date(2026, 9, 1)  # 1.12's defaults reached Latest (dbt Labs' announcement)

RULES: Final[dict[Rule, Since]] = {
    # 1.5 fnmatches the whole file name, 1.2-1.4 need it exactly, 1.0-1.1 lack `file`; Fusion selects by name
    Rule.FILE_BY_STEM: Since((1, 6, 0), EVERY_BUILD, fusion=False),
    Rule.INDIRECT_EMPTY: Since((1, 5, 0), EVERY_BUILD, fusion=True),
    Rule.SKIPS_ON_RUN_START_FAILURE: Since((1, 12, 0), LATEST_HAS_1_12, fusion=True),
    # beta in 1.12; its Latest date is not announced apart: taken to be 1.12's
    Rule.CONTINUE_ON_ERROR: Since((1, 12, 0), LATEST_HAS_1_12, fusion=True),
}

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
# `2026.4.7+4533730` (year, month, day, build hash); `2024.8.220` (year, month, build number, no hash)
_CALENDAR = re.compile(r"(\d{4})\.(\d{1,2})\.(\d+)(\+[0-9A-Za-z][0-9A-Za-z.-]*)?")


def parse_version(text: str) -> Version | None:
    """(major, minor, patch) from `1.5.11`, `1.12.0-b1`, `1.7.0rc1`, `2.0.0-preview.45`, `v1.8`; None if none.

    Pre-release tags are dropped: a `1.6.0-b1` already has 1.6's selector methods.
    """
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


@dataclass(frozen=True)
class Reading:
    """What a recorded version says: the kind of engine, its dbt version or its build date."""

    kind: Kind
    version: Version = (0, 0, 0)  # dbt Core's or Fusion's version (release tracks: none)
    built: date | None = None  # a release-track build's date (None: only the track is known)
    build: str = ""  # a release-track build as dbt platform names it, without its hash (`2026.4.7`)


def calendar_build(text: str) -> Reading | None:
    """A dbt platform release-track stamp (`2026.4.7+4533730`, `2024.8.220`) read; None if it is not one.

    With a build hash the third part is the day; without one (the 2024 builds) it is a build number,
    and the build is dated to the first of its month.
    """
    match = _CALENDAR.fullmatch(text.strip())
    if match is None:
        return None
    year, month, third = int(match[1]), int(match[2]), int(match[3])
    if year < FIRST_BUILD_YEAR or not 1 <= month <= 12:
        return None
    try:
        built = date(year, month, third) if match[4] else date(year, month, 1)
    except ValueError:  # a hash but no valid day: still that month's build
        built = date(year, month, 1)
    return Reading(Kind.RELEASE_TRACK, built=built, build=f"{year}.{month}.{third}")


def read_version(text: str) -> Reading | None:
    """What engine a recorded `dbt_version` names (an artifact's stamp or a run's); None if unreadable."""
    text = text.strip()
    lowered = text.lower()
    if lowered in FUSION_TRACKS:
        return Reading(Kind.FUSION, (FUSION_MAJOR, 0, 0))
    if lowered in TRACK_NAMES:
        return Reading(Kind.RELEASE_TRACK)
    build = calendar_build(text)
    if build is not None:
        return build
    version = parse_version(text)
    if version is None or version[0] >= FIRST_BUILD_YEAR:
        return None
    return Reading(Kind.FUSION if version[0] == FUSION_MAJOR else Kind.CORE, version)


def track_of(text: str | None) -> Track | None:
    """The release track a run reports as its `dbt_version`; None when it reports a version (or nothing)."""
    lowered = (text or "").strip().lower()
    return Track(lowered) if lowered in TRACK_NAMES else None


def _recorded(text: str | None) -> str:
    return text.strip() if isinstance(text, str) else ""


@dataclass(frozen=True)
class Engine:
    """The dbt engine that wrote a step's artifacts, as far as they (and the run) tell."""

    text: str = ""  # the version as recorded ('' when nothing recorded one)
    track: Track | None = None  # the release track the run reported, if it reported one

    @classmethod
    def of(cls, stamp: str | None, run: str | None = None) -> Engine:
        """The engine run_results' `metadata.dbt_version` names (else the run's `dbt_version`), with the run's track."""
        return cls(_recorded(stamp) or _recorded(run), track_of(run))

    @cached_property
    def reading(self) -> Reading | None:
        """What the recorded version says; a calendar-stamped build on a Fusion track is read as Fusion."""
        reading = read_version(self.text) if self.text else None
        if reading is not None and reading.kind == Kind.RELEASE_TRACK and self.track in FUSION_TRACKS:
            return Reading(Kind.FUSION, (FUSION_MAJOR, 0, 0), reading.built, reading.build)
        return reading

    @property
    def kind(self) -> Kind | None:
        return None if self.reading is None else self.reading.kind

    @property
    def version(self) -> Version | None:
        """dbt Core's or Fusion's version; None for a release-track build (it has a date) or an unreadable one."""
        reading = self.reading
        return None if reading is None or reading.kind == Kind.RELEASE_TRACK else reading.version

    @property
    def built(self) -> date | None:
        """A release-track build's date (None otherwise, or when only the track is known)."""
        return None if self.reading is None else self.reading.built

    @property
    def fusion(self) -> bool:
        return self.kind == Kind.FUSION

    @property
    def release_track(self) -> bool:
        return self.kind == Kind.RELEASE_TRACK

    def has(self, rule: Rule) -> bool:
        """Whether this engine follows `rule` (RULES); an unreadable, unrecorded or unsupported version: not assumed.

        A release track whose build is unknown (only the run's track name) has the rules of every build.
        """
        reading = self.reading
        if reading is None or self.unsupported:
            return False
        since = RULES[rule]
        if reading.kind == Kind.FUSION:
            return since.fusion
        if reading.kind == Kind.RELEASE_TRACK:
            return (reading.built or EVERY_BUILD) >= since.track
        return reading.version >= since.core

    @property
    def unsupported(self) -> str:
        """Why this planner cannot narrow for this engine ('' when it can, or when the version is unknown)."""
        if not self.text:
            return ""
        reading = self.reading
        if reading is None:
            return f"dbt version {self.text!r} is not one this tool can read"
        if reading.kind == Kind.CORE and (reading.version < OLDEST or reading.version[0] > NEWEST_MAJOR):
            return f"dbt {self.text} is outside what this tool narrows ({SUPPORTED})"
        return ""

    @property
    def file_by_stem(self) -> bool:
        """Whether `file:<name>` selects the file `<name>.sql`/`.csv` (dbt Core 1.6+, every release-track build)."""
        return self.has(Rule.FILE_BY_STEM)

    @property
    def indirect_empty(self) -> bool:
        """Whether `--indirect-selection empty` exists (dbt 1.5+, release tracks, Fusion; unknown: not assumed)."""
        return self.has(Rule.INDIRECT_EMPTY)

    @property
    def name(self) -> str:
        """How the summary names this engine: `dbt 1.11.2`, `dbt platform Latest track (build 2026.4.7)`."""
        reading = self.reading
        if not self.text:
            return "an unrecorded dbt version"
        if reading is not None and reading.kind == Kind.RELEASE_TRACK:
            named = self.track or track_of(self.text)
            track = "release track" if named is None else f"{TRACK_TITLES[named]} track"
            build = f"build {reading.build}" if reading.build else "build not recorded"
            return f"dbt platform {track} ({build})"
        fusion_track = track_of(self.text) or (self.track if reading is not None and reading.build else None)
        if reading is not None and reading.kind == Kind.FUSION and fusion_track is not None:
            build = f", build {reading.build}" if reading.build else ""
            return f"dbt platform {TRACK_TITLES[fusion_track]} track (Fusion{build})"
        return f"dbt {self.text}" + (" (Fusion)" if self.fusion else "")


def on_run_start_failed(results: RunResults) -> bool:
    """Every node skipped and none failed: an `on-run-start` hook failed before any node ran.

    dbt 1.12 records the hook's error as an `operation.` result, or nothing (dbt v2). Narrowing such a
    step to its skipped nodes would lose what dbt never recorded (the unit tests of a `dbt build`).
    """
    nodes = [r for r in results.results if not r.unique_id.startswith(HOOK)]
    return bool(nodes) and all(r.status == Status.SKIPPED for r in nodes)


def continued_on_error(results: RunResults, engine: Engine | None = None) -> bool:
    """Whether children of a failed model may have run after it (`on_error: continue`, dbt 1.12+).

    `engine` defaults to the one run_results.json names.
    """
    if not (engine or Engine.of(results.dbt_version)).has(Rule.CONTINUE_ON_ERROR):
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
