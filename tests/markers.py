"""Which tests are end to end: the `e2e` marker, applied at collection by tests/conftest.py.

A test is end to end when its code, its fixtures' code or the test helpers they call (followed through
functions of the `tests` package) reach one of `E2E`: the local dbt Cloud or its warm dbt worker, the
exactness harness's real dbt, the action run as a subprocess from the image folder, the image itself,
or any subprocess. Nothing is listed by hand, so a new end-to-end test is marked as soon as it uses
one of them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from types import CodeType, FunctionType, ModuleType
from typing import Any, TypeGuard

from tests.emulator import LocalDbtCloud
from tests.emulator.warm import WarmWorker
from tests.exactness.harness import DbtProject
from tests.image import action_image, build
from tests.runner import run_action

MARK = "e2e"
E2E: tuple[object, ...] = (LocalDbtCloud, WarmWorker, DbtProject, run_action, action_image, build, subprocess)


def _names(code: CodeType) -> Iterable[str]:
    """The global names a code object and the functions nested in it refer to."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _names(const)


def _ours(value: object) -> TypeGuard[FunctionType]:
    """A plain function of the tests package (fixtures, helpers), to be followed."""
    return isinstance(value, FunctionType) and value.__module__.split(".")[0] == "tests"


def reaches_e2e(function: Callable[..., Any], seen: set[CodeType] | None = None) -> bool:
    """True when `function`, or a tests helper it calls, refers to one of `E2E`."""
    seen = set() if seen is None else seen
    inner = getattr(function, "__wrapped__", function)  # a fixture's own function
    if not isinstance(inner, FunctionType) or inner.__code__ in seen:
        return False
    seen.add(inner.__code__)
    names = set(_names(inner.__code__))
    for name in names:
        value = inner.__globals__.get(name)
        if any(value is e2e for e2e in E2E):
            return True
        if isinstance(value, ModuleType) and value.__name__.split(".")[0] == "tests":
            used = [getattr(value, attribute, None) for attribute in names]  # `demo.main`: its attributes
            if any(_ours(function) and reaches_e2e(function, seen) for function in used):
                return True
        elif _ours(value) and reaches_e2e(value, seen):
            return True
    return False


def is_e2e(test: Callable[..., Any], fixtures: Iterable[Callable[..., Any]]) -> bool:
    """A test (with the functions of the fixtures it uses) is end to end when any of them reaches `E2E`."""
    seen: set[CodeType] = set()
    return any(reaches_e2e(function, seen) for function in (test, *fixtures))
