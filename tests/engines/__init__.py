"""The dbt engines the tests run, each in its own virtual environment.

dbt 1.11 is the interpreter running the tests (the project's `.venv`); dbt 1.12 lives in
`.venv-dbt-1.12/` (`make dbt-1.12`, which `make test` depends on) and dbt 1.7 in `.venv-dbt-1.7/`
(`make compat`). A test on an engine whose venv is missing is skipped, unless `make` listed the engine
in DBT_ENGINES_REQUIRED: then it fails, so that CI never passes without running it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
REQUIRED_ENV = "DBT_ENGINES_REQUIRED"
DBT_1_11 = "dbt-1.11"
DBT_1_12 = "dbt-1.12"
DBT_1_7 = "dbt-1.7"


@dataclass(frozen=True)
class DbtEngine:
    """A dbt-core installation: its `dbt` and `python`; `venv` None is the interpreter running the tests."""

    name: str
    venv: Path | None
    make_target: str = ""

    @property
    def bin(self) -> Path:
        return Path(sys.executable).parent if self.venv is None else self.venv / "bin"

    @property
    def dbt(self) -> Path:
        return self.bin / "dbt"

    @property
    def python(self) -> Path:
        return Path(sys.executable) if self.venv is None else self.bin / "python"

    @property
    def available(self) -> bool:
        return self.dbt.is_file() and (self.venv is None or (self.venv / ".installed").is_file())

    @property
    def version(self) -> str:
        """The installed dbt-core version (`1.12.6`)."""
        return _version(self.python)


@cache
def _version(python: Path) -> str:
    code = "from importlib.metadata import version; print(version('dbt-core'))"
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


ENGINES = {
    DBT_1_11: DbtEngine(DBT_1_11, None),
    DBT_1_12: DbtEngine(DBT_1_12, ROOT / ".venv-dbt-1.12", "make dbt-1.12"),
    DBT_1_7: DbtEngine(DBT_1_7, ROOT / ".venv-dbt-1.7", "make compat"),
}


def required() -> set[str]:
    """The engines `make` says must be there."""
    return {name.strip() for name in os.environ.get(REQUIRED_ENV, "").split(",") if name.strip()}


def require(name: str) -> DbtEngine:
    """The engine, or skip the test (fail it when the engine is required) when its venv is missing."""
    import pytest  # only tests call this: the emulator imports the module without pytest

    engine = ENGINES[name]
    if not engine.available:
        why = f"{name} is not installed in {engine.venv} (`{engine.make_target}` installs it)"
        if name in required():
            pytest.fail(why)
        pytest.skip(why)
    return engine
