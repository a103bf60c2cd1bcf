"""Which dbt an environment of the local dbt Cloud runs: its engine switch.

An environment runs dbt 1.11 (the venv running the emulator) unless set otherwise with
`LocalDbtCloud.set_environment(environment_id, engine=...)` or `add_job(..., engine=...)`:
`dbt-1.12` runs `.venv-dbt-1.12/bin/dbt` (`make dbt-1.12`). A `Runtime` may also rewrite what dbt
wrote after each dbt step (`rewrite(target_dir)`): the hook an emulated engine such as Fusion, which
runs a dbt-core underneath and then changes its artifacts the way Fusion writes them, registers in
`RUNTIMES` under its name. The run's `dbt_version` is the runtime's `version`. The release-track
runtimes (tracks.py: `latest-2026.4.7`, `latest-2026.10.6`) run a dbt-core of their era, restamp its
artifacts with the build's calendar version, and report the track as the run's and the job's `dbt_version`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from ..engines import DBT_1_11, DBT_1_12, ENGINES
from .tracks import TRACKS


@dataclass(frozen=True)
class Runtime:
    """How an environment runs dbt: the `dbt` executable, the version runs report, the artifact rewrite."""

    name: str
    dbt: Path
    version: str
    rewrite: Callable[[Path], None] | None = None  # called with a finished dbt step's target directory
    track: str | None = None  # the release track the environment is on: its jobs report it as `dbt_version`


def core(name: str) -> Runtime:
    """A dbt-core installation as it is (see tests/engines)."""
    engine = ENGINES[name]
    if not engine.available:
        raise RuntimeError(f"{name} is not installed in {engine.venv}: run `{engine.make_target}`")
    return Runtime(name, engine.dbt, engine.version)


def release_track(name: str) -> Runtime:
    """A release-track build (tracks.py): its stand-in dbt-core, restamping what it writes, reporting the track."""
    build = TRACKS[name]
    return replace(core(build.core), name=name, version=build.track, track=build.track, rewrite=build.restamp)


# Engine name -> a factory called when a run of such an environment is triggered.
RUNTIMES: dict[str, Callable[[], Runtime]] = {
    DBT_1_11: lambda: core(DBT_1_11),
    DBT_1_12: lambda: core(DBT_1_12),
    **{name: partial(release_track, name) for name in TRACKS},
}
DEFAULT = DBT_1_11


@dataclass
class Environment:
    """An environment's settings: its engine, and files laid over the dbt project at each clone."""

    engine: str = DEFAULT
    project_files: dict[str, str] = field(default_factory=dict)  # relative path -> text


def runtime_for_version(version: str) -> str | None:
    """The engine a trigger's `dbt_version_override` names (`1.12`, `1.12.0-latest`, `dbt-1.12`); None if none."""
    if version in RUNTIMES:
        return version
    parts = version.removesuffix("-latest").split(".")
    name = f"dbt-{'.'.join(parts[:2])}" if len(parts) >= 2 else ""
    return name if name in RUNTIMES else None
