"""The interpreter the project's virtual environments are made from: the fastest Python 3.11 or 3.12 here.

    python3 scripts/pick_python.py     # prints it (`make` asks once, when it makes a venv, unless given PY=...)

The test suite is CPU-bound on Python: dbt's own, in every emulated step and oracle case. Builds of one
Python version differ in speed by a quarter or more: distributions build theirs with profile-guided and
link-time optimization, pyenv's default build has neither (measured 2026-12-04 on these machines, from a
fresh clone: `.ci/run` took 544 CPU-s on Debian's Python 3.11, 696 on the pyenv 3.11 first on PATH, and
the oracle's dbt commands a third less CPU). The candidates are `python3`, `python3.11` and `python3.12`
on PATH, then in /usr/bin and /usr/local/bin; one of another version (requirements.lock has wheels for
3.11 and 3.12), that cannot make a venv or that does not answer is passed over. Each runs a short fixed
workload, timed in CPU time, in turns over several rounds so that a busy spell of the machine slows them
alike; an interpreter reached by several names keeps its best time under the first. The fastest wins, the
one listed first on a near tie. Nothing usable: `python3`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

NAMES = ("python3", "python3.11", "python3.12")
FOLDERS = ("/usr/bin", "/usr/local/bin")
VERSIONS = ((3, 11), (3, 12))
NEAR_TIE = 1.05  # a later candidate must be more than 5% faster to win
ROUNDS = 3
TIMEOUT = 15  # seconds a candidate may take to answer
FALLBACK = "python3"

# Run by each candidate: its version and real executable, whether it can make a venv, and its best time on
# a workload of dict, string and call traffic (what dbt's Python spends its time on).
PROBE = """
import json, os, sys, time
try:
    import ensurepip, venv
    venvs = True
except ImportError:
    venvs = False
def work():
    seen = {}
    for i in range(80_000):
        key = f"model.shop.node_{i % 700}"
        seen[key] = seen.get(key, 0) + len(key.split("."))
    return sorted(seen.items())[:3]
best = float("inf")
for _ in range(5):
    start = time.process_time()  # CPU time: a busy machine stretches the wall clock far more
    work()
    best = min(best, time.process_time() - start)
real = os.path.realpath(sys.executable)
print(json.dumps({"version": sys.version_info[:2], "executable": real, "venv": venvs, "seconds": best}))
"""


@dataclass(frozen=True)
class Probe:
    """What one candidate reported."""

    version: tuple[int, int]
    executable: str  # the interpreter's real path, whichever name, link or shim started it
    venv: bool
    seconds: float


def candidates() -> list[str]:
    """Interpreters to try, in order of preference: PATH's, then the system folders'."""
    found = [path for name in NAMES if (path := shutil.which(name))]
    found += [path for folder in FOLDERS for name in NAMES if os.access(path := f"{folder}/{name}", os.X_OK)]
    return list(dict.fromkeys(found))


def probe(interpreter: str) -> Probe | None:
    """What PROBE reports for `interpreter`; None if it does not run."""
    try:
        done = subprocess.run([interpreter, "-c", PROBE], capture_output=True, text=True, timeout=TIMEOUT, check=True)
        answer = json.loads(done.stdout)
        major, minor = answer["version"]
        return Probe(
            (int(major), int(minor)), str(answer["executable"]), bool(answer["venv"]), float(answer["seconds"])
        )
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None


def pick() -> str:
    """The fastest usable candidate, or FALLBACK."""
    names = candidates()
    best: dict[str, tuple[str, float]] = {}  # interpreter -> (its first name, its best time), in listing order
    for _ in range(ROUNDS):
        usable = []
        for name in names:
            found = probe(name)
            if found is None or found.version not in VERSIONS or not found.venv:
                continue
            usable.append(name)
            first, seconds = best.get(found.executable, (name, found.seconds))
            best[found.executable] = (first, min(seconds, found.seconds))
        names = usable  # the others are not asked again
    chosen, fastest = FALLBACK, float("inf")
    for name, seconds in best.values():
        if seconds * NEAR_TIE < fastest:
            chosen, fastest = name, seconds
    return chosen


if __name__ == "__main__":
    print(pick())
