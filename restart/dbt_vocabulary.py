"""dbt's vocabulary, defined once: node statuses, resource types, indirect-selection modes, `rebuild`.

Every module that reads run_results.json or manifest.json, or decides what a command executes, names
these words from here. The members are `StrEnum`s: each equals (and hashes as) the text dbt writes,
so a recorded status or resource type (a plain `str`, which may be one this tool does not know) is
compared with them, and looked up in the sets below, directly.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal


class Status(StrEnum):
    """A node's `status` in run_results.json."""

    SUCCESS = "success"
    ERROR = "error"
    FAIL = "fail"
    WARN = "warn"
    PASS = "pass"
    SKIPPED = "skipped"
    RUNTIME_ERROR = "runtime error"
    PARTIAL_SUCCESS = "partial success"  # a microbatch model some of whose batches failed (dbt 1.9+)
    NO_OP = "no-op"  # dbt 1.10+: exposures, saved queries
    REUSED = "reused"  # dbt 1.12 and dbt v2: dbt State found the node unchanged and fresh


# Node statuses `dbt retry` reruns (dbt-core's task/retry.py RETRYABLE_STATUSES).
RETRYABLE: Final = frozenset({Status.ERROR, Status.FAIL, Status.SKIPPED, Status.RUNTIME_ERROR, Status.PARTIAL_SUCCESS})
# Node statuses of a node that failed (every retryable one but `skipped`).
FAILED: Final = RETRYABLE - {Status.SKIPPED}
# Node statuses that mean done, never rerun.
DONE: Final = frozenset({Status.SUCCESS, Status.PASS, Status.NO_OP, Status.REUSED})
# Node statuses of a node that executed to the end.
RAN: Final = frozenset({Status.SUCCESS, Status.PASS, Status.WARN})


class ResourceType(StrEnum):
    """A node's `resource_type` in manifest.json (and the first part of its unique_id)."""

    MODEL = "model"
    SEED = "seed"
    SNAPSHOT = "snapshot"
    TEST = "test"
    UNIT_TEST = "unit_test"
    ANALYSIS = "analysis"
    FUNCTION = "function"  # dbt 1.11+: user-defined functions
    OPERATION = "operation"  # on-run-start/end hooks
    SOURCE = "source"


# Resource types a dbt command executes (what a selection can make run).
EXECUTABLE: Final = frozenset(
    {
        ResourceType.MODEL,
        ResourceType.SEED,
        ResourceType.SNAPSHOT,
        ResourceType.TEST,
        ResourceType.UNIT_TEST,
        ResourceType.ANALYSIS,
        ResourceType.FUNCTION,
    }
)
# Resource types that build a relation: a failed data test's parents, nodes whose error may leave
# their children on stale data.
REBUILT: Final = frozenset({ResourceType.MODEL, ResourceType.SEED, ResourceType.SNAPSHOT})
TESTS: Final = frozenset({ResourceType.TEST, ResourceType.UNIT_TEST})
# Resource types whose file is named after the node: `file:<name>` selects an unversioned one alone.
NAMED_BY_FILE: Final = frozenset({ResourceType.MODEL, ResourceType.SEED})
BUILD: Final = "build"  # the sub-command that builds and tests in one DAG (unit tests beside their model)
RUN_OPERATION: Final = "run-operation"  # the sub-command whose results are its macro's, recorded as `operation.`
# The resource types each sub-command executes: a graph operator may reach others harmlessly.
EXECUTES: Final = {
    "run": frozenset({ResourceType.MODEL}),
    "seed": frozenset({ResourceType.SEED}),
    "snapshot": frozenset({ResourceType.SNAPSHOT}),
    "test": TESTS,
    BUILD: REBUILT | TESTS | {ResourceType.FUNCTION},
}
# The sub-commands that execute tests: the ones whose indirect selection may add tests to a selection.
EXECUTES_TESTS: Final = frozenset(name for name, kinds in EXECUTES.items() if kinds & TESTS)


def prefix(*kinds: ResourceType) -> tuple[str, ...]:
    """The unique_id prefixes of these resource types (`model.`), for `str.startswith`."""
    return tuple(f"{kind}." for kind in kinds)


HOOK: Final = f"{ResourceType.OPERATION}."  # on-run-start/end hooks: they run with every invocation
TEST_PREFIX: Final = f"{ResourceType.TEST}."
UNIT_TEST_PREFIX: Final = f"{ResourceType.UNIT_TEST}."  # run on fixtures, before their model
TEST_PREFIXES: Final = prefix(ResourceType.TEST, ResourceType.UNIT_TEST)
# Nodes whose error may leave their children on stale data (dbt 1.12+ `on_error: continue`).
ERRORED_KINDS: Final = prefix(*sorted(REBUILT))


EPHEMERAL: Final = "ephemeral"  # a model's materialization that dbt inlines and never executes


class IndirectSelection(StrEnum):
    """`--indirect-selection`: which tests of the selected nodes a command adds."""

    EAGER = "eager"  # dbt's default: every test of a selected node
    CAUTIOUS = "cautious"  # a test only when all its parents are selected
    BUILDABLE = "buildable"  # a test when its parents are selected or their ancestors
    EMPTY = "empty"  # no test (dbt 1.5+)


# The `rebuild` input: what a narrowed step rebuilds besides what `dbt retry` would.
Rebuild = Literal["failed", "with-test-parents"]
REBUILD_FAILED: Final[Rebuild] = "failed"  # exactly what `dbt retry` reruns
WITH_TEST_PARENTS: Final[Rebuild] = "with-test-parents"  # also the parents of failed data tests
