"""The benchmark-only environment `benchmarks/.venv-bench` holding dbtc (the seed's algorithm), kept apart from `.venv`.

dbtc 0.7.0 pins pydantic<2 and typer 0.9, which clash with dbt-core's dependencies in `.venv`; it is
installed by `python -m benchmarks` (or `python -m benchmarks.environment`) into `benchmarks/.venv-bench` on first use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "benchmarks" / ".venv-bench"
DBTC = "dbtc==0.7.0"


def bench_python(create: bool = True) -> Path | None:
    """The benchmark environment's python with dbtc importable; None when it cannot be made."""
    python = VENV / "bin" / "python"
    if _has_dbtc(python):
        return python
    if not create:
        return None
    print(f"creating {VENV.name} with {DBTC} ...", file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", DBTC],
            check=True,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"cannot install {DBTC}: {exc}; comparing nothing", file=sys.stderr)
        return None
    return python if _has_dbtc(python) else None


def _has_dbtc(python: Path) -> bool:
    if not python.exists():
        return False
    done = subprocess.run([str(python), "-c", "import dbtc"], capture_output=True, check=False)
    return done.returncode == 0


if __name__ == "__main__":
    print(bench_python() or "unavailable")
