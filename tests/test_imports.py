"""Dependencies point one way (scripts/check_imports.py, also run by `make lint`): pure modules import
no I/O module, and `restart/` has no import cycle. Pure: reads source with `ast`."""

from __future__ import annotations

from pathlib import Path

from tests.scripts import load

check = load("check_imports")


def test_the_package_keeps_the_rule() -> None:
    assert check.problems() == []


def test_every_module_is_classified_once() -> None:
    modules = {path.stem for path in check.ROOT.glob("*.py")}
    assert not check.PURE & check.IO
    assert modules - check.PURE - check.IO == set()


def test_the_rule_finds_an_io_import_a_library_a_cycle_and_an_unclassified_module(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    sources = {
        "__init__": "",
        "core": "from pkg import shell\n",  # pure -> I/O
        "rules": "import requests\nfrom pkg.loop_a import X\n",  # pure -> an HTTP library
        "loop_a": "from pkg import loop_b\nX = 1\n",
        "loop_b": "def f() -> None:\n    from pkg.loop_a import X\n",  # a lazy import still closes a cycle
        "shell": "import time\n",  # I/O may use the clock
        "stray": "",
    }
    for name, text in sources.items():
        (package / f"{name}.py").write_text(text)
    pure = frozenset({"__init__", "core", "rules", "loop_a", "loop_b"})
    found = check.problems(package, "pkg", pure, frozenset({"shell"}), {})
    assert found == [
        "pkg/core.py:1: pure module imports the I/O module pkg.shell",
        "pkg/rules.py:1: pure module imports requests",
        "pkg/stray.py: neither pure nor I/O: add it to PURE or IO in scripts/check_imports.py",
        "pkg/: import cycle loop_a -> loop_b -> loop_a",
    ]
