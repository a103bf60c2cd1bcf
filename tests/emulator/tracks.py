"""Release-track mode: an environment on a dbt platform release track, artifacts stamped as dbt platform does.

A job on a release track (Latest, Compatible, ...) runs dbt Core built by dbt Labs: every artifact it
writes carries `metadata.dbt_version` as the build's calendar stamp (`2026.4.7+4533730`), and the run
(and the job) report the track (`latest`) as `dbt_version` (field notes "dbt engines and versions").
dbt platform's builds cannot be installed here, so a release-track runtime runs a dbt-core of the same
era and then rewrites the stamp in every artifact dbt wrote (runtimes.py makes each a `Runtime`):

- `latest-2026.4.7`: dbt 1.11 underneath, stamped `2026.4.7+4533730` (a real recorded stamp), a build
  before dbt 1.12's defaults reached Latest (2026-09-01);
- `latest-2026.10.6`: dbt 1.12 underneath, stamped `2026.10.6+c0ffee1` (made up: no stamp after
  2026-09-01 is recorded), a build with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..engines import DBT_1_11, DBT_1_12

if TYPE_CHECKING:
    from .cloud import LocalDbtCloud

LATEST_BEFORE_1_12 = "latest-2026.4.7"
LATEST_WITH_1_12 = "latest-2026.10.6"


@dataclass(frozen=True)
class ReleaseTrack:
    """A release-track build: the track runs report, its stamp, and the dbt-core that stands in for it."""

    track: str
    stamp: str
    core: str

    def restamp(self, target: Path) -> None:
        """Stamp every artifact dbt wrote to `target` with this build's calendar version."""
        for path in sorted(target.glob("*.json")):
            stamp_artifact(path, self.stamp)


TRACKS: dict[str, ReleaseTrack] = {
    LATEST_BEFORE_1_12: ReleaseTrack("latest", "2026.4.7+4533730", DBT_1_11),
    LATEST_WITH_1_12: ReleaseTrack("latest", "2026.10.6+c0ffee1", DBT_1_12),
}


def stamp_artifact(path: Path, stamp: str) -> bool:
    """Rewrite one artifact's `metadata.dbt_version` to `stamp`; False when it records none."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    metadata = document.get("metadata") if isinstance(document, dict) else None
    if not isinstance(metadata, dict) or "dbt_version" not in metadata:
        return False
    metadata["dbt_version"] = stamp
    path.write_text(json.dumps(document), encoding="utf-8")
    return True


def assert_on_track(cloud: LocalDbtCloud, run_id: int, engine: str) -> None:
    """The run really ran on `engine`'s release track: it reports the track, every artifact carries the stamp."""
    build = TRACKS[engine]
    assert cloud.run(run_id)["dbt_version"] == build.track
    assert cloud.stamps(run_id) == {build.stamp}, f"run {run_id} did not run on {engine}"
